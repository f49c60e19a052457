"""SPANetV2: Spectral-Adaptive Modulation Networks.

Paper: G. Yun et al., "Spectral-Adaptive Modulation Networks for Visual Perception", arXiv:2503.23947
(IEEE TPAMI 2026); predecessor SPANet (ICCV 2023).
Official code: https://github.com/DoranLyong/SPANetV2-official at commit 8a490a6b3e70d166d8566e4227daa04752945b43,
file ``image_classification/models/spanetv2.py`` (MetaFormer-baselines code base, timm 0.6.13).
Licence: the official repository carries no licence file (all rights reserved by default); this file is an
independent re-implementation written from it.

Variants (ImageNet-1k, 224x224; params measured on the official model, GMACs and top-1 from its README):

    name                  depths      dims              params        GMACs  top-1
    spanetv2_s18_pure     3,3,9,3     64,128,320,512    29,162,892     4.2   83.4
    spanetv2_s18_hybrid   3,3,9,3     64,128,320,512    26,991,948     4.2   83.9
    spanetv2_s36_pure     3,12,18,3   64,128,320,512    44,098,608     8.1   84.4
    spanetv2_s36_hybrid   3,12,18,3   64,128,320,512    40,669,104     8.1   84.7
    spanetv2_m36_pure     3,12,18,3   96,192,384,576    62,934,832    13.7   84.9
    spanetv2_m36_hybrid   3,12,18,3   96,192,384,576    58,334,896    13.6   85.3
    spanetv2_b36_pure     3,12,18,3   128,256,512,768  109,557,808    24.3   85.0
    spanetv2_b36_hybrid   3,12,18,3   128,256,512,768  101,802,544    23.9   85.6

"pure" uses the ExSPAM token mixer in all stages, "hybrid" ExSPAM, ExSPAM, MixAttention, Attention. The README
rounds M36-pure to 61M and B36-pure to 100M parameters; the counts above are exact.

Checkpoints: none are hosted (the official cfg URLs are empty); the authors distribute
``spanetv2_<size>_<pure|hybrid[_k7]>_res-scale_Full-ExSPAM.pth``, flat state_dicts made from timm's training
output by ``image_classification/ckpt/custom_ckpt.py``. ``checkpoint_filter_fn`` also takes the raw timm 0.6.13
training checkpoint (``state_dict`` / ``state_dict_ema`` beside ``args``, ``optimizer``, ``amp_scaler``), a
``model`` container, DDP ``module.`` prefixes and the mmdet/mmseg dense checkpoints (``backbone.`` prefix, extra
per-stage ``norm0..3``). Load one with
``timm.create_model('spanetv2_s18_pure', pretrained=True, pretrained_cfg_overlay=dict(file=path))``.

Evaluation preprocessing (official cfg, timm ``validate.py``): resize the short side to 224 bicubic, centre crop
224 (``crop_pct=1.0``), ImageNet mean/std.

Quirks reproduced because trained weights depend on them (details at each class):
1. ExSPAM casts its FFT input to float32 whatever the model dtype (a float32 island in float64/fp16/bf16 runs).
2. ExSPAM interleaves its four heads (channel ``4 g + k`` = head k, channel g) before a grouped 1x1 conv.
3. Spectral masks are sigmoids of logits on the unshifted ``rfft2`` half-spectrum, sized for the build resolution
   and resized bicubically (``align_corners=True``) on every forward at another resolution.
4. Downsampling norms use an explicit mean/variance formula; the head LayerNorm keeps torch's eps 1e-5.
5. Residual scales only in stages 2 and 3; MixAttention adds a depthwise 7x7 conv of ``v`` before ``proj``.
Deviation from the official module: its ``forward_features`` returned the pooled, normed vector; here it returns
the NHWC map of the last stage and pooling + ``norm`` live in ``forward_head`` (timm convention, same logits).
"""
from __future__ import annotations

from functools import partial
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import DropPath, Mlp, to_2tuple, trunc_normal_, use_fused_attn
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from timm.models._features import feature_take_indices
from timm.models._manipulate import checkpoint_seq
from timm.models.metaformer import LayerNormNoBias, MlpHead, Scale, StarReLU

from freqlens.lens.probes import ProbePoint
from freqlens.models._checkpoint import unwrap_state_dict

__all__ = ["SPANetV2"]


