"""FDAM: Frequency-Dynamic Attention Modulation on a DeiT / DeiT-III vision transformer.

Model card
----------
Paper: *Frequency-Dynamic Attention Modulation for Dense Prediction*, Linwei Chen, Lin Gu, Ying Fu,
ICCV 2025, arXiv:2507.12006.
Official code: https://github.com/Linwei-Chen/FDAM at commit 210232fc807bcaf55bfe799f848fcac20fbb5427,
class ``vit_models_freq`` in ``FDAM_mmseg/mmcv_custom/deit_fdam.py`` (an mmseg backbone); the only
released config is ``FDAM_mmseg/configs/vit/upernet_deit3-b16_512x512_160k_ade20k_freq.py``.
The repository states no licence. Re-implemented here from that code; state_dict names, shapes and
order are the official ones (387 entries), followed by our ``norm`` and ``head``.

FDAM adds two things to every block of a LayerScale ViT without class token:

* AttInv (``blocks.i.attn``): per-token, per-head gates computed from StarReLU(norm1(x)) rescale the
  attention output y = softmax(qk^T)v (low-pass, ``lf = tanh(.)``) and add back its high-pass
  complement v - y (``hf = 2s^2 / (s^2 + 0.3678)``, s = softplus(.)), each scaled by a per-channel
  gamma: y' = y + y * lf * lf_gamma + hf * (v - y) * hf_gamma.
* FreqScale (``blocks.i.freq_scale_{1,2}``): inside each residual branch, a + FS(a) with FS a
  per-sample filter on the 2-D rFFT of the branch output: 16 channel groups each mix 4 learned real
  filter banks with coefficients tanh(MLP(spatial mean)).

Variants (no official classification weights exist for any of them):

==================  ====================================  ==============  ==================  ==========================
name                architecture                          params          GMACs (FFTs not     reported result
                                                          backbone / +    counted)
                                                          norm+head(1k)
==================  ====================================  ==============  ==================  ==========================
``fdam_deit_t``     DeiT-T widths (192, 3 heads), 224     5,749,584 /     1.256 @224          none
                                                          5,942,968
``fdam_deit_s``     DeiT-S widths (384, 6 heads), 224     22,254,168 /    4.598 @224          ADE20K UperNet mIoU 44.3
                                                          22,639,936                          (README, no config)
``fdam_deit_b``     DeiT-B widths (768, 12 heads), 224    87,528,552 /    17.542 @224         none
                                                          88,299,088
``fdam_deit3_b``    as ``fdam_deit_b`` with the 32x32     88,164,456 /    107.3 @512          ADE20K UperNet mIoU 52.6
                    position grid of ``img_size=512``     88,934,992                          single-scale (released)
==================  ====================================  ==============  ==================  ==========================

Checkpoints: one official file, DeiT-III-B + FDAM + UperNet on ADE20K (README link to Baidu Netdisk,
code ``ICCV``). It is an mmcv checkpoint: ``meta`` plus ``state_dict`` whose keys carry ``backbone.``
(this network), ``neck.``, ``decode_head.`` and ``auxiliary_head.`` prefixes. Load it with
``timm.create_model('fdam_deit3_b', pretrained=True, pretrained_cfg_overlay=dict(file=path))``: the
backbone loads strictly, the segmentation heads are reported as ignored and our classification
``norm``/``head`` stay at init. :func:`checkpoint_filter_fn` also takes plain backbone state_dicts, our
own checkpoints, and timm / official DeiT and DeiT-III weights, the official initialisation: LayerScale
``ls1/ls2.gamma`` -> ``gamma_1/gamma_2``, class token and its position slot dropped, position grid
resampled, FDAM parameters left at their init (``zero_init_fdam=True`` zeroes lf_gamma, hf_gamma and
the filter banks, so the network starts as DeiT-III without its class token, exactly).

Evaluation preprocessing: ``fdam_deit3_b`` follows the ADE20K test pipeline (ImageNet mean/std,
keep-ratio resize to short side 512, whole-image inference at any size: position embedding and
filters are resized to the actual grid), so ``input_size=(3, 512, 512)``, ``crop_pct=1.0``,
bilinear. ``fdam_deit_t/s/b`` use their DeiT init checkpoints' ImageNet recipe (224, crop 0.9, bicubic).

Quirks of the official code reproduced here (trained weights depend on them):

1. No class token and no final norm on the features: tokens are the H x W patch grid (row-major);
   the backbone outputs (``forward_intermediates`` at (2, 5, 8, 11)) are raw block outputs.
2. ``pos_embed`` is a square G x G grid (G = img_size // 16) resized every forward with bicubic,
   align_corners=False, computed in float32 even in a float64 model (a float32 round trip also when
   the grid already matches).
3. FreqScale runs its rFFT (norm 'ortho') on a float32 copy of its input even in a float64 model;
   the product with the filter and the inverse FFT then run in the promoted dtype. The real filter
   acts on the non-shifted rFFT layout, and for other grids the 14 x 8 banks are resized in that
   wrapped layout (bicubic, align_corners=True) whenever the rFFT grid is not 14 x 8.
4. Channel c belongs to head c // (C / heads) for the AttInv gates and to filter group c // (C / 16)
   for FreqScale; both gates use the unmodified y (v - y is formed before the low-pass rescale).
5. StarReLU (learnable scalar scale and bias) feeds the AttInv gates and the FreqScale reweight MLP
   (no biases); LayerNorm eps 1e-6; exact GELU; every block gets the same drop-path rate.

Deviations: (a) ``forward`` is timm's classifier (final per-token ``norm``, token mean, ``head``),
which the official backbone lacks; ``num_classes=0, global_pool=''`` omits norm and head so the
state_dict is exactly the official one. (b) Outputs keep the model's dtype (the official ``forward``
casts its maps to ``output_dtype``, float32 by default). (c) Attention uses PyTorch's fused
scaled-dot-product kernel when timm enables it (same math; set ``attn.fused_attn = False`` for the
explicit softmax, whose probabilities pass ``attn.attn_drop``). (d) Inputs smaller than one patch
raise a ``ValueError``. (e) Identity taps (``attn.lp``, ``attn.hp``, ``attn.gate_lf``,
``attn.gate_hf``, ``attn.attinv``, ``freq_scale_k.kernel``) expose intermediate values to hooks
without adding state. (f) Loading DeiT v1 weights (no LayerScale) sets gamma_1/gamma_2 to 1 so the
blocks compute what DeiT computed; the official loader would leave them at 1e-4.

Dtypes: float32, float64 and bf16 autocast. A model cast wholly to bf16 fails at the next LayerNorm, as
the official one does: the float32 FFT island promotes the residual stream to float32.
"""
from __future__ import annotations

