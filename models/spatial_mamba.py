"""Spatial-Mamba: visual state space models with structure-aware state fusion.

Paper: *Spatial-Mamba: Effective Visual State Space Models via Structure-Aware State Fusion*, ICLR 2025,
arXiv 2410.15091. Official code: https://github.com/EdwardChasel/Spatial-Mamba at commit
71221ebfaa5fe797445be0292f0ec7048fe457c1 (`classification/models/spatialmamba.py`, `utils.py`),
Apache-2.0. Written from that code; the state_dict is identical to the official one.

Variants (ImageNet-1k, 224x224; params measured here, GFLOPs and top-1 from the official README):

| name             | dims | depths        | drop_path | params     | GFLOPs | top-1 |
|------------------|------|---------------|-----------|------------|--------|-------|
| `spatialmamba_t` | 64   | (2, 4, 8, 4)  | 0.2       | 26,748,862 | 4.5    | 83.5  |
| `spatialmamba_s` | 64   | (2, 4, 21, 5) | 0.3       | 43,074,280 | 7.1    | 84.6  |
| `spatialmamba_b` | 96   | (2, 4, 21, 5) | 0.5       | 95,745,592 | 15.8   | 85.3  |

Checkpoints: Google-Drive links in the official README (ImageNet-1k T/S/B; Mask R-CNN and UPerNet
backbones). Classification files are `torch.save` dicts with `model` (state_dict) and, from EMA
training, `model_ema`, plus `optimizer`, `lr_scheduler`, `config` (a yacs CfgNode), ... Which of the
two the README accuracy uses is undocumented; `checkpoint_filter_fn` takes `model` unless asked for the
EMA. mmdet/mmseg files hold `state_dict` with a `backbone.` prefix and per-stage `outnorm{i}` norms.
Evaluation preprocessing: resize 256 (bicubic), centre crop 224, ImageNet mean/std.

Architecture: conv stem (/4) -> 4 stages of blocks (cpe conv, LayerNorm, structure-aware SSM, cpe conv,
LayerNorm, MLP) with conv downsamplers between them; LayerNorm per token, mean pool, linear head.
The residual stream is NHWC. The SSM runs ONE forward selective scan (d_state 1) over the row-major
token order, then fuses each channel's state grid with three dilated (1, 3, 5) 3x3 depthwise convs on
replicate-padded input ("structure-aware state fusion"), then reads it out as h~ * C + u * D.

Quirks kept or deliberately not kept (see also the comments at each place):
- LayerNorm eps is 1e-5 everywhere (the block's own 1e-6 default is overridden by the model).
- dt_rank = ceil(d_model / 16), from d_model, not from d_inner.
- The scan and the fusion run in float32 (float64 for float64 models), also under autocast, like the
  official kernels (fp32 output); y = h~ * C + u * D then promotes to float32.
- `drop_rate` is a dropout on the stem output (`pos_drop`), not before the head (official behaviour).
- NOT kept: the official eval path caches the merged fusion kernel at the first eval forward in the
  default dtype and never refreshes it (stale after loading weights, training, dtype/device moves), and
  its CUDA depthwise kernel has no backward (eval-mode gradients fail). Here the fusion is computed from
  the current parameters at every forward, in the activation dtype, and is differentiable; the training
  and eval paths of the official code are the same function, so outputs agree.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import DropPath, Mlp, trunc_normal_
from timm.models import build_model_with_cfg, clean_state_dict, generate_default_cfgs, register_model
from timm.models._features import feature_take_indices
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from freqlens.lens.probes import ProbePoint
from freqlens.ops.selective_scan import selective_scan

__all__ = ["SpatialMamba"]


class ConvLayer(nn.Module):
    """Conv2d -> optional BatchNorm2d -> optional ReLU (`utils.py: ConvLayer`)."""

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int = 0,
        groups: int = 1,
        bias: bool = True,
        norm: bool = True,
        act: bool = True,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_chs, out_chs, kernel_size, stride, padding, groups=groups, bias=bias)
        self.norm = nn.BatchNorm2d(out_chs) if norm else None
        self.act = nn.ReLU() if act else None

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)
        if self.norm is not None:
            x = self.norm(x)
        if self.act is not None:
            x = self.act(x)
        return x


class Stem(nn.Module):
    """Three conv stages to stride 4 with a residual in the middle; NCHW in, NHWC out (`utils.py: Stem`)."""

    def __init__(self, in_chans: int, embed_dim: int) -> None:
        super().__init__()
        half = embed_dim // 2
        self.conv1 = ConvLayer(in_chans, half, 3, stride=2, padding=1, bias=False)
        self.conv2 = nn.Sequential(
            ConvLayer(half, half, 3, padding=1, bias=False),
            ConvLayer(half, half, 3, padding=1, bias=False, act=False),
        )
        self.conv3 = nn.Sequential(
            ConvLayer(half, embed_dim * 4, 3, stride=2, padding=1, bias=False),
            ConvLayer(embed_dim * 4, embed_dim, 1, bias=False, act=False),
        )

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv1(x)
        x = self.conv2(x) + x
        x = self.conv3(x)
        return x.permute(0, 2, 3, 1)


class DownSampling(nn.Module):
    """1x1 expand (8x) -> stride-2 depthwise 3x3 -> 1x1 to 2x channels + BN; NHWC in and out (`utils.py`)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        hidden = 8 * dim  # int(2 * dim * ratio), ratio 4
        self.conv = nn.Sequential(
            ConvLayer(dim, hidden, 1, norm=False),
            ConvLayer(hidden, hidden, 3, stride=2, padding=1, groups=hidden, norm=False),
            ConvLayer(hidden, 2 * dim, 1, act=False),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class StateScan(nn.Module):
    """The selective scan of the mixer, returning the raw hidden-state grid h (B, E, H, W).

    A module of its own so that h is observable as a module output (probe point). Semantics of the
    official `selective_scan_cuda_oflex_rh` kernel: the states themselves (no C, no D), float32.
    """

    def __init__(self, backend: str) -> None:
        super().__init__()
        self.backend = backend

    def forward(self, u: Tensor, dt: Tensor, A: Tensor, Bc: Tensor, dt_bias: Tensor, hw: tuple[int, int]) -> Tensor:
        _, h = selective_scan(
            u, dt, A, Bc[:, None], None, delta_bias=dt_bias, delta_softplus=True, return_hidden=True,
            backend=self.backend,
        )
        return h.view(u.shape[0], u.shape[1], *hw)  # N = 1


class StateFusion(nn.Module):
    """Structure-aware state fusion: sum_k alpha_k * dilated (1, 3, 5) depthwise 3x3 cross-correlation
    of the state grid with replicate (edge) padding; NCHW in and out.

    The official eval path merges the three kernels into one 11x11 kernel, cached once in the default
    dtype and applied by a CUDA kernel without backward (`spatialmamba.py: StateFusion`). The training
    path (three dilated convs) is the same function; we always use it, from the current parameters, in
    the activation dtype and with autocast off (the official fusion is fp32).
    """

    dilations = (1, 3, 5)

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.kernel_3 = nn.Parameter(torch.ones(dim, 1, 3, 3))
        self.kernel_3_1 = nn.Parameter(torch.ones(dim, 1, 3, 3))
        self.kernel_3_2 = nn.Parameter(torch.ones(dim, 1, 3, 3))
        self.alpha = nn.Parameter(torch.ones(3))  # shared by all channels, not normalised

    def forward(self, h: Tensor) -> Tensor:
        pad = max(self.dilations)
        with torch.autocast(device_type=h.device.type, enabled=False):
            # One replicate pad by 5; a pad by d is its centre crop (edge clamping is the same).
            padded = F.pad(h, (pad,) * 4, mode="replicate")
            out = None
            for alpha, kernel, d in zip(self.alpha, (self.kernel_3, self.kernel_3_1, self.kernel_3_2), self.dilations):
                m = pad - d
                crop = padded[..., m:padded.shape[-2] - m, m:padded.shape[-1] - m]
                term = F.conv2d(crop, (alpha * kernel).to(h.dtype), dilation=d, groups=self.dim)
                out = term if out is None else out + term
        return out


class StructureAwareSSM(nn.Module):
    """The token mixer (`spatialmamba.py: StructureAwareSSM`); NHWC in and out.

    Parameters are registered before the child modules, as in the official class, so the state_dict
    order matches.
    """

    def __init__(
        self,
        d_model: int,
        expand: int = 2,
        dropout: float = 0.0,
        scan_backend: str = "auto",
    ) -> None:
        super().__init__()
        d_state = 1  # the official code hard-wires N = 1 (rearrange "b d 1 (h w)", h * Cs broadcast, kernel buffer)
        self.d_inner = d_inner = expand * d_model
        self.dt_rank = dt_rank = math.ceil(d_model / 16)  # from d_model, not d_inner
        # Raw parameters, initialised as the official code does (a deleted nn.Linear for x_proj, dt_init
        # "random" for dt_proj, S4D-real A = -1, D = 1).
        x_proj = nn.Linear(d_inner, dt_rank + 2 * d_state, bias=False)
        self.x_proj_weight = nn.Parameter(x_proj.weight.detach().clone())
        dt_std = dt_rank ** -0.5
        self.dt_projs_weight = nn.Parameter(torch.empty(d_inner, dt_rank).uniform_(-dt_std, dt_std))
        dt = torch.exp(torch.rand(d_inner) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3)).clamp(min=1e-4)
        self.dt_projs_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))  # inverse softplus
        self.A_logs = nn.Parameter(torch.log(torch.arange(1, d_state + 1, dtype=torch.float32)).repeat(d_inner, 1))
        self.Ds = nn.Parameter(torch.ones(d_inner))

        self.in_proj = nn.Linear(d_model, 2 * d_inner, bias=False)
        self.conv2d = nn.Conv2d(d_inner, d_inner, 3, padding=1, groups=d_inner, bias=True)
        self.act = nn.SiLU()
        self.scan = StateScan(scan_backend)
        self.state_fusion = StateFusion(d_inner)
        self.out_norm = nn.LayerNorm(d_inner)
        self.out_proj = nn.Linear(d_inner, d_model, bias=False)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        batch, height, width, _ = x.shape
        length = height * width
        x, z = self.in_proj(x).chunk(2, dim=-1)
        u = self.act(self.conv2d(x.permute(0, 3, 1, 2))).reshape(batch, self.d_inner, length)
        x_dbl = torch.matmul(self.x_proj_weight.view(1, -1, self.d_inner), u)
        dts, Bs, Cs = torch.split(x_dbl, [self.dt_rank, 1, 1], dim=1)
        dts = torch.matmul(self.dt_projs_weight.view(1, self.d_inner, -1), dts)
        h = self.scan(u, dts, -torch.exp(self.A_logs), Bs, self.dt_projs_bias, (height, width))
        h = self.state_fusion(h).flatten(2)
        # Observation: Cs is one scalar per token, shared by all channels; the skip uses u (post conv+SiLU).
        y = h * Cs + u * self.Ds.view(-1, 1)
        y = self.out_norm(y.view(batch, self.d_inner, height, width).permute(0, 2, 3, 1))
        y = y * F.silu(z)  # gate after out_norm
        return self.dropout(self.out_proj(y))