class ExplicitLayerNorm(nn.Module):
    """LayerNorm over the last dim, weight only, written out as mean/variance.

    The official ``LayerNormGeneral`` (downsampling norms) computes ``(x - mean) / sqrt(var + eps) * weight``
    explicitly rather than through ``F.layer_norm``; kept for bit-level agreement.
    """

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x - x.mean(-1, keepdim=True)
        s = c.pow(2).mean(-1, keepdim=True)
        return c / torch.sqrt(s + self.eps) * self.weight


class Downsampling(nn.Module):
    """Strided conv into a stage, NHWC out.

    The stem (k7 s4 p2) takes the NCHW image and normalises after the conv; the later layers (k3 s2 p1) take
    NHWC features and normalise before it (official ``DOWNSAMPLE_LAYERS_FOUR_STAGES``).
    """

    def __init__(self, in_chs: int, out_chs: int, stem: bool) -> None:
        super().__init__()
        kernel_size, stride, padding = (7, 4, 2) if stem else (3, 2, 1)
        self.stem = stem
        self.pre_norm = nn.Identity() if stem else ExplicitLayerNorm(in_chs)
        self.conv = nn.Conv2d(in_chs, out_chs, kernel_size, stride=stride, padding=padding)
        self.post_norm = ExplicitLayerNorm(out_chs) if stem else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.stem:
            x = self.pre_norm(x).permute(0, 3, 1, 2)
        return self.post_norm(self.conv(x).permute(0, 2, 3, 1))