import logging
from typing import Callable, Dict, List, Optional, Set, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import DropPath, Mlp, trunc_normal_, use_fused_attn
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from timm.models._features import feature_take_indices
from timm.models._manipulate import checkpoint
from timm.models.metaformer import StarReLU

from freqlens.io import standins  # noqa: F401  (allowlists the numpy scalars of mmcv checkpoints' meta)
from freqlens.lens.probes import ProbePoint
from freqlens.models._checkpoint import unwrap_state_dict

__all__ = ["FdamViT"]

_logger = logging.getLogger(__name__)

_FILTER_GRID = (14, 8)  # rFFT grid of the 14 x 14 maps the filter banks are stored for


class PatchEmbed(nn.Module):
    """Non-overlapping patch projection; the conv floors sizes that are not multiples of the patch."""

    def __init__(self, patch_size: int, in_chans: int, embed_dim: int):
        super().__init__()
        self.patch_size = (patch_size, patch_size)
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_chans, H, W) -> (B, C, H // patch, W // patch)."""
        h, w = x.shape[-2:]
        if h < self.patch_size[0] or w < self.patch_size[1]:
            raise ValueError(f"input {h}x{w} is smaller than one {self.patch_size[0]}x{self.patch_size[1]} patch")
        # deit_fdam.py vit_models_freq.forward_features: the input is cast to the conv weight's dtype.
        return self.proj(x.to(self.proj.weight.dtype))


class FreqScale(nn.Module):
    """Per-sample frequency filter of a feature map (official ``GroupDynamicScale``).

    ``complex_weights`` (a real tensor, official name) holds ``num_filters`` banks of (C / groups)
    filters on the 14 x 8 rFFT grid; ``reweight`` maps the spatial mean to one coefficient per
    (group, bank). Returns only the filtered map FS(x); the block adds x.
    """

    def __init__(self, dim: int, groups: int = 16, num_filters: int = 4, reweight_ratio: float = 0.0625):
        super().__init__()
        if dim % groups:
            raise ValueError(f"FreqScale: dim {dim} is not divisible by {groups} groups")
        self.groups = groups
        self.num_filters = num_filters
        self.complex_weights = nn.Parameter(torch.zeros(num_filters, dim // groups, *_FILTER_GRID))
        trunc_normal_(self.complex_weights, std=1e-5)
        # deit_fdam.py Mlp: MetaFormer-style, no biases, StarReLU, hidden int(0.0625 * dim).
        self.reweight = Mlp(dim, int(reweight_ratio * dim), groups * num_filters, act_layer=StarReLU, bias=False)
        self.kernel = nn.Identity()  # tap: the per-sample filter K, (B, C, H, W // 2 + 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> FS(x), (B, C, H, W)."""
        b, c, h, w = x.shape
        # deit_fdam.py GroupDynamicScale: rFFT of a float32 copy, also in float64 models.
        spec = torch.fft.rfft2(x.float(), dim=(2, 3), norm="ortho")
        route = torch.tanh(self.reweight(x.mean(dim=(2, 3)))).view(b, self.groups, self.num_filters)
        banks = self.complex_weights
        if banks.shape[2:] != spec.shape[2:]:
            # Resized in the non-shifted rFFT layout with align_corners=True, as the official code does.
            banks = F.interpolate(banks, size=spec.shape[2:], mode="bicubic", align_corners=True)
        kernel = self.kernel(torch.einsum("bgf,fchw->bgchw", route, banks).reshape(b, c, h, w // 2 + 1))
        spec = torch.complex(spec.real * kernel, spec.imag * kernel)
        return torch.fft.irfft2(spec, s=(h, w), dim=(2, 3), norm="ortho")


class AttInvAttention(nn.Module):
    """Multi-head self-attention with Attention Inversion (official ``AttentionwithAttInv``)."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, attn_drop: float = 0.0):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"AttInv: dim {dim} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.fused_attn = use_fused_attn()
        # Registration order gives the official state_dict order.
        self.lf_gamma = nn.Parameter(torch.full((dim,), 1e-5))
        self.hf_gamma = nn.Parameter(torch.full((dim,), 1e-5))
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.dy_freq_2 = nn.Linear(dim, num_heads)  # low-pass gate logits
        self.dy_freq = nn.Linear(dim, num_heads)  # high-pass gate logits
        self.dy_freq_starrelu = StarReLU()
        # Taps: y = softmax(qk^T)v, v - y, the gates (B, N, heads), and y' before proj.
        self.lp = nn.Identity()
        self.hp = nn.Identity()
        self.gate_lf = nn.Identity()
        self.gate_hf = nn.Identity()
        self.attinv = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, C) -> (B, N, C)."""
        b, n, c = x.shape
        gate_in = self.dy_freq_starrelu(x)
        lf = self.gate_lf(torch.tanh(self.dy_freq_2(gate_in)))
        s2 = F.softplus(self.dy_freq(gate_in)) ** 2
        hf = self.gate_hf(2 * s2 / (s2 + 0.3678))  # saturates at 2; 0.3678 ~ 1/e (deit_fdam.py AttentionwithAttInv)
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        if self.fused_attn:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attn_drop.p if self.training else 0.0)
        else:
            attn = ((q * self.scale) @ k.transpose(-2, -1)).softmax(dim=-1)
            y = self.attn_drop(attn) @ v
        y = self.lp(y.transpose(1, 2).reshape(b, n, c))
        hp = self.hp(v.transpose(1, 2).reshape(b, n, c) - y)
        # Gates are per head: channel c (head-major) uses head c // head_dim, so broadcast them over a
        # (B, N, heads, head_dim) view rather than repeating them to (B, N, C)
        heads = (self.num_heads, self.head_dim)
        y4, hp4 = y.reshape(b, n, *heads), hp.reshape(b, n, *heads)
        y = y4 + y4 * lf[..., None] * self.lf_gamma.view(heads) + hf[..., None] * hp4 * self.hf_gamma.view(heads)
        return self.proj(self.attinv(y.reshape(b, n, c)))


class FdamBlock(nn.Module):
    """LayerScale transformer block with AttInv and a FreqScale inside each residual branch.

    Official ``Layer_scale_init_Block``: x += gamma_1 * (a + FS1(a)), a = attn(norm1(x)); then the
    same for the MLP branch with gamma_2 and FS2. FreqScale sees the branch as a (B, C, H, W) map.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
        drop_path: float = 0.0,
        init_values: float = 1e-4,
    ):
        super().__init__()
        # Registration order gives the official state_dict order.
        self.gamma_1 = nn.Parameter(torch.full((dim,), init_values))
        self.gamma_2 = nn.Parameter(torch.full((dim,), init_values))
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = AttInvAttention(dim, num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.freq_scale_1 = FreqScale(dim)
        self.freq_scale_2 = FreqScale(dim)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """(B, N, C) tokens of an h x w grid -> (B, N, C)."""
        a = self.attn(self.norm1(x))
        a = a + _to_tokens(self.freq_scale_1(_to_map(a, h, w)))
        x = x + self.drop_path(self.gamma_1 * a)
        m = self.mlp(self.norm2(x))
        m = m + _to_tokens(self.freq_scale_2(_to_map(m, h, w)))
        return x + self.drop_path(self.gamma_2 * m)


def _to_map(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(B, N, C) -> (B, C, h, w), row-major token grid."""
    return x.transpose(1, 2).reshape(x.shape[0], x.shape[2], h, w)


def _to_tokens(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, H * W, C)."""
    return x.flatten(2).transpose(1, 2)


def resize_pos_embed(pos_embed: torch.Tensor, grid: Tuple[int, int], new_grid: Tuple[int, int]) -> torch.Tensor:
    """Resize a (1, G_h * G_w, C) position embedding to another grid, the official way.

    Bicubic, align_corners=False, computed in float32 and cast back (``vit_models_freq._get_pos_embed``
    every forward, ``init_weights`` for checkpoints).
    """
    c = pos_embed.shape[-1]
    pos = pos_embed.reshape(1, grid[0], grid[1], c).permute(0, 3, 1, 2)
    pos = F.interpolate(pos.float(), size=new_grid, mode="bicubic", align_corners=False)
    return pos.reshape(1, c, new_grid[0] * new_grid[1]).permute(0, 2, 1).to(pos_embed.dtype)


class FdamViT(nn.Module):
    """ViT with LayerScale, no class token, AttInv attention and FreqScale (official ``vit_models_freq``).

    Args:
        img_size: training image size; fixes the square position grid (img_size // patch_size)^2.
            Any input of at least one patch runs (the grid is resized every forward).
        patch_size: patch (and stride) of the stem conv.
        in_chans: input channels.
        num_classes: classes of our ``head`` (0: no head).
        global_pool: ``'avg'`` (mean over tokens) or ``''`` (tokens to the head). With
            ``num_classes=0, global_pool=''`` the final ``norm`` is omitted too, so the state_dict is
            the official backbone's.
        embed_dim: width C (a multiple of 16 and of ``num_heads``).
        depth: number of blocks.
        num_heads: attention heads.
        mlp_ratio: MLP hidden width / C.
        qkv_bias: bias of the qkv projection (True in every official config).
        drop_rate: dropout before the head.
        attn_drop_rate: dropout on attention probabilities.
        drop_path_rate: stochastic depth, the same rate in every block (official; 0.15 in the
            released training config).
        init_values: LayerScale init.
        zero_init_fdam: start lf_gamma, hf_gamma and the FreqScale filter banks at 0 instead of the
            official 1e-5, so loaded ViT weights give exactly the plain ViT's output.
    """

    def __init__(
        self,
        img_size: Union[int, Tuple[int, int]] = 224,
        patch_size: int = 16,
        in_chans: int = 3,
        num_classes: int = 1000,
        global_pool: str = "avg",
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        init_values: float = 1e-4,
        zero_init_fdam: bool = False,
    ):
        super().__init__()
        _check_pool(global_pool)
        if isinstance(img_size, (tuple, list)):  # timm passes input_size[-2:] for fixed-size cfgs
            if img_size[0] != img_size[1]:
                raise ValueError(f"FDAM's position grid is square; got img_size {tuple(img_size)}")
            img_size = img_size[0]
        self.num_classes = num_classes
        self.global_pool = global_pool
        self.num_features = self.head_hidden_size = self.embed_dim = embed_dim
        self.num_prefix_tokens = 0
        self.grad_checkpointing = False
        self.pos_grid = (img_size // patch_size, img_size // patch_size)

        # Registration order gives the official state_dict order (pos_embed, patch_embed, blocks).
        self.pos_embed = nn.Parameter(torch.zeros(1, self.pos_grid[0] * self.pos_grid[1], embed_dim))
        self.patch_embed = PatchEmbed(patch_size, in_chans, embed_dim)
        self.blocks = nn.ModuleList([
            FdamBlock(
                embed_dim, num_heads, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, attn_drop=attn_drop_rate,
                drop_path=drop_path_rate, init_values=init_values,
            )
            for _ in range(depth)
        ])
        self.feature_info = [dict(module=f"blocks.{i}", num_chs=embed_dim, reduction=patch_size) for i in range(depth)]
        has_head = num_classes > 0 or global_pool != ""
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6) if has_head else nn.Identity()
        self.head_drop = nn.Dropout(drop_rate)
        self.head = nn.Linear(embed_dim, num_classes) if num_classes > 0 else nn.Identity()
        self._declare_probe_points()
        if zero_init_fdam:
            self.zero_fdam_()

    def _declare_probe_points(self) -> None:
        """Probe points: per block the attention before/after AttInv, both FreqScales, the block output."""
        r = self.patch_embed.patch_size[0]
        self.probe_points: List[ProbePoint] = []
        for i in range(len(self.blocks)):
            self.probe_points += [
                ProbePoint(f"blocks.{i}.attn.lp", "NLC", reduction=r, kind="mixer"),
                ProbePoint(f"blocks.{i}.attn.attinv", "NLC", reduction=r, kind="mixer"),
                ProbePoint(f"blocks.{i}.freq_scale_1", "NCHW", reduction=r, kind="freq"),
                ProbePoint(f"blocks.{i}.freq_scale_2", "NCHW", reduction=r, kind="freq"),
                ProbePoint(f"blocks.{i}", "NLC", reduction=r, kind="block"),
            ]
        if isinstance(self.norm, nn.LayerNorm):
            self.gradcam_target = ProbePoint("norm", "NLC", reduction=r, kind="norm")
        else:
            self.gradcam_target = ProbePoint(f"blocks.{len(self.blocks) - 1}", "NLC", reduction=r, kind="block")

    @torch.no_grad()
    def zero_fdam_(self) -> "FdamViT":
        """Zero lf_gamma, hf_gamma and every FreqScale filter bank: the blocks become plain LayerScale ViT blocks."""
        for name, param in self.named_parameters():
            if _is_zeroed_fdam_param(name):
                param.zero_()
        return self

    @torch.jit.ignore
    def no_weight_decay(self) -> Set[str]:
        return {"pos_embed"}

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> Dict:
        return dict(stem=r"^pos_embed|patch_embed", blocks=[(r"^blocks\.(\d+)", None), (r"^norm", (99999,))])

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: Optional[str] = None) -> None:
        """Replace the head (the final ``norm`` is kept as it is)."""
        self.num_classes = num_classes
        if global_pool is not None:
            _check_pool(global_pool)
            self.global_pool = global_pool
        self.head = nn.Linear(self.embed_dim, num_classes) if num_classes > 0 else nn.Identity()

    def _embed(self, x: torch.Tensor) -> Tuple[torch.Tensor, int, int]:
        x = self.patch_embed(x)
        h, w = x.shape[-2:]
        pos = resize_pos_embed(self.pos_embed, self.pos_grid, (h, w))
        return _to_tokens(x) + pos, h, w

    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: Optional[Union[int, List[int]]] = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
    ) -> Union[List[torch.Tensor], Tuple[torch.Tensor, List[torch.Tensor]]]:
        """Forward that also returns block outputs.

        The official backbone's four maps are ``indices=(2, 5, 8, 11)``, ``norm=False``, NCHW.

        Args:
            x: (B, in_chans, H, W) images.
            indices: blocks to return: last n if int, all if None, else the listed ones.
            norm: pass each returned block output through the final ``norm``.
            stop_early: skip the blocks after the last requested one.
            output_fmt: ``'NCHW'`` maps (B, C, H/16, W/16) or ``'NLC'`` tokens.
            intermediates_only: return only the list.

        Returns:
            The list, or (final normalised tokens, list).
        """
        if output_fmt not in ("NCHW", "NLC"):
            raise ValueError(f"output_fmt must be 'NCHW' or 'NLC', got {output_fmt!r}")
        take_indices, max_index = feature_take_indices(len(self.blocks), indices)
        x, h, w = self._embed(x)
        blocks = self.blocks[: max_index + 1] if stop_early and not torch.jit.is_scripting() else self.blocks
        intermediates = []
        for i, blk in enumerate(blocks):
            if self.grad_checkpointing and not torch.jit.is_scripting():
                x = checkpoint(blk, x, h, w)
            else:
                x = blk(x, h, w)
            if i in take_indices:
                y = self.norm(x) if norm else x
                intermediates.append(_to_map(y, h, w).contiguous() if output_fmt == "NCHW" else y)
        if intermediates_only:
            return intermediates
        return self.norm(x), intermediates

    def prune_intermediate_layers(
        self, indices: Union[int, List[int]] = 1, prune_norm: bool = False, prune_head: bool = True
    ) -> List[int]:
        """Drop the blocks after the last index (and optionally norm / head); returns the kept indices."""
        take_indices, max_index = feature_take_indices(len(self.blocks), indices)
        self.blocks = self.blocks[: max_index + 1]
        self.feature_info = self.feature_info[: max_index + 1]
        if prune_norm:
            self.norm = nn.Identity()
        if prune_head:
            self.reset_classifier(0, "")
        self._declare_probe_points()
        return take_indices

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_chans, H, W) -> normalised tokens (B, N, C), N = (H // 16) * (W // 16)."""
        x, h, w = self._embed(x)
        for blk in self.blocks:
            if self.grad_checkpointing and not torch.jit.is_scripting():
                x = checkpoint(blk, x, h, w)
            else:
                x = blk(x, h, w)
        return self.norm(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        if self.global_pool == "avg":
            x = x.mean(dim=1)
        x = self.head_drop(x)
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _check_pool(global_pool: str) -> None:
    if global_pool not in ("", "avg"):
        raise ValueError(f"global_pool must be 'avg' or '', got {global_pool!r}")


# Parameters FDAM adds to a LayerScale ViT block (absent from DeiT / DeiT-III checkpoints).
_FDAM_PARAM_MARKERS = (".attn.lf_gamma", ".attn.hf_gamma", ".attn.dy_freq", ".freq_scale_")
_ZEROED_FDAM_PARAMS = (".attn.lf_gamma", ".attn.hf_gamma", ".complex_weights")
_HEAD_PREFIXES = ("norm.", "head.")


def _is_fdam_param(name: str) -> bool:
    return any(marker in name for marker in _FDAM_PARAM_MARKERS)


def _is_zeroed_fdam_param(name: str) -> bool:
    return name.endswith(_ZEROED_FDAM_PARAMS)


def _is_head_param(name: str) -> bool:
    return name.startswith(_HEAD_PREFIXES)


def _convert_mmseg(state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """mmseg segmentor (``backbone.`` + neck / heads): keep the backbone, report what is dropped."""
    backbone = {k[len("backbone."):]: v for k, v in state_dict.items() if k.startswith("backbone.")}
    ignored: Dict[str, int] = {}
    for k in state_dict:
        if not k.startswith("backbone."):
            prefix = k.split(".", 1)[0]
            ignored[prefix] = ignored.get(prefix, 0) + 1
    if ignored:
        listing = ", ".join(f"{p}. ({n} entries)" for p, n in sorted(ignored.items()))
        _logger.warning(f"FDAM: loading the mmseg backbone only; ignored {listing}")
    return backbone


def _convert_deit(state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """DeiT / DeiT-III (timm or official names): LayerScale renamed, prefix tokens dropped."""
    out = {}
    for k, v in state_dict.items():
        if k in ("cls_token", "dist_token") or k.startswith("head_dist."):
            continue
        k = k.replace(".ls1.gamma", ".gamma_1").replace(".ls2.gamma", ".gamma_2")
        if k == "pos_embed":
            n = v.shape[1]
            side = int(n**0.5)
            v = v[:, n - side * side:]  # class/distillation slots come first (none with no_embed_class)
        out[k] = v
    return out


def _resample_to(state_dict: Dict[str, torch.Tensor], model: FdamViT) -> None:
    """Resize ``pos_embed`` to the model's grid and the stem kernel to its patch size (official init)."""
    pos = state_dict.get("pos_embed")
    if pos is not None and pos.shape[1] != model.pos_embed.shape[1]:
        side = int(pos.shape[1] ** 0.5)
        if side * side != pos.shape[1]:
            raise ValueError(f"checkpoint pos_embed has {pos.shape[1]} positions, not a square grid")
        state_dict["pos_embed"] = resize_pos_embed(pos, (side, side), model.pos_grid)
    stem = state_dict.get("patch_embed.proj.weight")
    patch = model.patch_embed.patch_size
    if stem is not None and tuple(stem.shape[-2:]) != patch:
        state_dict["patch_embed.proj.weight"] = F.interpolate(
            stem.float(), size=patch, mode="bicubic", align_corners=False
        ).to(stem.dtype)


def _complete(
    state_dict: Dict[str, torch.Tensor], model: FdamViT, may_stay_at_init: Callable[[str], bool], source: str
) -> Dict[str, torch.Tensor]:
    """Fill the entries a source cannot have from the model's init; any other missing entry is an error."""
    target = model.state_dict()
    dropped = [k for k in state_dict if _is_head_param(k) and k not in target]
    for k in dropped:  # a classifier checkpoint loaded into the headless backbone
        del state_dict[k]
    unexpected = [k for k in state_dict if k not in target]
    if unexpected:  # checked here: timm loads non-strictly whenever num_classes differs from the cfg
        raise ValueError(
            f"FDAM: {source} checkpoint has {len(unexpected)} entries the model lacks, e.g. {unexpected[:5]}"
        )
    missing = [k for k in target if k not in state_dict]
    absent = [k for k in missing if not may_stay_at_init(k)]
    if absent:
        raise ValueError(f"FDAM: {source} checkpoint lacks {len(absent)} entries of the model, e.g. {absent[:5]}")
    for k in missing:
        state_dict[k] = target[k].detach().clone()
    if missing:
        _logger.info(f"FDAM: {len(missing)} entries not in the {source} checkpoint keep their init: {missing[:8]}...")
    return state_dict


def checkpoint_filter_fn(state_dict: Dict, model: FdamViT) -> Dict[str, torch.Tensor]:
    """Map a checkpoint onto :class:`FdamViT`.

    Sources: official mmseg segmentor checkpoints (``meta`` + ``state_dict`` with ``backbone.`` keys;
    the backbone must be complete, the rest is reported and ignored), plain official backbone
    state_dicts, our own checkpoints, and DeiT / DeiT-III weights (timm or official naming), which
    initialise everything but the FDAM parameters (left at the model's init, see ``zero_init_fdam``).
    Our ``norm``/``head`` stay at init when the source has none; DDP ``module.`` prefixes are stripped.
    """
    state_dict = unwrap_state_dict(state_dict, ("state_dict", "model"))
    if any(k.startswith("backbone.") for k in state_dict):
        state_dict, source = _convert_mmseg(state_dict), "mmseg"
        may_stay_at_init = _is_head_param
    elif "cls_token" in state_dict or any(".ls1.gamma" in k for k in state_dict):
        no_layer_scale = not any(".ls1.gamma" in k or ".gamma_1" in k for k in state_dict)
        state_dict, source = _convert_deit(state_dict), "DeiT"
        if no_layer_scale:  # DeiT v1: LayerScale 1 reproduces its blocks (deviation (f) in the module doc)
            for k, v in model.state_dict().items():
                if k.endswith((".gamma_1", ".gamma_2")):
                    state_dict[k] = torch.ones_like(v)
        may_stay_at_init = lambda k: _is_fdam_param(k) or _is_head_param(k)  # noqa: E731
    else:
        source = "FDAM"
        may_stay_at_init = _is_head_param
    _resample_to(state_dict, model)
    return _complete(state_dict, model, may_stay_at_init, source)


def _create_fdam(variant: str, pretrained: bool = False, **kwargs) -> FdamViT:
    return build_model_with_cfg(  # with features_only, timm moves a given out_indices into feature_cfg
        FdamViT,
        variant,
        pretrained,
        pretrained_filter_fn=checkpoint_filter_fn,
        feature_cfg=dict(out_indices=(2, 5, 8, 11), feature_cls="getter"),
        **kwargs,
    )


def _cfg(**kwargs) -> Dict:
    return {
        "num_classes": 1000,
        "input_size": (3, 224, 224),
        "pool_size": None,
        "crop_pct": 0.9,
        "interpolation": "bicubic",
        "fixed_input_size": False,
        "mean": IMAGENET_DEFAULT_MEAN,
        "std": IMAGENET_DEFAULT_STD,
        "first_conv": "patch_embed.proj",
        "classifier": "head",
        "license": "unknown",  # the official repository has no licence file
        "paper_ids": "arXiv:2507.12006",
        "paper_name": "Frequency-Dynamic Attention Modulation for Dense Prediction",
        "origin_url": "https://github.com/Linwei-Chen/FDAM",
        **kwargs,
    }


default_cfgs = generate_default_cfgs({
    "fdam_deit_t": _cfg(),
    "fdam_deit_s": _cfg(),
    "fdam_deit_b": _cfg(),
    # ADE20K whole-image test pipeline of the released UperNet config (see the module docstring).
    "fdam_deit3_b": _cfg(input_size=(3, 512, 512), crop_pct=1.0, interpolation="bilinear"),
})


@register_model
def fdam_deit_t(pretrained: bool = False, **kwargs) -> FdamViT:
    """FDAM on DeiT-Tiny widths (no official weights)."""
    model_args = dict(img_size=224, embed_dim=192, depth=12, num_heads=3)
    return _create_fdam("fdam_deit_t", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def fdam_deit_s(pretrained: bool = False, **kwargs) -> FdamViT:
    """FDAM on DeiT-Small widths (the paper's DeiT-S + FDAM; its code was not released)."""
    model_args = dict(img_size=224, embed_dim=384, depth=12, num_heads=6)
    return _create_fdam("fdam_deit_s", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def fdam_deit_b(pretrained: bool = False, **kwargs) -> FdamViT:
    """FDAM on DeiT-Base widths at 224 (architecture of ``fdam_deit3_b`` with a 14 x 14 grid)."""
    model_args = dict(img_size=224, embed_dim=768, depth=12, num_heads=12)
    return _create_fdam("fdam_deit_b", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def fdam_deit3_b(pretrained: bool = False, **kwargs) -> FdamViT:
    """FDAM on DeiT-III-Base with the 32 x 32 position grid of the released ADE20K model."""
    model_args = dict(img_size=512, embed_dim=768, depth=12, num_heads=12)
    return _create_fdam("fdam_deit3_b", pretrained=pretrained, **dict(model_args, **kwargs))
