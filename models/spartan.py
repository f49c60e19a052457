"""SpaRTAN: Spatial Reinforcement Token-based Aggregation Network.

Model card
----------
Paper: *SpaRTAN: Spatial Reinforcement Token-based Aggregation Network for Visual Recognition*,
Q. B. Pay, V. M. Baskaran, J. Y. Loo, K. Wong, S. See, IJCNN 2025, arXiv:2507.10999.
Official code: https://github.com/henry-pay/SpaRTAN at commit 1715a4308cbaac521abafd97c63068158c2716da,
``src/model/spartan.py`` (model), ``src/config/model/spartan.yaml`` (the only model config),
``src/main.py`` (build, checkpoint format), ``src/dataset/imagenet.py`` (eval transform). Licence Apache-2.0.
Re-implemented here from that code; state_dict names, shapes and order are the official ones.

Variants (ImageNet-1k):

=============  ===========================================  ==============  ==============================  ======
name           architecture                                 params (ours)   GFLOPs                          top-1
=============  ===========================================  ==============  ==============================  ======
``spartan_t``  depths (3,3,12,2), dims (32,64,128,256),     3,820,296       paper "~1.0"; fvcore MACs       77.7 %
               expand ratios (4,4,2,2)                      (paper 3.8M)    0.818 @224, 1.069 @256
=============  ===========================================  ==============  ==============================  ======

SpaRTAN-XT and SpaRTAN-S are *not registered*: their depths and widths are in no public material we
could check. The repository ships exactly one model config (the one above, which its README calls
SpaRTAN-T; "to train other SpaRTAN variants, parameters within the config need to be changed"), and
neither the paper's text we could search (arXiv 2507.10999; XT appears only with ~2.2M parameters in a
figure) nor the Hub gave a layer table. Guessing widths would give a model no checkpoint fits, so none is
guessed. SpaRTAN-S has a checkpoint on the Hugging Face Hub (``henry-pay/SpaRTAN-S``, not inspected
here); if that file follows the training-script format below, its architecture is stored inside it
(``config.model.build``, readable with :func:`freqlens.io.standins.to_plain`) and maps onto
:class:`SpaRTAN` as ``depths=layer_depths``, ``dims=(init_dim, *dims)``, ``expand_ratios=expand_ratios``.

Checkpoints: no URLs are wired here (nothing downloads). Official files come from the training script
(``src/main.py: save_checkpoint``): a ``torch.save`` dict ``{epoch, config, model, optim, sched,
scaler}`` where ``model`` is the un-wrapped state_dict (no ``module.`` prefix) and ``config`` is the
run's OmegaConf ``DictConfig``. Load one with
``timm.create_model('spartan_t', pretrained=True, pretrained_cfg_overlay=dict(file=path))``: the
OmegaConf classes are allowlisted for ``torch.load(weights_only=True)`` as inert stand-ins (see
:mod:`freqlens.io.standins`), so such a file loads without executing pickled code. Bare state_dicts
and ``state_dict`` / ``model_ema`` wrappers load too (:func:`checkpoint_filter_fn`).

Evaluation preprocessing (official ``transform(train=False)``): resize the shorter side to 256
(bilinear, antialiased), centre crop 256, ImageNet mean/std; so ``input_size=(3, 256, 256)``,
``crop_pct=1.0``. Training used 256 px crops; the FLOP count printed by ``src/main.py`` uses 224.
The official pipeline resizes tensors (torchvision v2), timm resizes PIL images: both bilinear with
antialiasing, equal up to rounding.

Quirks of the official code reproduced here (trained weights depend on them):

1. The block norms (a class named ``LayerNorm``) are GroupNorm with one group: statistics over
   C x H x W jointly, so every pixel's output depends on the whole map.
2. Every BatchNorm has eps 1e-6; the second stem conv has GELU, the downsamplers SiLU; no norm before
   the head.
3. CMixer: the per-pixel argmax over the C input channels indexes the N = C*r channel outputs of
   ``theta`` / ``proj`` (so only the first C of N channels can be picked), and the product at that
   index is added to every channel; GELU on ``theta`` only.
4. CMixer ``complex`` is a *real* (1, 1, 1, N/2, 2) parameter multiplying adjacent channel pairs
   (2j real, 2j+1 imaginary) as complex numbers, computed in float32 even under autocast.
5. CMixer's 3x3 conv is depthwise (groups N) in the first half of the stages and grouped with C groups
   in the second half, where the SMixer convs turn depthwise; the SMixer's first dilated conv has no
   norm and no activation.
6. Blocks and downsamplers sit in ONE flat ``layers`` Sequential (stage ends of ``spartan_t`` are
   ``layers.2/6/19/22``); drop-path rates are ``rate * k / num_blocks`` for block k (last < rate).

Probe points (``model.probe_points``, all NCHW): the stem (``conv.0``, ``conv.1``, ``conv``); per block
the SMixer branches (``smixer.h_conv`` / ``h_attn`` local, ``smixer.l_conv`` / ``l_attn`` dilated) and
output, the CMixer phase (``cmixer.theta``), amplitude (``cmixer.proj``), wave-modulated tensor
(``cmixer.wave``) and output, and the block output; the downsamplers; stage outputs ``layers.2/6/19/22``
(``kind="stage"``, the ``feature_info`` entries). Grad-CAM target: ``layers.22``.

Deviations: (a) in float64 the complex product runs in float64 (the official code cannot run in
float64 at all: its float32 cast breaks the next conv); its result is cast back to the input dtype,
which under autocast is what the next conv does anyway, and lets a model cast wholly to bf16 run.
(b) inputs too small for the stride-32 body raise a ``ValueError`` naming the smallest size (29 px
for four stages) instead of a conv kernel-size error. (c) A stateless ``cmixer.wave`` module holds the
complex modulation so its output can be probed; it adds no state_dict entry.
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence, Tuple, Type, Union

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import DropPath, GroupNorm1, SelectAdaptivePool2d, trunc_normal_
from timm.models import build_model_with_cfg, checkpoint_seq, generate_default_cfgs, register_model
from timm.models._features import feature_take_indices

from freqlens.io import standins  # noqa: F401  (allowlists the OmegaConf classes of official checkpoints)
from freqlens.lens.probes import ProbePoint
from freqlens.models._checkpoint import unwrap_state_dict

__all__ = ["SpaRTAN"]

_BN_EPS = 1e-6  # official: partial(nn.BatchNorm2d, eps=1e-6) for every BatchNorm
_LN_EPS = 1e-6


class ConvNormAct(nn.Module):
    """Bias-free conv -> BatchNorm (optional) -> activation (optional); official ``ConvNormAct``."""

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        dilation: int = 1,
        groups: int = 1,
        norm: bool = True,
        act_layer: Optional[Type[nn.Module]] = nn.GELU,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_chs, out_chs, kernel_size, stride, padding, dilation, groups, bias=False)
        self.norm = nn.BatchNorm2d(out_chs, eps=_BN_EPS) if norm else nn.Identity()
        self.act = act_layer() if act_layer is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(x)))


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation with biased 1x1 convs, ReLU and sigmoid; official ``SELayer``."""

    def __init__(self, chs: int, squeeze_chs: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.squeeze = nn.Conv2d(chs, squeeze_chs, 1)
        self.expand = nn.Conv2d(squeeze_chs, chs, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = F.relu(self.squeeze(self.pool(x)))
        return x * torch.sigmoid(self.expand(scale))


class SMixer(nn.Module):
    """Spatial mixer: re-weight the non-DC part of each channel, then a local and a dilated branch.

    ``x + gamma * (x - mean(x))`` scales each channel's AC component by ``1 + gamma``; the 3x3 branch
    (``h_conv``) and the two stacked dilation-2 3x3 convs (``l_conv``, receptive field 9) each get an SE
    gate, and ``proj_out`` mixes their concatenation (local first).
    """

    def __init__(self, dim: int, groups: int) -> None:
        super().__init__()
        if dim % 8:
            raise ValueError(f"SMixer width must be a multiple of 8, got {dim}")
        mid = dim // 2
        self.gamma = nn.Parameter(torch.full((1, mid, 1, 1), 1e-5))
        self.proj_in = nn.Conv2d(dim, mid, 1)
        self.h_conv = ConvNormAct(mid, mid, 3, padding=1, groups=groups)
        self.l_conv = nn.Sequential(
            # official: the first dilated conv has neither norm nor activation
            ConvNormAct(mid, mid, 3, padding=2, dilation=2, groups=groups, norm=False, act_layer=None),
            ConvNormAct(mid, mid, 3, padding=2, dilation=2, groups=groups),
        )
        self.h_attn = SqueezeExcite(mid, mid // 4)
        self.l_attn = SqueezeExcite(mid, mid // 4)
        self.proj_out = nn.Conv2d(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj_in(x)
        x = x + self.gamma * (x - x.mean((2, 3), keepdim=True))
        return self.proj_out(torch.cat([self.h_attn(self.h_conv(x)), self.l_attn(self.l_conv(x))], dim=1))


class WaveModulation(nn.Module):
    """Multiply adjacent channel pairs (2j real, 2j+1 imaginary) by one complex number per pair.

    Stateless: the weight is the owning CMixer's real ``complex`` parameter of shape (1, 1, 1, N/2, 2),
    passed in. A module of its own only so that the modulated tensor is a probe point.

    The official ``CMixer.forward`` casts both operands to float32 and multiplies with autocast off;
    here the product is in float32 too (float64 for float64 inputs) and is cast back to the input
    dtype, which is what the next conv does with it under autocast.
    """

    def forward(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        compute_dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
        b, n, h, w = x.shape
        pairs = x.to(compute_dtype).reshape(b, n // 2, 2, h, w)  # [..., 0, :, :] real, [..., 1, :, :] imaginary
        c_re, c_im = weight.to(compute_dtype).reshape(n // 2, 2).unbind(1)
        same = torch.stack((c_re, c_re), 1).reshape(1, n // 2, 2, 1, 1)
        swapped = torch.stack((-c_im, c_im), 1).reshape(1, n // 2, 2, 1, 1)
        # (re, im) * (c_re + i c_im) = (re c_re - im c_im, im c_re + re c_im): three coalesced kernels,
        # no NHWC transposes
        out = torch.addcmul(pairs * same, pairs.flip(2), swapped)
        return out.reshape(b, n, h, w).to(x.dtype)


class CMixer(nn.Module):
    """Wave-based channel mixer: amplitude x phase, plus the max channel's term, complex-modulated."""

    def __init__(self, dim: int, expand_ratio: int, conv_groups: int) -> None:
        super().__init__()
        if expand_ratio < 2:
            raise ValueError(f"CMixer expand ratio must be > 1, got {expand_ratio}")
        neck = dim * expand_ratio
        self.complex = nn.Parameter(torch.randn(1, 1, 1, neck // 2, 2))
        self.theta = nn.Conv2d(dim, neck, 1)
        self.proj = nn.Conv2d(dim, neck, 1)
        self.wave = WaveModulation()
        self.conv = ConvNormAct(neck, neck, 3, padding=1, groups=conv_groups)
        self.attn = SqueezeExcite(neck, dim // 4)
        self.proj_out = nn.Conv2d(neck, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # official quirk: an index over the C input channels picks from the N = C*r channel outputs
        index = x.argmax(dim=1, keepdim=True)
        theta = F.gelu(self.theta(x))
        amplitude = self.proj(x)
        x = amplitude * theta + amplitude.gather(1, index) * theta.gather(1, index)
        x = self.wave(x, self.complex)
        return self.proj_out(self.attn(self.conv(x)))


class Block(nn.Module):
    """Two layer-scaled residual branches (SMixer, CMixer), each after a one-group GroupNorm."""

    def __init__(
        self,
        dim: int,
        expand_ratio: int,
        depthwise: bool,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        self.scale_1 = nn.Parameter(torch.full((1, dim, 1, 1), 1e-5))
        self.scale_2 = nn.Parameter(torch.full((1, dim, 1, 1), 1e-5))
        self.smixer = SMixer(dim, groups=dim // 2 if depthwise else 1)
        # official rule: CMixer's 3x3 conv has C groups where SMixer is depthwise, else N (depthwise)
        self.cmixer = CMixer(dim, expand_ratio, conv_groups=dim if depthwise else dim * expand_ratio)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        # official ``LayerNorm(use_group=True)``: F.group_norm with one group, eps 1e-6
        self.norm_1 = GroupNorm1(dim, eps=_LN_EPS)
        self.norm_2 = GroupNorm1(dim, eps=_LN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.scale_1 * self.smixer(self.norm_1(x)))
        return x + self.drop_path(self.scale_2 * self.cmixer(self.norm_2(x)))


class SpaRTAN(nn.Module):
    """SpaRTAN classifier: conv stem (/4), blocks and 2x2 downsamplers in one flat Sequential, GAP, linear.

    Args:
        depths: blocks per stage (official ``layer_depths``), each >= 1.
        dims: width of each stage (official ``(init_dim, *dims)``), multiples of 8.
        expand_ratios: CMixer expansion per stage (official ``expand_ratios``), each >= 2.
        num_classes: classifier outputs (0: no classifier).
        in_chans: input image channels.
        global_pool: ``'avg'`` (official) or any timm pool type; ``''`` keeps the feature map.
        drop_path_rate: stochastic depth of the last block is ``rate * (n - 1) / n``.
    """

    def __init__(
        self,
        depths: Sequence[int] = (3, 3, 12, 2),
        dims: Sequence[int] = (32, 64, 128, 256),
        expand_ratios: Sequence[int] = (4, 4, 2, 2),
        num_classes: int = 1000,
        in_chans: int = 3,
        global_pool: str = "avg",
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        if not len(depths) == len(dims) == len(expand_ratios):
            raise ValueError(f"depths {depths}, dims {dims} and expand_ratios {expand_ratios} differ in length")
        if min(depths) < 1:
            raise ValueError(f"every stage needs at least one block, got depths {depths}")
        self.num_classes = num_classes
        self.num_features = self.head_hidden_size = dims[-1]
        self.grad_checkpointing = False

        num_blocks = sum(depths)
        first_depthwise = len(depths) // 2  # official ``mid_point``: later stages use depthwise SMixer convs
        layers = []
        block_idx = 0
        self.stage_ends = []  # index in ``layers`` of each stage's last block
        self.feature_info = []
        self.probe_points = [
            ProbePoint("conv.0", reduction=2, kind="stem"),
            ProbePoint("conv.1", reduction=4, kind="stem"),
            ProbePoint("conv", reduction=4, kind="stem"),
        ]
        reduction = 4
        for stage, (depth, dim, ratio) in enumerate(zip(depths, dims, expand_ratios)):
            if stage > 0:
                # official downsampler between stages: 2x2/s2 conv, BN, SiLU
                layers.append(ConvNormAct(dims[stage - 1], dim, 2, stride=2, act_layer=nn.SiLU))
                reduction *= 2
                self.probe_points.append(ProbePoint(f"layers.{len(layers) - 1}", reduction=reduction,
                                                    kind="downsample"))
            for i in range(depth):
                # official: rate * k / num_blocks for block k = 0..n-1 (not a linspace ending at ``rate``)
                drop_path = drop_path_rate * block_idx / num_blocks
                block_idx += 1
                layers.append(Block(dim, ratio, depthwise=stage >= first_depthwise, drop_path=drop_path))
                self.probe_points += _block_probe_points(f"layers.{len(layers) - 1}", reduction, i == depth - 1)
            module = f"layers.{len(layers) - 1}"
            self.stage_ends.append(len(layers) - 1)
            self.feature_info.append(dict(num_chs=dim, reduction=reduction, module=module))
        # Grad-CAM on the last block, as the official visualisation does (``model.layers[-1]``)
        self.gradcam_target = next(p for p in self.probe_points if p.name == self.feature_info[-1]["module"])
        self._min_input_size = 4 * 2 ** (len(depths) - 1) - 3

        # official attribute order: ``conv`` (stem) before ``layers`` although the blocks are built first
        self.conv = nn.Sequential(
            ConvNormAct(in_chans, dims[0] // 2, 3, stride=2, padding=1),
            ConvNormAct(dims[0] // 2, dims[0], 3, stride=2, padding=1),  # official: GELU here too
        )
        self.layers = nn.Sequential(*layers)
        self.global_pool = SelectAdaptivePool2d(pool_type=global_pool, flatten=bool(global_pool))
        self.linear = nn.Linear(dims[-1], num_classes) if num_classes > 0 else nn.Identity()
        self.apply(_init_weights)

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict:
        return dict(stem=r"^conv", blocks=r"^layers\.(\d+)")

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable

    @torch.jit.ignore
    def no_weight_decay(self) -> set:
        # official ``set_weight_decay``: 1-D params and biases (timm skips those itself) and any name
        # containing "norm" or "gamma"; ``scale_*`` and ``complex`` are decayed
        return {"*gamma*", "*norm*"}

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.linear

    def reset_classifier(self, num_classes: int, global_pool: Optional[str] = None) -> None:
        self.num_classes = num_classes
        if global_pool is not None:
            self.global_pool = SelectAdaptivePool2d(pool_type=global_pool, flatten=bool(global_pool))
        self.linear = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: Optional[Union[int, List[int]]] = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
    ) -> Union[List[torch.Tensor], Tuple[torch.Tensor, List[torch.Tensor]]]:
        """Forward features that also returns the output of each requested stage.

        Args:
            x: input images (B, C, H, W).
            indices: last n stages if int, all if None, else the stage indices to take.
            norm: unused (SpaRTAN has no final norm); kept for the timm signature.
            stop_early: stop after the last requested stage.
            output_fmt: only ``'NCHW'``.
            intermediates_only: return only the intermediates.

        Returns:
            The intermediates, or (final features, intermediates).
        """
        if output_fmt != "NCHW":
            raise ValueError(f"output_fmt must be 'NCHW', got {output_fmt!r}")
        take_indices, max_index = feature_take_indices(len(self.stage_ends), indices)
        take_layers = {self.stage_ends[i] for i in take_indices}
        last_layer = self.stage_ends[max_index] if stop_early else len(self.layers) - 1

        intermediates = []
        x = self.conv(self._check_input_size(x))
        for i, layer in enumerate(self.layers):
            if i > last_layer:
                break
            x = checkpoint(layer, x, use_reentrant=False) if self.grad_checkpointing else layer(x)
            if i in take_layers:
                intermediates.append(x)
        if intermediates_only:
            return intermediates
        return x, intermediates

    def prune_intermediate_layers(
        self,
        indices: Union[int, List[int]] = 1,
        prune_norm: bool = False,
        prune_head: bool = True,
    ) -> List[int]:
        """Drop the layers after the last requested stage (and the head); return the kept indices."""
        take_indices, max_index = feature_take_indices(len(self.stage_ends), indices)
        prune_end = max_index < len(self.stage_ends) - 1
        self.layers = self.layers[: self.stage_ends[max_index] + 1]
        self.stage_ends = self.stage_ends[: max_index + 1]
        if prune_end:
            self.num_features = self.head_hidden_size = self.feature_info[max_index]["num_chs"]
        if prune_head or prune_end:
            self.reset_classifier(0, "")
        return take_indices

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(self._check_input_size(x))
        if self.grad_checkpointing and not torch.jit.is_scripting():
            return checkpoint_seq(self.layers, x)
        return self.layers(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.global_pool(x)
        return x if pre_logits else self.linear(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def _check_input_size(self, x: torch.Tensor) -> torch.Tensor:
        """Reject inputs whose last stage would be empty (the official code fails inside a 2x2 conv)."""
        h, w = x.shape[-2:]
        if min(h, w) < self._min_input_size:
            raise ValueError(
                f"SpaRTAN needs inputs of at least {self._min_input_size}x{self._min_input_size} px "
                f"(stride-4 stem, then {len(self.stage_ends) - 1} stride-2 downsamplers); got {h}x{w}"
            )
        return x


def _block_probe_points(block: str, reduction: int, stage_end: bool) -> List[ProbePoint]:
    """The frequency-relevant units of one block, then the block output (a stage output if ``stage_end``)."""
    return [
        ProbePoint(f"{block}.smixer.h_conv", reduction=reduction, kind="freq"),
        ProbePoint(f"{block}.smixer.h_attn", reduction=reduction, kind="freq"),
        ProbePoint(f"{block}.smixer.l_conv", reduction=reduction, kind="freq"),
        ProbePoint(f"{block}.smixer.l_attn", reduction=reduction, kind="freq"),
        ProbePoint(f"{block}.smixer", reduction=reduction, kind="mixer"),
        ProbePoint(f"{block}.cmixer.theta", reduction=reduction, kind="freq"),
        ProbePoint(f"{block}.cmixer.proj", reduction=reduction, kind="freq"),
        ProbePoint(f"{block}.cmixer.wave", reduction=reduction, kind="freq"),
        ProbePoint(f"{block}.cmixer", reduction=reduction, kind="mixer"),
        ProbePoint(block, reduction=reduction, kind="stage" if stage_end else "block"),
    ]


def _init_weights(module: nn.Module) -> None:
    """Official ``SpaRTAN._init_weights`` (gamma / scale_* = 1e-5 and complex ~ N(0, 1) are set at construction)."""
    if isinstance(module, nn.Conv2d):
        fan_out = module.kernel_size[0] * module.kernel_size[1] * module.out_channels // module.groups
        nn.init.normal_(module.weight, 0.0, math.sqrt(2.0 / fan_out))
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.ones_(module.weight)
    elif isinstance(module, nn.Linear):
        trunc_normal_(module.weight, std=0.02)
    if getattr(module, "bias", None) is not None:
        nn.init.zeros_(module.bias)


def checkpoint_filter_fn(state_dict: dict, model: SpaRTAN) -> Dict[str, torch.Tensor]:
    """Official SpaRTAN weights in any known wrapper; the official key names are ours, so nothing is renamed."""
    # ``model`` is what the official ``save_checkpoint`` writes
    return unwrap_state_dict(state_dict, ("model", "state_dict", "model_ema"))


def _create_spartan(variant: str, pretrained: bool = False, **kwargs) -> SpaRTAN:
    return build_model_with_cfg(
        SpaRTAN,
        variant,
        pretrained,
        pretrained_filter_fn=checkpoint_filter_fn,
        feature_cfg=dict(out_indices=(0, 1, 2, 3), feature_cls="getter"),
        **kwargs,
    )


def _cfg(**kwargs) -> dict:
    return {
        "num_classes": 1000,
        "input_size": (3, 256, 256),
        "min_input_size": (3, 29, 29),
        "pool_size": (8, 8),
        "crop_pct": 1.0,
        "crop_mode": "center",
        "interpolation": "bilinear",
        "mean": IMAGENET_DEFAULT_MEAN,
        "std": IMAGENET_DEFAULT_STD,
        "first_conv": "conv.0.conv",
        "classifier": "linear",
        "license": "apache-2.0",
        "paper_ids": "arXiv:2507.10999",
        "paper_name": "SpaRTAN: Spatial Reinforcement Token-based Aggregation Network for Visual Recognition",
        "origin_url": "https://github.com/henry-pay/SpaRTAN",
        **kwargs,
    }


default_cfgs = generate_default_cfgs({
    "spartan_t.in1k": _cfg(),
})


@register_model
def spartan_t(pretrained: bool = False, **kwargs) -> SpaRTAN:
    """SpaRTAN-T, the official repo's only config (``src/config/model/spartan.yaml``), trained with drop path 0.1."""
    model_args = dict(depths=(3, 3, 12, 2), dims=(32, 64, 128, 256), expand_ratios=(4, 4, 2, 2), drop_path_rate=0.1)
    return _create_spartan("spartan_t", pretrained=pretrained, **dict(model_args, **kwargs))