class ExSPAM(nn.Module):
    """Expanded spectral-adaptive modulation (SPAM) token mixer on NHWC input.

    ``ctx = x W_ctx`` is split into ``num_heads`` contiguous channel blocks of ``G = C / num_heads``; head k runs a
    depthwise conv of kernel ``3 + 2k``, then a real spectral mask ``sigmoid(filter_k)`` on the unshifted
    ``rfft2`` half-spectrum (``norm='ortho'``, so a mask of ones is the identity). The filtered heads are
    interleaved, mixed by ``proj`` and modulate ``GELU(x W_q)``; ``proj_out`` projects.

    The four FFTs run as one batched ``rfft2`` over all channels; on CPU this is bit-identical to the official
    per-head loop for batches of two or more (checked at several sizes in float32 and float64).
    Per-head modules keep the official ``local_conv_{k}`` / ``filter_{k}`` attribute names so that official
    state_dicts load unchanged.

    Args:
        dim: channels C.
        feat_size: (h0, w0), the stage resolution at build time; the filters are (G, h0, w0 // 2 + 1).
        num_heads: number of kernel scales / spectral heads.
        expand_ratio: hidden width of ``proj`` relative to C.
    """

    # Official quirk 1: the FFT input is cast to float32 whatever the model dtype. ``None`` keeps the input
    # dtype: not official behaviour, only for exact float64 comparisons against a reference without the island.
    fft_dtype: torch.dtype | None = torch.float32

    def __init__(self, dim: int, feat_size: tuple[int, int], num_heads: int = 4, expand_ratio: int = 2) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"ExSPAM: dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.filter_size = (feat_size[0], feat_size[1] // 2 + 1)
        g = self.head_dim
        self.query = nn.Sequential(nn.Linear(dim, dim, bias=False), nn.GELU())
        self.ctx = nn.Linear(dim, dim, bias=False)
        # Official spanetv2.py registers per-head convs and filters with setattr (not a ModuleList): the
        # state_dict names local_conv_{k}.* and filter_{k} are part of the checkpoint format.
        for k in range(num_heads):
            setattr(self, f"local_conv_{k + 1}", nn.Conv2d(g, g, 3 + 2 * k, padding=1 + k, groups=g))
            self.register_parameter(f"filter_{k + 1}", nn.Parameter(torch.randn(g, *self.filter_size) * 0.02))
        # groups=G: after the head interleave, group g sees channel g of every head (all kernel scales).
        self.proj = nn.Sequential(
            nn.Conv2d(dim, dim * expand_ratio, 1, groups=g, bias=False),
            nn.GroupNorm(1, dim * expand_ratio),
            nn.GELU(),
            nn.Conv2d(dim * expand_ratio, dim, 1, bias=False),
        )
        self.proj_out = nn.Linear(dim, dim, bias=False)

    def spectral_masks(self, size: tuple[int, int]) -> torch.Tensor:
        """Masks applied to a (H, W) feature map: (num_heads, G, H, W // 2 + 1), unshifted rfft2 layout.

        Row 0 / column 0 hold the DC term; rows above H // 2 are negative vertical frequencies. Off the build
        size the logits are resized bicubically with ``align_corners=True`` before the sigmoid, as the official
        ``resize_weight`` does on every forward.
        """
        h, w = size
        return self._masks(h, w).unflatten(0, (self.head_dim, self.num_heads)).transpose(0, 1)

    def _masks(self, h: int, w: int) -> torch.Tensor:
        """Interleaved masks (C, H, W // 2 + 1): channel ``g * num_heads + k`` is head k, channel g."""
        size = (h, w // 2 + 1)
        masks = []
        # Per head, as the official loop: CPU kernels round the last elements of a tensor differently from the
        # vectorised bulk, so resizing or applying sigmoid to all heads at once could move masks by an ulp.
        for k in range(self.num_heads):
            logits = getattr(self, f"filter_{k + 1}")
            masks.append(torch.sigmoid(logits if size == self.filter_size else _resize_logits(logits, size)))
        return torch.stack(masks, dim=1).flatten(0, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, h, w, _ = x.shape
        q = self.query(x)
        ctx = self.ctx(x).permute(0, 3, 1, 2)  # (B, C, H, W), head k = channels [kG, (k+1)G)
        heads = ctx.split(self.head_dim, dim=1)
        z = [getattr(self, f"local_conv_{k + 1}")(heads[k]) for k in range(self.num_heads)]
        # Official quirk 2: the heads are interleaved, channel g * heads + k = head k, channel g.
        # Contiguous NCHW: CPU FFTs run twice as fast as on the channels-last strides of the official per-head
        # input; for a batch of one, MKL then rounds the float32 FFT differently (~1e-7 relative).
        z = torch.stack(z, dim=2).flatten(1, 2)  # (B, C, H, W)
        if self.fft_dtype is not None:
            z = z.to(self.fft_dtype)
        spec = torch.fft.rfft2(z, dim=(-2, -1), norm="ortho") * self._masks(h, w)
        s = torch.fft.irfft2(spec, s=(h, w), dim=(-2, -1), norm="ortho").to(x.dtype)
        s = self.proj(s).permute(0, 2, 3, 1)  # (B, H, W, C)
        return self.proj_out(q * s)


def _resize_logits(logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize (G, h, w) mask logits to (G, *size): bicubic, ``align_corners=True`` (official ``resize_weight``)."""
    return F.interpolate(logits[None], size=size, mode="bicubic", align_corners=True)[0]


class Attention(nn.Module):
    """Global multi-head self-attention on NHWC input, head_dim 32, no biases, no positional terms.

    With ``local_kernel`` it is the official ``MixAttention``: a depthwise conv of ``v`` (laid out as an image,
    channel = head * head_dim + d) is added to the attention output before ``proj``.
    """

    def __init__(self, dim: int, head_dim: int = 32, local_kernel: int | None = None) -> None:
        super().__init__()
        self.head_dim = head_dim
        self.num_heads = max(1, dim // head_dim)
        self.attention_dim = self.num_heads * head_dim
        if local_kernel and self.attention_dim != dim:
            raise ValueError(f"MixAttention: dim {dim} must be a multiple of head_dim {head_dim}")
        self.scale = head_dim**-0.5
        self.fused_attn = use_fused_attn()
        self.qkv = nn.Linear(dim, 3 * self.attention_dim, bias=False)
        self.local_conv = (
            nn.Conv2d(dim, dim, local_kernel, padding=local_kernel // 2, groups=dim, bias=False)
            if local_kernel
            else None
        )
        self.proj = nn.Linear(self.attention_dim, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, _ = x.shape
        qkv = self.qkv(x).reshape(b, h * w, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # (B, heads, N, head_dim)
        if self.fused_attn:
            out = F.scaled_dot_product_attention(q, k, v, scale=self.scale)
        else:
            out = ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1) @ v
        out = out.transpose(1, 2).reshape(b, h, w, self.attention_dim)
        if self.local_conv is not None:
            v_map = v.transpose(1, 2).reshape(b, h, w, self.attention_dim).permute(0, 3, 1, 2)
            out = out + self.local_conv(v_map).permute(0, 2, 3, 1)
        return self.proj(out)


class MixAttention(Attention):
    """Attention plus a depthwise 7x7 conv of ``v`` (hybrid stage 2)."""

    def __init__(self, dim: int) -> None:
        super().__init__(dim, local_kernel=7)


class MetaFormerBlock(nn.Module):
    """``x = res_scale1(x) + mixer(norm1(x))``; ``x = res_scale2(x) + mlp(norm2(x))`` on NHWC input."""

    def __init__(
        self,
        dim: int,
        token_mixer: Callable[[int], nn.Module],
        res_scale_init_value: float | None = None,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        self.norm1 = LayerNormNoBias(dim)
        self.token_mixer = token_mixer(dim)
        self.drop_path1 = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.res_scale1 = Scale(dim, res_scale_init_value, use_nchw=False) if res_scale_init_value else nn.Identity()
        self.norm2 = LayerNormNoBias(dim)
        self.mlp = Mlp(dim, 4 * dim, act_layer=StarReLU, bias=False)  # official Mlp: no biases, StarReLU
        self.drop_path2 = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.res_scale2 = Scale(dim, res_scale_init_value, use_nchw=False) if res_scale_init_value else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.res_scale1(x) + self.drop_path1(self.token_mixer(self.norm1(x)))
        return self.res_scale2(x) + self.drop_path2(self.mlp(self.norm2(x)))


def _head(dim: int, num_classes: int, dropout: float) -> nn.Module:
    """Official MlpHead: Linear(C, 4C) -> SquaredReLU -> LayerNorm(4C, torch's eps 1e-5) -> dropout -> Linear."""
    return MlpHead(dim, num_classes, norm_layer=nn.LayerNorm, drop_rate=dropout) if num_classes > 0 else nn.Identity()


class SPANetV2(nn.Module):
    """SPANetV2: four NHWC MetaFormer stages with ExSPAM and (hybrids) attention token mixers.

    Module names follow the official model (``downsample_layers``, ``stages``, ``norm``, ``head``) so official
    state_dicts load strictly. Every tensor between modules is NHWC (``output_fmt = 'NHWC'``).

    Args:
        depths: blocks per stage (4 stages).
        dims: channels per stage.
        token_mixers: mixer class per stage (``ExSPAM``, ``MixAttention`` or ``Attention``).
        in_chans: input channels.
        num_classes: classes of the MLP head; 0 for no head.
        global_pool: ``'avg'`` (mean over H, W) or ``''`` (no pooling; head applied per position).
        img_size: build resolution; sets the ExSPAM filter grids to ``img_size // 2**(i+2)`` (official
            ``input_size``). Other input sizes still work: filters are resized on the fly.
        res_scale_init_values: residual scale init per stage, ``None`` for none.
        drop_path_rate: stochastic depth, linear over all blocks.
        head_dropout: dropout before the last head Linear.
    """

    def __init__(
        self,
        depths: Sequence[int] = (3, 3, 9, 3),
        dims: Sequence[int] = (64, 128, 320, 512),
        token_mixers: Sequence[type[nn.Module]] = (ExSPAM, ExSPAM, ExSPAM, ExSPAM),
        in_chans: int = 3,
        num_classes: int = 1000,
        global_pool: str = "avg",
        img_size: int | tuple[int, int] = 224,
        res_scale_init_values: Sequence[float | None] = (None, None, 1.0, 1.0),
        drop_path_rate: float = 0.0,
        head_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        lengths = {len(depths), len(dims), len(token_mixers), len(res_scale_init_values)}
        if lengths != {4}:
            raise ValueError(
                f"SPANetV2 has 4 stages: got depths {tuple(depths)}, dims {tuple(dims)}, "
                f"{len(token_mixers)} token_mixers, res_scale_init_values {tuple(res_scale_init_values)}"
            )
        img_h, img_w = to_2tuple(img_size)
        if min(img_h, img_w) < 32:
            raise ValueError(f"SPANetV2: img_size {img_size} gives an empty stage-3 filter grid; use >= 32")
        _check_global_pool(global_pool)
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.global_pool = global_pool
        self.head_dropout = head_dropout
        self.num_features = self.head_hidden_size = dims[-1]
        self.output_fmt = "NHWC"
        self.grad_checkpointing = False

        self.downsample_layers = nn.ModuleList(
            [Downsampling(in_chans, dims[0], stem=True)]
            + [Downsampling(dims[i - 1], dims[i], stem=False) for i in range(1, 4)]
        )
        num_blocks = sum(depths)
        dp_rates = [drop_path_rate * j / max(num_blocks - 1, 1) for j in range(num_blocks)]  # linear, as official
        self.stages = nn.ModuleList()
        self.feature_info = []
        for i, (depth, dim, mixer) in enumerate(zip(depths, dims, token_mixers)):
            reduction = 2 ** (i + 2)
            # Official: the filter grid is input_size // 2**(i+2), not the conv arithmetic's size.
            if mixer is ExSPAM:
                mixer = partial(ExSPAM, feat_size=(img_h // reduction, img_w // reduction))
            first = sum(depths[:i])
            self.stages.append(nn.Sequential(*[
                MetaFormerBlock(dim, mixer, res_scale_init_values[i], dp_rates[first + j]) for j in range(depth)
            ]))
            self.feature_info.append(dict(num_chs=dim, reduction=reduction, module=f"stages.{i}"))
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)
        self.head = _head(dims[-1], num_classes, head_dropout)
        self._declare_probe_points()
        self.apply(self._init_weights)

    def _declare_probe_points(self) -> None:
        points = []
        for i, stage in enumerate(self.stages):
            reduction = 2 ** (i + 2)
            point = partial(ProbePoint, layout="NHWC", reduction=reduction)
            points.append(point(f"downsample_layers.{i}", kind="downsample"))
            for j, block in enumerate(stage):
                name = f"stages.{i}.{j}"
                if isinstance(block.token_mixer, ExSPAM):
                    points.append(point(f"{name}.token_mixer.query", kind="query"))
                    points.append(ProbePoint(f"{name}.token_mixer.proj", "NCHW", reduction, kind="freq"))
                points.append(point(f"{name}.token_mixer", kind="mixer"))
                points.append(point(name, kind="block"))
            points.append(point(f"stages.{i}", kind="stage"))
        self.probe_points: list[ProbePoint] = points
        self.gradcam_target: ProbePoint = points[-1]  # last stage output, as official demo_cam.py

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        """No extra exemptions: the official ``{'norm'}`` names no parameter, so training decayed everything
        but timm's default 1-D / bias parameters (the 3-D spectral filters included)."""
        return set()

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict:
        return dict(
            stem=r"^downsample_layers\.0\.",
            blocks=r"^(?:downsample_layers|stages)\.(\d+)" if coarse else [
                (r"^downsample_layers\.(\d+)", (0,)),
                (r"^stages\.(\d+)\.(\d+)", None),
                (r"^norm", (99999,)),
            ],
        )

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        if global_pool is not None:
            _check_global_pool(global_pool)
            self.global_pool = global_pool
        self.num_classes = num_classes
        ref = next(self.parameters())
        head = _head(self.num_features, num_classes, self.head_dropout)
        self.head = head.to(device=ref.device, dtype=ref.dtype)

    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: int | list[int] | None = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """Stage outputs (``NCHW`` or ``NHWC``) and, unless ``intermediates_only``, the last feature map (NHWC).

        ``norm=True`` is refused: SPANetV2 has no norm that applies to stage outputs (the dense-prediction
        ``norm0..3`` of the official detection/segmentation backbones are not part of this model).
        """
        if output_fmt not in ("NCHW", "NHWC"):
            raise ValueError(f"SPANetV2: output_fmt must be 'NCHW' or 'NHWC', got {output_fmt!r}")
        if norm:
            raise ValueError("SPANetV2: norm=True is not supported, the model has no per-stage output norm")
        _check_input(x, self.in_chans)
        take_indices, max_index = feature_take_indices(len(self.stages), indices)
        last = max_index if stop_early else len(self.stages) - 1
        intermediates = []
        for i in range(last + 1):
            x = self._run_stage(i, x)
            if i in take_indices:
                intermediates.append(x.permute(0, 3, 1, 2) if output_fmt == "NCHW" else x)
        if intermediates_only:
            return intermediates
        return x, intermediates

    def prune_intermediate_layers(
        self, indices: int | list[int] = 1, prune_norm: bool = False, prune_head: bool = True
    ) -> list[int]:
        """Drop the stages after the last index kept (and the head / final norm when asked or now mis-sized)."""
        take_indices, max_index = feature_take_indices(len(self.stages), indices)
        prune_end = max_index < len(self.stages) - 1
        self.stages = self.stages[: max_index + 1]
        self.downsample_layers = self.downsample_layers[: max_index + 1]
        self.feature_info = self.feature_info[: max_index + 1]
        if prune_end:
            self.num_features = self.head_hidden_size = self.feature_info[-1]["num_chs"]
        if prune_norm or prune_end:
            self.norm = nn.Identity()
        if prune_head or prune_end:
            self.reset_classifier(0, "")
        self._declare_probe_points()
        return take_indices

    def _run_stage(self, i: int, x: torch.Tensor) -> torch.Tensor:
        x = self.downsample_layers[i](x)
        if self.grad_checkpointing and not torch.jit.is_scripting():
            return checkpoint_seq(self.stages[i], x)
        return self.stages[i](x)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) image -> (B, H', W', C') NHWC map of the last stage (not pooled, unlike the official)."""
        _check_input(x, self.in_chans)
        for i in range(len(self.stages)):
            x = self._run_stage(i, x)
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        if self.global_pool == "avg":
            x = x.mean((1, 2))
        x = self.norm(x)
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _check_global_pool(global_pool: str) -> None:
    if global_pool not in ("avg", ""):
        raise ValueError(f"SPANetV2: global_pool must be 'avg' or '', got {global_pool!r}")


def _check_input(x: torch.Tensor, in_chans: int) -> None:
    """The official model needs a (B, in_chans, H, W) image with H, W >= 3 (7x7 stride-4 stem, padding 2)."""
    if x.dim() != 4 or x.shape[1] != in_chans or min(x.shape[-2:]) < 3:
        raise ValueError(
            f"SPANetV2 expects a (B, {in_chans}, H, W) image with H, W >= 3, got shape {tuple(x.shape)}"
        )


def _convert_dense(state_dict: dict) -> dict:
    """mmdet/mmseg checkpoints: keep ``backbone.*`` (minus its per-stage ``norm0..3``), drop neck / heads."""
    out = {}
    for k, v in state_dict.items():
        if not k.startswith("backbone."):
            continue
        k = k.removeprefix("backbone.")
        if k.split(".", 1)[0] in ("norm0", "norm1", "norm2", "norm3"):
            continue
        out[k] = v
    return out


def _resize_filters(state_dict: dict, model: nn.Module) -> dict:
    """Fit ExSPAM filters to a model built for another ``img_size``, by the rule its forward uses."""
    target = model.state_dict()
    out = {}
    for k, v in state_dict.items():
        ref = target.get(k)
        if ".token_mixer.filter_" in k and ref is not None and v.shape != ref.shape:
            v = _resize_logits(v.float(), tuple(ref.shape[-2:])).to(v.dtype)
        out[k] = v
    return out


def checkpoint_filter_fn(state_dict: dict, model: nn.Module) -> dict:
    """Map an official checkpoint (any layout listed in the module docstring) onto ``model``'s state_dict."""
    # timm's own loader has already picked ``state_dict_ema`` when present before this filter runs; called
    # directly, the raw weights win and ``state_dict_ema`` is only the fallback
    state_dict = unwrap_state_dict(state_dict, ("state_dict", "model", "state_dict_ema"))
    if any(k.startswith("backbone.") for k in state_dict):
        state_dict = _convert_dense(state_dict)
    return _resize_filters(state_dict, model)


def _create_spanetv2(variant: str, pretrained: bool = False, **kwargs) -> SPANetV2:
    return build_model_with_cfg(
        SPANetV2,
        variant,
        pretrained,
        pretrained_filter_fn=checkpoint_filter_fn,
        feature_cfg=dict(out_indices=(0, 1, 2, 3), feature_cls="getter"),
        **kwargs,
    )


def _cfg(**kwargs) -> dict:
    return {
        "num_classes": 1000,
        "input_size": (3, 224, 224),
        "pool_size": (7, 7),
        "crop_pct": 1.0,
        "interpolation": "bicubic",
        "mean": IMAGENET_DEFAULT_MEAN,
        "std": IMAGENET_DEFAULT_STD,
        "first_conv": "downsample_layers.0.conv",
        "classifier": "head.fc2",  # official cfg: 'head' (the MlpHead); timm needs the last Linear to swap classes
        "license": "unknown",
        "paper_ids": "arXiv:2503.23947",
        "paper_name": "Spectral-Adaptive Modulation Networks for Visual Perception",
        "origin_url": "https://github.com/DoranLyong/SPANetV2-official",
        **kwargs,
    }


default_cfgs = generate_default_cfgs({
    "spanetv2_s18_pure": _cfg(),
    "spanetv2_s18_hybrid": _cfg(),
    "spanetv2_s36_pure": _cfg(),
    "spanetv2_s36_hybrid": _cfg(),
    "spanetv2_m36_pure": _cfg(),
    "spanetv2_m36_hybrid": _cfg(),
    "spanetv2_b36_pure": _cfg(),
    "spanetv2_b36_hybrid": _cfg(),
    "test_spanetv2_pure": _cfg(input_size=(3, 160, 160), pool_size=(5, 5)),
    "test_spanetv2_hybrid": _cfg(input_size=(3, 160, 160), pool_size=(5, 5)),
})

_PURE = (ExSPAM, ExSPAM, ExSPAM, ExSPAM)
_HYBRID = (ExSPAM, ExSPAM, MixAttention, Attention)
_S18 = dict(depths=(3, 3, 9, 3), dims=(64, 128, 320, 512))
_S36 = dict(depths=(3, 12, 18, 3), dims=(64, 128, 320, 512))
_M36 = dict(depths=(3, 12, 18, 3), dims=(96, 192, 384, 576))
_B36 = dict(depths=(3, 12, 18, 3), dims=(128, 256, 512, 768))
_TEST = dict(depths=(1, 1, 2, 1), dims=(32, 64, 96, 128), img_size=160)


@register_model
def spanetv2_s18_pure(pretrained: bool = False, **kwargs) -> SPANetV2:
    return _create_spanetv2("spanetv2_s18_pure", pretrained, **dict(_S18, token_mixers=_PURE, **kwargs))


@register_model
def spanetv2_s18_hybrid(pretrained: bool = False, **kwargs) -> SPANetV2:
    return _create_spanetv2("spanetv2_s18_hybrid", pretrained, **dict(_S18, token_mixers=_HYBRID, **kwargs))


@register_model
def spanetv2_s36_pure(pretrained: bool = False, **kwargs) -> SPANetV2:
    return _create_spanetv2("spanetv2_s36_pure", pretrained, **dict(_S36, token_mixers=_PURE, **kwargs))


@register_model
def spanetv2_s36_hybrid(pretrained: bool = False, **kwargs) -> SPANetV2:
    return _create_spanetv2("spanetv2_s36_hybrid", pretrained, **dict(_S36, token_mixers=_HYBRID, **kwargs))


@register_model
def spanetv2_m36_pure(pretrained: bool = False, **kwargs) -> SPANetV2:
    return _create_spanetv2("spanetv2_m36_pure", pretrained, **dict(_M36, token_mixers=_PURE, **kwargs))


@register_model
def spanetv2_m36_hybrid(pretrained: bool = False, **kwargs) -> SPANetV2:
    return _create_spanetv2("spanetv2_m36_hybrid", pretrained, **dict(_M36, token_mixers=_HYBRID, **kwargs))


@register_model
def spanetv2_b36_pure(pretrained: bool = False, **kwargs) -> SPANetV2:
    return _create_spanetv2("spanetv2_b36_pure", pretrained, **dict(_B36, token_mixers=_PURE, **kwargs))


@register_model
def spanetv2_b36_hybrid(pretrained: bool = False, **kwargs) -> SPANetV2:
    return _create_spanetv2("spanetv2_b36_hybrid", pretrained, **dict(_B36, token_mixers=_HYBRID, **kwargs))


@register_model
def test_spanetv2_pure(pretrained: bool = False, **kwargs) -> SPANetV2:
    """Tiny pure variant (1,1,2,1 blocks, 160 px build size) for fast CI; no weights exist."""
    return _create_spanetv2("test_spanetv2_pure", pretrained, **dict(_TEST, token_mixers=_PURE, **kwargs))


@register_model
def test_spanetv2_hybrid(pretrained: bool = False, **kwargs) -> SPANetV2:
    """Tiny hybrid variant (1,1,2,1 blocks, 160 px build size) for fast CI; no weights exist."""
    return _create_spanetv2("test_spanetv2_hybrid", pretrained, **dict(_TEST, token_mixers=_HYBRID, **kwargs))