class SpatialMambaBlock(nn.Module):
    """cpe1 -> SSM -> cpe2 -> MLP, each residual; NHWC (`spatialmamba.py: SpatialMambaBlock`)."""

    def __init__(
        self,
        dim: int,
        drop_path: float = 0.0,
        mlp_ratio: float = 4.0,
        attn_drop: float = 0.0,
        scan_backend: str = "auto",
    ) -> None:
        super().__init__()
        self.cpe1 = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        self.ln_1 = nn.LayerNorm(dim)
        self.self_attention = StructureAwareSSM(dim, dropout=attn_drop, scan_backend=scan_backend)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.cpe2 = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        self.ln_2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=nn.GELU)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.cpe1(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        x = x + self.drop_path(self.self_attention(self.ln_1(x)))
        x = x + self.cpe2(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        x = x + self.drop_path(self.mlp(self.ln_2(x)))
        return x


class SpatialMambaLayer(nn.Module):
    """One stage: blocks, then the downsampler (Identity after the last stage; official: None)."""

    def __init__(
        self,
        dim: int,
        depth: int,
        drop_path: list[float],
        downsample: bool,
        mlp_ratio: float = 4.0,
        attn_drop: float = 0.0,
        scan_backend: str = "auto",
    ) -> None:
        super().__init__()
        self.grad_checkpointing = False
        self.blocks = nn.ModuleList(
            SpatialMambaBlock(dim, drop_path[i], mlp_ratio, attn_drop, scan_backend=scan_backend) for i in range(depth)
        )
        self.downsample = DownSampling(dim) if downsample else nn.Identity()

    def forward_blocks(self, x: Tensor) -> Tensor:
        for block in self.blocks:
            if self.grad_checkpointing and not torch.jit.is_scripting():
                x = checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
        return x

    def forward(self, x: Tensor) -> Tensor:
        return self.downsample(self.forward_blocks(x))


class SpatialMamba(nn.Module):
    """Spatial-Mamba classifier (`spatialmamba.py: SpatialMamba`).

    Args:
        in_chans: input channels.
        num_classes: classes of the linear head (0: no head).
        global_pool: "avg" (mean over tokens after the final LayerNorm) or "" (no pooling).
        depths: blocks per stage.
        dims: channels of stage 0 (an int, doubled per stage) or of every stage.
        d_state: SSM state size; only 1 exists (official code hard-wires it).
        mlp_ratio: MLP hidden width / dim.
        drop_rate: dropout on the stem output (official `pos_drop`).
        attn_drop_rate: dropout on each mixer's output.
        drop_path_rate: stochastic depth, linear over all blocks.
        scan_backend: `freqlens.ops.selective_scan` backend ("auto", "reference", "fast").
        out_norms: add the per-stage LayerNorms `outnorm{i}` of the official dense-prediction backbone
            (`Backbone_SpatialMamba`, mmdet/mmseg checkpoints); `forward_intermediates(norm=True)`
            applies them.
    """

    def __init__(
        self,
        in_chans: int = 3,
        num_classes: int = 1000,
        global_pool: str = "avg",
        depths: tuple[int, ...] = (2, 4, 8, 4),
        dims: int | tuple[int, ...] = 64,
        d_state: int = 1,
        mlp_ratio: float = 4.0,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.1,
        scan_backend: str = "auto",
        out_norms: bool = False,
    ) -> None:
        super().__init__()
        if global_pool not in ("avg", ""):
            raise ValueError(f"global_pool must be 'avg' or '', got {global_pool!r}")
        if d_state != 1:
            raise ValueError(f"Spatial-Mamba supports only d_state=1 (as the official code), got d_state={d_state}")
        num_stages = len(depths)
        dims = [dims * 2 ** i for i in range(num_stages)] if isinstance(dims, int) else list(dims)
        self.num_classes = num_classes
        self.global_pool = global_pool
        self.num_features = self.head_hidden_size = dims[-1]
        self.dims = dims

        self.patch_embed = Stem(in_chans, dims[0])
        self.pos_drop = nn.Dropout(drop_rate)
        dpr = [x.item() for x in torch.linspace(0, drop_path_rate, sum(depths))]
        self.layers = nn.ModuleList()
        self.feature_info = []
        self.probe_points = [ProbePoint("patch_embed", "NHWC", reduction=4, kind="stem")]
        reduction = 4
        for i, depth in enumerate(depths):
            self.layers.append(SpatialMambaLayer(
                dims[i], depth, dpr[sum(depths[:i]):sum(depths[:i + 1])], downsample=i < num_stages - 1,
                mlp_ratio=mlp_ratio, attn_drop=attn_drop_rate, scan_backend=scan_backend,
            ))
            last = f"layers.{i}.blocks.{depth - 1}"
            self.feature_info.append(dict(num_chs=dims[i], reduction=reduction, module=last))
            for j in range(depth):
                block = f"layers.{i}.blocks.{j}"
                mixer = f"{block}.self_attention"
                self.probe_points += [
                    ProbePoint(f"{mixer}.scan", "NCHW", reduction=reduction, kind="state"),
                    ProbePoint(f"{mixer}.state_fusion", "NCHW", reduction=reduction, kind="freq"),
                    ProbePoint(mixer, "NHWC", reduction=reduction, kind="mixer"),
                    ProbePoint(block, "NHWC", reduction=reduction, kind="stage" if block == last else "block"),
                ]
            if i < num_stages - 1:
                reduction *= 2
                self.probe_points.append(
                    ProbePoint(f"layers.{i}.downsample", "NHWC", reduction=reduction, kind="downsample"))
        self.gradcam_target = self.probe_points[-1]

        self.norm = nn.LayerNorm(self.num_features)  # eps 1e-5: the official model passes nn.LayerNorm
        self.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        self.out_norms = out_norms
        if out_norms:
            for i, dim in enumerate(dims):
                self.add_module(f"outnorm{i}", nn.LayerNorm(dim))
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        # Official: {'absolute_pos_embed'}, a parameter that does not exist; 1-d params and biases are
        # exempt by the optimizer's own rule (A_logs, 2-d, is decayed).
        return set()

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict:
        return dict(
            stem=r"^patch_embed",
            blocks=r"^layers\.(\d+)" if coarse else [
                (r"^layers\.(\d+)\.blocks\.(\d+)", None),
                (r"^layers\.(\d+)\.downsample", (0,)),
                (r"^norm", (99999,)),
            ],
        )

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        for layer in self.layers:
            layer.grad_checkpointing = enable

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        if global_pool is not None:
            if global_pool not in ("avg", ""):
                raise ValueError(f"global_pool must be 'avg' or '', got {global_pool!r}")
            self.global_pool = global_pool
        self.num_classes = num_classes
        self.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def forward_intermediates(
        self,
        x: Tensor,
        indices: int | list[int] | None = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
    ) -> list[Tensor] | tuple[Tensor, list[Tensor]]:
        """Stage features: the output of each stage's last block, before the downsampler.

        Args:
            x: input images (B, C, H, W).
            indices: last n stages if int, all if None, else these stage indices.
            norm: apply `outnorm{i}` to each feature when the model has them (dense-prediction
                layout), else the final LayerNorm to the last stage's feature.
            stop_early: stop after the last requested stage.
            output_fmt: "NCHW" or "NHWC".
            intermediates_only: return only the features.
        """
        if output_fmt not in ("NCHW", "NHWC"):
            raise ValueError(f"output_fmt must be 'NCHW' or 'NHWC', got {output_fmt!r}")
        take_indices, max_index = feature_take_indices(len(self.layers), indices)
        last_index = len(self.layers) - 1
        layers = self.layers[:max_index + 1] if stop_early else self.layers
        intermediates = []
        x = self.pos_drop(self.patch_embed(x))
        for i, layer in enumerate(layers):
            x = layer.forward_blocks(x)
            if i in take_indices:
                feat = x
                if norm and self.out_norms:
                    feat = self.get_submodule(f"outnorm{i}")(x)
                elif norm and i == last_index:
                    feat = self.norm(x)
                intermediates.append(feat.permute(0, 3, 1, 2) if output_fmt == "NCHW" else feat)
            x = layer.downsample(x)
        if intermediates_only:
            return intermediates
        if len(layers) == len(self.layers):
            x = self.norm(x)
        return x, intermediates

    def prune_intermediate_layers(
        self, indices: int | list[int] = 1, prune_norm: bool = False, prune_head: bool = True
    ) -> list[int]:
        """Drop the stages (and their downsamplers), norm and head not needed for these features."""
        take_indices, max_index = feature_take_indices(len(self.layers), indices)
        if max_index < len(self.layers) - 1:
            self.layers = self.layers[:max_index + 1]
            self.layers[-1].downsample = nn.Identity()
            self.num_features = self.head_hidden_size = self.dims[max_index]
            prune_norm = prune_head = True
        if prune_norm:
            self.norm = nn.Identity()
        if prune_head:
            self.reset_classifier(0, "")
        return take_indices

    def forward_features(self, x: Tensor) -> Tensor:
        """Final features (B, H/32, W/32, C), LayerNorm applied per token (NHWC)."""
        x = self.pos_drop(self.patch_embed(x))
        for layer in self.layers:
            x = layer(x)
        return self.norm(x)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        if self.global_pool == "avg":
            x = x.mean(dim=(1, 2))  # official: flatten tokens, AdaptiveAvgPool1d (norm before pooling)
        return x if pre_logits else self.head(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


def _convert_dense_backbone(state_dict: dict[str, Tensor], keep_out_norms: bool) -> dict[str, Tensor]:
    """mmdet/mmseg (`Backbone_SpatialMamba`): keep `backbone.*`, drop the decode heads, keep `outnorm{i}`
    only for a model built with ``out_norms=True``.

    These files have no final `norm` / `head`: load them with ``features_only=True`` or
    ``num_classes=0`` (timm then loads non-strictly and the final norm keeps its initial values).
    """
    out = {k.removeprefix("backbone."): v for k, v in state_dict.items() if k.startswith("backbone.")}
    return {k: v for k, v in out.items() if keep_out_norms or not k.startswith("outnorm")}


def checkpoint_filter_fn(state_dict: dict, model: SpatialMamba, use_ema: bool = False) -> dict[str, Tensor]:
    """Map an official checkpoint to this model's state_dict.

    Accepts a plain state_dict, a training checkpoint (`model`, or `model_ema` when ``use_ema``), DDP
    `module.` prefixes, and mmdet/mmseg backbone checkpoints (`state_dict`, `backbone.` prefix). timm's
    own file loader has already picked a sub-dict (preferring `model_ema`) when it calls this.
    """
    key = "model_ema" if use_ema else "model"
    if key in state_dict:
        state_dict = state_dict[key]
    elif use_ema:
        raise ValueError("checkpoint has no 'model_ema' entry; load with use_ema=False")
    elif "state_dict" in state_dict:
        state_dict = state_dict["state_dict"]
    state_dict = clean_state_dict(state_dict)
    if any(k.startswith("backbone.") for k in state_dict):
        return _convert_dense_backbone(state_dict, keep_out_norms=model.out_norms)
    return state_dict


def _create_spatial_mamba(variant: str, pretrained: bool = False, **kwargs) -> SpatialMamba:
    stages = len(kwargs.get("depths", (2, 4, 8, 4)))
    return build_model_with_cfg(  # with features_only, timm moves a given out_indices into feature_cfg
        SpatialMamba, variant, pretrained,
        pretrained_filter_fn=checkpoint_filter_fn,
        feature_cfg=dict(out_indices=tuple(range(stages)), feature_cls="getter"),
        **kwargs,
    )


def _cfg(**kwargs) -> dict:
    return {
        "num_classes": 1000, "input_size": (3, 224, 224), "pool_size": (7, 7),
        "crop_pct": 0.875, "interpolation": "bicubic", "fixed_input_size": False,
        "mean": IMAGENET_DEFAULT_MEAN, "std": IMAGENET_DEFAULT_STD,
        "first_conv": "patch_embed.conv1.conv", "classifier": "head",
        "license": "apache-2.0", "paper_ids": "arXiv:2410.15091",
        "paper_name": "Spatial-Mamba: Effective Visual State Space Models via Structure-Aware State Fusion",
        "origin_url": "https://github.com/EdwardChasel/Spatial-Mamba",
        **kwargs,
    }


default_cfgs = generate_default_cfgs({
    "spatialmamba_t.in1k": _cfg(),
    "spatialmamba_s.in1k": _cfg(),
    "spatialmamba_b.in1k": _cfg(),
})


@register_model
def spatialmamba_t(pretrained: bool = False, **kwargs) -> SpatialMamba:
    model_args = dict(depths=(2, 4, 8, 4), dims=64, drop_path_rate=0.2)
    return _create_spatial_mamba("spatialmamba_t", pretrained, **dict(model_args, **kwargs))


@register_model
def spatialmamba_s(pretrained: bool = False, **kwargs) -> SpatialMamba:
    model_args = dict(depths=(2, 4, 21, 5), dims=64, drop_path_rate=0.3)
    return _create_spatial_mamba("spatialmamba_s", pretrained, **dict(model_args, **kwargs))


@register_model
def spatialmamba_b(pretrained: bool = False, **kwargs) -> SpatialMamba:
    model_args = dict(depths=(2, 4, 21, 5), dims=96, drop_path_rate=0.5)
    return _create_spatial_mamba("spatialmamba_b", pretrained, **dict(model_args, **kwargs))
