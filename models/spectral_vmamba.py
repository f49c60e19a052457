"""Spectral VMamba: a VMamba whose 8 scan sequences follow Laplacian eigenvectors of a patch kNN graph.

Model card
----------
Paper: *Spectral State Space Model for Rotation-Invariant Visual Representation Learning*, CVPR 2025,
arXiv 2503.06369. Official code: https://github.com/Sahardastani/spectral_vmamba at commit
``389a8be69919579dac8483d630708e25872774ba`` (``classification/models/vmamba.py``: ``VSSM``, ``VSSBlock``,
``SS2D.forward_corev2``; ``classification/models/csms6s.py``: ``CrossScan``, ``CrossMerge``). A fork of
VMamba (MIT licence); the repository itself states no licence.

Variants (``num_classes=1000``, the head of checkpoints from the official ``main.py``; 100-class numbers
in parentheses, the ``config.py`` default the goldens use). Parameters include the whole frozen
torchvision ResNet-18 (11,689,512, of which ``layer4`` and ``fc`` are unused but in the state_dict).
FLOPs: the README counts the rotation front end once; it runs on 4 rotations (8.11 / 10.47 GMACs).

======================  ============  ==========================  ====================  =========================
variant                 depths        params                      README FLOPs          README top-1 (mini-IN)
======================  ============  ==========================  ====================  =========================
spectral_vmamba_t       (2, 2, 5, 2)  217,521,680 (215,677,580)   3.9G                  87.86
spectral_vmamba_s       (2, 2, 15, 2) 365,274,640 (363,430,540)   6.3G                  88.09
spectral_vmamba_b       (2, 2, 15, 2) 365,274,640 (363,430,540)   6.3G                  88.17
======================  ============  ==========================  ====================  =========================

S and B are the same network (their yamls differ only in drop_path_rate 0.6 vs 0.3).

Checkpoints: none released. ``classification/utils/utils.py: save_checkpoint_ema`` writes ``ckpt_best.pth``:
``{"model", "model_ema", "config" (yacs CfgNode), "optimizer", ...}``. They load with
``timm.create_model(name, pretrained=True, pretrained_cfg_overlay=dict(file=path))`` without yacs
installed (``CfgNode`` is unpickled as a plain ``OrderedDict``, see ``freqlens.io.standins``); timm then takes
``model_ema`` when present. ``checkpoint_filter_fn`` also takes the whole checkpoint dict (``weights=``).

Eval preprocessing (``classification/data/build.py``): resize 256 bicubic, center crop 224, ImageNet
mean/std. Input sides must be multiples of 16.

Architecture: RFN front end (ResNet-18 conv1..layer3 on the 4 right-angle rotations of the image, rotated
back, max over rotations; stride 16, 256 channels), 4 stages of VSSBlocks (dims 256..2048, channels-first)
with 1x1-conv + stride-2 subsampling between stages, LayerNorm + average-pool head. In each SS2D the 8
sequences are the tokens in the order of 4 spectral coordinates and the reverses.

Quirks reproduced (each commented where it happens):
- The stage-0 order comes from float32 ``eigh`` of a batch-coupled graph (sigma = mean distance over the
  whole batch); with a repeated or close eigenvalue it depends on LAPACK, thread count and batch mates.
- Per-node sign flip of the eigenvectors (sign of each row's mean), not a per-eigenvector sign fix.
- Later orders are derived with index arithmetic that assumes the previous width is twice the current one:
  at 224 the stage-2 orders are not permutations.
- ResNet BatchNorms follow ``model.train()`` in the official code (frozen weights, batch statistics);
  here they stay in eval mode unless ``rfn_train_bn=True``.

Deviations (documented, none changes eval outputs): the stage orders are passed through the forward
instead of a module-level global; the max-pool indices are recomputed from the grid size instead of being
appended to the features as an extra channel (so ``layers.i.downsample`` outputs 2*dim channels, not
2*dim + 1); the scan-order eigen-solve runs without autograd (its output only feeds integer indices).
Opt-ins: ``scan_order_mode="deterministic"`` (float64 CPU eigen-solve with canonical eigenvectors and
stable tie rules, per-sample sigma), ``sigma_mode="sample"``, ``true_width_orders=True``,
``set_scan_order`` to inject a stage-0 order, ``op.capture_scan = True`` to keep a mixer's scan inputs and
outputs (the official ``__DEBUG__`` capture, for implicit-attention maps; un-permute them with the order).
"""
from __future__ import annotations

import dataclasses
import math
from collections import OrderedDict
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import DropPath, trunc_normal_
from timm.layers import LayerNorm2d as _TimmLayerNorm2d
from timm.models import build_model_with_cfg, clean_state_dict, generate_default_cfgs, register_model
from timm.models._features import feature_take_indices

from freqlens.errors import FreqlensError
from freqlens.io import standins  # noqa: F401  (allowlists yacs CfgNode, the config of official checkpoints)
from freqlens.lens.probes import ProbePoint
from freqlens.ops.selective_scan import selective_scan
from freqlens.scan_order import (
    ORDER_MODES, SIGMA_MODES, OrderMode, SigmaMode, derive_scan_order, merge_positions, scan_order_from_coordinates,
    spectral_order, validate_order,
)

__all__ = ["SpectralVMamba"]

_ROTATIONS = (0, 90, 180, 270)
_RFN_CHANNELS = 256  # ResNet-18 layer3 width; the official code hard-codes it in a view
_RFN_STRIDE = 16


class Linear2d(nn.Linear):
    """A Linear applied as a 1x1 conv to NCHW maps; stores the usual 2-D weight (official ``Linear2d``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight[:, :, None, None], self.bias)

    def _load_from_state_dict(self, state_dict, prefix, *args):
        # official: also accepts conv-shaped (out, in, 1, 1) weights
        key = prefix + "weight"
        if key in state_dict and state_dict[key].dim() == 4:
            state_dict[key] = state_dict[key].view(self.weight.shape)
        super()._load_from_state_dict(state_dict, prefix, *args)


class LayerNorm2d(_TimmLayerNorm2d):
    """Official ``LayerNorm2d``: nn.LayerNorm over the channels of an NCHW map. timm's, with the official
    eps 1e-5 as its default, so the family's norm layers are one class that isinstance and repr name."""

    def __init__(self, num_channels: int, eps: float = 1e-5, affine: bool = True, **kwargs) -> None:
        super().__init__(num_channels, eps=eps, affine=affine, **kwargs)


class Mlp(nn.Module):
    """fc1 -> GELU -> fc2 as 1x1 convs (official ``Mlp`` with ``channels_first=True``)."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = Linear2d(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = Linear2d(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


@dataclasses.dataclass
class _ScanState:
    """The scan orders of one forward pass (replaces the official module-level global ``vec_indices``).

    ``orders[i]`` is the (B, L_i, K) order in force in stage i, set by block 0 of the stage (with its
    ``positions[i]``, each token's step in each sequence, which every block's merge reads); recomputation
    under gradient checkpointing reuses it, so the backward pass sees the same order.
    """

    injected: torch.Tensor | None
    true_width: bool
    orders: dict[int, torch.Tensor] = dataclasses.field(default_factory=dict)
    positions: dict[int, torch.Tensor] = dataclasses.field(default_factory=dict)  # merge_positions(orders[i])
    grids: dict[int, tuple[int, int]] = dataclasses.field(default_factory=dict)
    coords: torch.Tensor | None = None


class SpectralScan(nn.Module):
    """Spectral coordinates of the scan input (official ``CrossScan``); output (B, L, top_k), token order.

    Sequence k visits the tokens by increasing column k. A forward hook here sees the coordinates; a
    pre-hook sees the (B, C, H, W) scan input (what ``freqlens.scan_order.diagnose_scan_order`` uses).
    """

    def __init__(self, top_k: int, knn: int, mode: OrderMode, sigma_mode: SigmaMode):
        super().__init__()
        if mode not in ORDER_MODES:
            raise ValueError(f"scan_order_mode must be one of {ORDER_MODES}, got {mode!r}")
        if sigma_mode not in SIGMA_MODES:
            raise ValueError(f"sigma_mode must be one of {SIGMA_MODES}, got {sigma_mode!r}")
        self.top_k, self.knn, self.mode, self.sigma_mode = top_k, knn, mode, sigma_mode

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        # No autograd: the coordinates only feed integer indices (official: computed with grad, unused).
        with torch.no_grad():
            return spectral_order(u, top_k=self.top_k, knn=self.knn, mode=self.mode, sigma_mode=self.sigma_mode)

    def extra_repr(self) -> str:
        return f"top_k={self.top_k}, knn={self.knn}, mode={self.mode}, sigma_mode={self.sigma_mode}"


class SS2D(nn.Module):
    """The spectral selective-scan mixer (official ``SS2D``, forward type ``v05_noz``, channels-first).

    in_proj -> SiLU -> 8 sequences (4 spectral orders and their reverses) -> selective scan (d_state 1,
    B/C shared per sequence) -> merge back to token order -> out_norm -> out_proj. No depthwise conv, no gate.
    """

    def __init__(self, dim: int, stage_index: int, block_index: int, d_state: int = 1, ssm_ratio: float = 2.0,
                 top_k: int = 4, spectral_scan: SpectralScan | None = None):
        super().__init__()
        d_inner = int(ssm_ratio * dim)
        dt_rank = math.ceil(dim / 16)
        k_group = 2 * top_k
        self.stage_index, self.block_index, self.top_k = stage_index, block_index, top_k
        self.d_state, self.dt_rank = d_state, dt_rank
        # Parameter order = official state_dict order. Init "v0" (official mamba_init):
        bound = d_inner**-0.5  # default nn.Linear(d_inner, R + 2N) init, stacked over the K sequences
        self.x_proj_weight = nn.Parameter(torch.empty(k_group, dt_rank + 2 * d_state, d_inner).uniform_(-bound, bound))
        dt_std = dt_rank**-0.5
        self.dt_projs_weight = nn.Parameter(torch.empty(k_group, d_inner, dt_rank).uniform_(-dt_std, dt_std))
        log_dt = torch.rand(k_group, d_inner) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3)
        dt = torch.exp(log_dt).clamp(min=1e-4)
        self.dt_projs_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))  # inverse softplus
        a = torch.arange(1, d_state + 1, dtype=torch.float32).repeat(k_group * d_inner, 1)
        self.A_logs = nn.Parameter(torch.log(a))
        self.Ds = nn.Parameter(torch.ones(k_group * d_inner))
        self.out_norm = LayerNorm2d(d_inner)
        self.in_proj = Linear2d(dim, d_inner, bias=False)
        self.act = nn.SiLU()
        if spectral_scan is not None:
            self.CrossScan = spectral_scan  # official attribute name (stage 0, block 0 only computes an order)
        self.scan_positions = nn.Identity()  # tap: (B, top_k, H, W) step of each token in each sequence
        self.scan_out = nn.Identity()  # tap: (B, d_inner, H, W) merged scan output before out_norm
        self.out_proj = Linear2d(d_inner, dim, bias=False)
        self.capture_scan = False  # set True to keep the last scan's inputs/outputs in ``scan_data``
        self.scan_data: dict[str, object] | None = None

    def _order(self, u: torch.Tensor, state: _ScanState) -> torch.Tensor:
        b, _, h, w = u.shape
        stage = self.stage_index
        if self.block_index == 0 and stage not in state.orders:
            if stage == 0 and state.injected is not None:
                order = validate_order(state.injected.to(u.device), b, h * w, self.top_k)
            elif stage == 0:
                state.coords = self.CrossScan(u)
                order = scan_order_from_coordinates(state.coords)
            else:
                order = derive_scan_order(state.orders[stage - 1], state.grids[stage - 1], (h, w), state.true_width)
            state.orders[stage], state.grids[stage] = order, (h, w)
            state.positions[stage] = merge_positions(order)  # once per stage, not per block
            self.scan_positions(state.positions[stage].float().reshape(b, self.top_k, h, w))
        return state.orders[stage]

    def forward(self, x: torch.Tensor, state: _ScanState) -> torch.Tensor:
        u = self.act(self.in_proj(x))
        b, d, h, w = u.shape
        length = h * w
        k_group = 2 * self.top_k
        order = self._order(u, state)  # (B, L, top_k)
        # Sequences k < top_k visit the tokens in order[..., k]; sequence k + top_k is the reverse.
        tokens = u.reshape(b, d, length).transpose(1, 2)  # (B, L, D), official layout (channels-last memory)
        seq = torch.gather(tokens[:, None].expand(b, self.top_k, length, d), 2,
                           order.transpose(1, 2)[..., None].expand(b, self.top_k, length, d))
        xs = torch.cat([seq, seq.flip(2)], dim=1).transpose(2, 3).contiguous().view(b, -1, length)  # (B, K*D, L)
        # Official no_einsum path: grouped 1x1 conv1d projections.
        x_dbl = F.conv1d(xs, self.x_proj_weight.view(-1, d, 1), groups=k_group)
        split = [self.dt_rank, self.d_state, self.d_state]
        dts, bs, cs = torch.split(x_dbl.view(b, k_group, -1, length), split, dim=2)
        dt_weight = self.dt_projs_weight.view(k_group * d, -1, 1)
        dts = F.conv1d(dts.contiguous().view(b, -1, length), dt_weight, groups=k_group)
        # The official CUDA kernel (SelectiveScanOflex) computes in float32 and returns float32 whatever the
        # input dtype; the shared op does the same (float64 when the model is float64).
        scan_dtype = torch.float64 if xs.dtype == torch.float64 else torch.float32
        a_mat, d_skip = -torch.exp(self.A_logs.to(scan_dtype)), self.Ds.to(scan_dtype)
        delta_bias = self.dt_projs_bias.reshape(-1).to(scan_dtype)
        bs, cs = bs.contiguous(), cs.contiguous()
        ys = selective_scan(xs, dts, a_mat, bs, cs, d_skip, delta_bias, delta_softplus=True).view(b, k_group, d, length)
        if self.capture_scan:  # official ``__DEBUG__`` / ``__data__``: inputs of the scan, in scan order
            self.scan_data = dict(As=a_mat, Bs=bs, Cs=cs, Ds=d_skip, us=xs, dts=dts, delta_bias=delta_bias, ys=ys,
                                  order=order, H=h, W=w)
        # Official CrossMerge: token t of sequence k reads step argsort(order)[t] (stable here), reversed
        # sequences are flipped back first, and the 4 directions are summed one after another.
        pos = state.positions[self.stage_index][:, :, None, :].expand(b, self.top_k, d, length)
        merged = torch.gather(ys[:, : self.top_k], 3, pos) + torch.gather(ys[:, self.top_k :].flip(-1), 3, pos)
        y = merged[:, 0]
        for k in range(1, self.top_k):
            y = y + merged[:, k]
        y = self.scan_out(y.view(b, d, h, w))
        y = self.out_norm(y.to(self.out_norm.weight.dtype)).to(u.dtype)
        return self.out_proj(y)


class VSSBlock(nn.Module):
    """x + drop_path(SS2D(norm(x))), then x + drop_path(MLP(norm2(x))) (official ``VSSBlock``, pre-norm)."""

    def __init__(self, dim: int, stage_index: int, block_index: int, drop_path: float = 0.0, mlp_ratio: float = 4.0,
                 d_state: int = 1, ssm_ratio: float = 2.0, top_k: int = 4, spectral_scan: SpectralScan | None = None):
        super().__init__()
        self.norm = LayerNorm2d(dim)
        self.op = SS2D(dim, stage_index, block_index, d_state=d_state, ssm_ratio=ssm_ratio, top_k=top_k,
                       spectral_scan=spectral_scan)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = LayerNorm2d(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, state: _ScanState) -> torch.Tensor:
        x = x + self.drop_path(self.op(self.norm(x), state))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class VSSBlocks(nn.Sequential):
    """The blocks of one stage; passes the per-forward scan state and supports gradient checkpointing."""

    grad_checkpointing = False

    def forward(self, x: torch.Tensor, state: _ScanState) -> torch.Tensor:
        for block in self:
            if self.grad_checkpointing and torch.is_grad_enabled():
                x = checkpoint(block, x, state, use_reentrant=False)
            else:
                x = block(x, state)
        return x


def _downsample(dim: int, out_dim: int) -> nn.Sequential:
    """Official ``_make_downsample_v3``: 1x1 conv, stride-2 subsampling (max-pool of kernel 1), LayerNorm2d.

    The official pool also returns its indices and the norm appends index channel 0 to the output; here
    the indices are recomputed from the grid size (``freqlens.scan_order.kept_token_indices``).
    """
    return nn.Sequential(nn.Identity(), nn.Conv2d(dim, out_dim, kernel_size=1), nn.MaxPool2d(kernel_size=1, stride=2),
                         nn.Identity(), LayerNorm2d(out_dim))


def _rotate(x: torch.Tensor, angle: int) -> torch.Tensor:
    """``torchvision.transforms.functional.rotate(x, angle)`` (nearest, same canvas, zero fill).

    For square maps this equals ``torch.rot90`` bit for bit, which is exact and cheaper; non-square maps are
    rotated inside their own canvas (crop + zero fill), as in the official code.
    """
    if x.shape[-1] == x.shape[-2]:
        return torch.rot90(x, k=angle // 90, dims=(-2, -1))
    import torchvision.transforms.functional as TF

    return TF.rotate(x, angle)


class SpectralVMamba(nn.Module):
    """Spectral VMamba (official ``VSSM`` with ``mode="RFN"``, ``forward_type="v05_noz"``, ``norm_layer="ln2d"``).

    Args:
        num_classes: classifier outputs (official checkpoints: 1000; config default 100). 0: no head.
        in_chans: image channels (3 for the ResNet-18 front end of official checkpoints).
        depths: blocks per stage.
        dims: width of stage 0 (doubled per stage) or the 4 widths; stage 0 must be 256 (ResNet layer3).
        d_state: SSM state size (1).
        ssm_ratio: inner width / width of the SS2D branch (2.0).
        mlp_ratio: MLP hidden width / width (4.0).
        drop_rate: dropout before the classifier.
        drop_path_rate: stochastic depth, linear over all blocks.
        top_k: spectral coordinates used (4 -> 8 sequences).
        knn: neighbours per patch in the kNN graph, the patch itself included (5).
        global_pool: ``"avg"`` or ``""`` (no pooling).
        scan_order_mode: ``"official"`` (float32, exact official op sequence) or ``"deterministic"``
            (float64 CPU eigen-solve, canonical eigenvectors, stable ties; per-sample sigma by default).
        sigma_mode: ``"batch"`` (official: kernel width from the whole batch, couples the images) or
            ``"sample"``; None picks ``"batch"`` for the official mode and ``"sample"`` for the deterministic one.
        true_width_orders: derive later-stage orders with the true previous width (fix; default off).
        rfn_train_bn: let ``model.train()`` put the frozen ResNet's BatchNorms in training mode (official
            training behaviour); by default they always use their running statistics.
    """

    def __init__(
        self,
        num_classes: int = 1000,
        in_chans: int = 3,
        depths: Sequence[int] = (2, 2, 5, 2),
        dims: int | Sequence[int] = 256,
        d_state: int = 1,
        ssm_ratio: float = 2.0,
        mlp_ratio: float = 4.0,
        drop_rate: float = 0.0,
        drop_path_rate: float = 0.2,
        top_k: int = 4,
        knn: int = 5,
        global_pool: str = "avg",
        scan_order_mode: OrderMode = "official",
        sigma_mode: SigmaMode | None = None,
        true_width_orders: bool = False,
        rfn_train_bn: bool = False,
    ):
        super().__init__()
        import torchvision

        if global_pool not in ("avg", ""):
            raise ValueError(f"global_pool must be 'avg' or '', got {global_pool!r}")
        dims = [int(dims * 2**i) for i in range(len(depths))] if isinstance(dims, int) else list(dims)
        if len(dims) != len(depths):
            raise ValueError(f"dims {dims} and depths {tuple(depths)} must have the same length")
        if dims[0] != _RFN_CHANNELS:
            raise ValueError(f"dims[0] must be {_RFN_CHANNELS} (the RFN's ResNet-18 layer3 width), got {dims[0]}")
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.drop_rate = drop_rate
        self.global_pool = global_pool
        self.num_features = self.head_hidden_size = dims[-1]
        self.true_width_orders = true_width_orders
        self.rfn_train_bn = rfn_train_bn
        self.last_scan_orders: dict[str, torch.Tensor] = {}
        self.last_spectral_coords: torch.Tensor | None = None
        self._scan_order_override: torch.Tensor | None = None

        # RFN front end: torchvision's ResNet-18 (official: torch.hub IMAGENET1K_V1 weights, frozen). Built
        # here without weights; checkpoints carry them. layer4/avgpool/fc are unused but in the state_dict.
        self.model_patchification = torchvision.models.resnet18(weights=None)
        if in_chans != 3:
            self.model_patchification.conv1 = nn.Conv2d(in_chans, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.model_patchification.requires_grad_(False)
        self.rfn = nn.Identity()  # tap: (B, 256, H/16, W/16) RFN output (max over rotations)

        scan = SpectralScan(top_k, knn, scan_order_mode, _sigma_mode(scan_order_mode, sigma_mode))
        dpr = torch.linspace(0, drop_path_rate, sum(depths), device="cpu").tolist()  # also under a meta-device context
        self.layers = nn.ModuleList()
        self.feature_info = []
        self.probe_points = [
            ProbePoint("model_patchification.layer3", "NCHW", _RFN_STRIDE, kind="rfn_rotations"),
            ProbePoint("rfn", "NCHW", _RFN_STRIDE, kind="stem"),
            ProbePoint("layers.0.blocks.0.op.CrossScan", "NLC", _RFN_STRIDE, kind="scan"),
        ]
        for i, (depth, dim) in enumerate(zip(depths, dims, strict=True)):
            start = sum(depths[:i])
            reduction = _RFN_STRIDE * 2**i
            blocks = VSSBlocks(*[
                VSSBlock(dim, i, d, drop_path=dpr[start + d], mlp_ratio=mlp_ratio, d_state=d_state, ssm_ratio=ssm_ratio,
                         top_k=top_k, spectral_scan=scan if i == d == 0 else None)
                for d in range(depth)
            ])
            downsample = _downsample(dim, dims[i + 1]) if i < len(depths) - 1 else nn.Identity()
            self.layers.append(nn.Sequential(OrderedDict(blocks=blocks, downsample=downsample)))
            self.feature_info.append(dict(num_chs=dim, reduction=reduction, module=f"layers.{i}.blocks"))
            self.probe_points.append(ProbePoint(f"layers.{i}.blocks.0.op.scan_positions", reduction=reduction,
                                                kind="scan"))
            for d in range(depth):
                name = f"layers.{i}.blocks.{d}"
                self.probe_points += [
                    ProbePoint(f"{name}.op.scan_out", "NCHW", reduction, kind="scan_out"),
                    ProbePoint(f"{name}.op", "NCHW", reduction, kind="mixer"),
                    ProbePoint(name, "NCHW", reduction, kind="block"),
                ]
            self.probe_points.append(ProbePoint(f"layers.{i}.blocks", "NCHW", reduction, kind="stage"))
        self.probe_points.append(ProbePoint("classifier.norm", reduction=reduction, kind="pre_pool"))
        self.gradcam_target = ProbePoint(f"layers.{len(depths) - 1}.blocks", reduction=reduction, kind="stage")

        self.classifier = nn.Sequential(OrderedDict(
            norm=LayerNorm2d(self.num_features),
            permute=nn.Identity(),
            avgpool=nn.AdaptiveAvgPool2d(1) if global_pool else nn.Identity(),
            flatten=nn.Flatten(1) if global_pool else nn.Identity(),
            head=nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity(),
        ))
        self.head_drop = nn.Dropout(drop_rate)
        self.apply(_init_weights)
        self.model_patchification.eval()

    @property
    def spectral_scan(self) -> SpectralScan:
        """The module that computes the stage-0 spectral coordinates (``layers.0.blocks.0.op.CrossScan``)."""
        return self.layers[0].blocks[0].op.CrossScan

    @property
    def scan_config(self) -> dict[str, object]:
        """The scan-order settings in force, for recording next to results."""
        return {
            "scan_order_mode": self.spectral_scan.mode, "sigma_mode": self.spectral_scan.sigma_mode,
            "order_arithmetic": "true_width" if self.true_width_orders else "official",
            "injected_stage0_order": self._scan_order_override is not None,
        }

    def configure_scan(self, scan_order_mode: OrderMode, sigma_mode: SigmaMode | None = None,
                       true_width_orders: bool | None = None) -> None:
        """Switch the scan-order settings of an existing model (see the class arguments; None keeps a value)."""
        scan = self.spectral_scan
        self.layers[0].blocks[0].op.CrossScan = SpectralScan(scan.top_k, scan.knn, scan_order_mode,
                                                             _sigma_mode(scan_order_mode, sigma_mode))
        if true_width_orders is not None:
            self.true_width_orders = true_width_orders

    def set_scan_order(self, stage0: torch.Tensor | None) -> None:
        """Use ``stage0`` (B, L, top_k) int64 as the stage-0 order of every following forward (None: compute it).

        Later stages derive their orders from it with the official rules.
        """
        top_k = self.spectral_scan.top_k
        if stage0 is not None:
            if not isinstance(stage0, torch.Tensor) or stage0.dim() != 3:
                got = tuple(stage0.shape) if isinstance(stage0, torch.Tensor) else type(stage0).__name__
                raise ValueError(f"stage0 order must be a (B, L, {top_k}) tensor, got {got}")
            validate_order(stage0, stage0.shape[0], stage0.shape[1], top_k)
        self._scan_order_override = stage0

    def train(self, mode: bool = True) -> "SpectralVMamba":
        super().train(mode)
        if not self.rfn_train_bn:
            self.model_patchification.eval()
        return self

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        # official: A_logs and Ds carry ``_no_weight_decay`` (mamba_init.A_log_init / D_init)
        return {name for name, _ in self.named_parameters() if name.endswith((".A_logs", ".Ds"))}

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict[str, object]:
        return dict(
            stem=r"^model_patchification",
            blocks=r"^layers\.(\d+)" if coarse else [(r"^layers\.(\d+)\.downsample", (0,)),
                                                    (r"^layers\.(\d+)\.blocks\.(\d+)", None),
                                                    (r"^classifier\.norm", (99999,))],
        )

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        for layer in self.layers:
            layer.blocks.grad_checkpointing = enable

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.classifier.head

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        self.num_classes = num_classes
        if global_pool is not None:
            if global_pool not in ("avg", ""):
                raise ValueError(f"global_pool must be 'avg' or '', got {global_pool!r}")
            self.global_pool = global_pool
            self.classifier.avgpool = nn.AdaptiveAvgPool2d(1) if global_pool else nn.Identity()
            self.classifier.flatten = nn.Flatten(1) if global_pool else nn.Identity()
        self.classifier.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def forward_rfn(self, x: torch.Tensor) -> torch.Tensor:
        """Rotational Feature Normalizer (official ``VSSM.forward``, ``mode="RFN"``): (B, 256, H/16, W/16)."""
        b, c, h, w = x.shape
        if h % _RFN_STRIDE or w % _RFN_STRIDE:
            raise FreqlensError(f"Spectral VMamba needs input sides divisible by {_RFN_STRIDE}, got {h}x{w}",
                                hint="resize or crop the images, e.g. to 224x224 or 256x256")
        rotated = torch.cat([_rotate(x, angle) for angle in _ROTATIONS])  # rotation-major (4B, C, H, W)
        net = self.model_patchification
        feats = net.layer3(net.layer2(net.layer1(net.maxpool(net.relu(net.bn1(net.conv1(rotated)))))))
        feats = feats.view(len(_ROTATIONS), b, _RFN_CHANNELS, h // _RFN_STRIDE, w // _RFN_STRIDE)
        back = torch.stack([_rotate(feats[i], -angle) for i, angle in enumerate(_ROTATIONS)])
        return self.rfn(back.max(dim=0).values)

    def _scan_state(self) -> _ScanState:
        return _ScanState(injected=self._scan_order_override, true_width=self.true_width_orders)

    def _record(self, state: _ScanState) -> None:
        self.last_scan_orders = {f"stage{i}": order for i, order in sorted(state.orders.items())}
        self.last_spectral_coords = state.coords

    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: int | list[int] | None = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """Stage features after the blocks, before the downsample (NCHW; 256..2048 channels, stride 16..128)."""
        if output_fmt != "NCHW":
            raise ValueError(f"output_fmt must be 'NCHW', got {output_fmt!r}")
        take_indices, max_index = feature_take_indices(len(self.layers), indices)
        layers = self.layers[: max_index + 1] if stop_early else self.layers
        last = len(self.layers) - 1
        state = self._scan_state()
        intermediates = []
        x = self.forward_rfn(x)
        for i, layer in enumerate(layers):
            x = layer.blocks(x, state)
            if i in take_indices:
                intermediates.append(self.classifier.norm(x) if norm and i == last else x)
            x = layer.downsample(x)
        self._record(state)
        if intermediates_only:
            return intermediates
        return x, intermediates

    def prune_intermediate_layers(self, indices: int | list[int] = 1, prune_norm: bool = False,
                                  prune_head: bool = True) -> list[int]:
        take_indices, max_index = feature_take_indices(len(self.layers), indices)
        self.layers = self.layers[: max_index + 1]
        self.layers[-1].downsample = nn.Identity()
        if prune_norm:
            self.classifier.norm = nn.Identity()
        if prune_head:
            self.reset_classifier(0, "")
        return take_indices

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        state = self._scan_state()
        x = self.forward_rfn(x)
        for layer in self.layers:
            x = layer.downsample(layer.blocks(x, state))
        self._record(state)
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        c = self.classifier
        x = c.flatten(c.avgpool(c.permute(c.norm(x))))
        x = self.head_drop(x)
        return x if pre_logits else c.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _sigma_mode(scan_order_mode: str, sigma_mode: str | None) -> str:
    """The default sigma mode: per sample for the deterministic order, the official batch statistic otherwise."""
    return sigma_mode or ("sample" if scan_order_mode == "deterministic" else "batch")


def _init_weights(module: nn.Module) -> None:
    """Official ``VSSM._init_weights``: every Linear (also Linear2d and the ResNet's fc) and LayerNorm."""
    if isinstance(module, nn.Linear):
        trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.zeros_(module.bias)
        nn.init.ones_(module.weight)


def checkpoint_filter_fn(state_dict: dict, model: SpectralVMamba, weights: str = "model") -> dict[str, torch.Tensor]:
    """Map an official checkpoint (or its ``model`` / ``model_ema`` state_dict) to this model's keys.

    Accepts the whole ``ckpt_best.pth`` dict (takes ``weights`` = ``"model"`` or ``"ema"``) or a bare
    state_dict, strips DDP ``module.``, and keeps a 100- or 1000-way head as it is (a head that does not
    fit the model's ``num_classes`` is left to timm / the loader to drop).
    """
    if weights not in ("model", "ema"):
        raise ValueError(f"weights must be 'model' or 'ema', got {weights!r}")
    if "model" in state_dict or "model_ema" in state_dict:
        key = "model_ema" if weights == "ema" else "model"
        if key not in state_dict:
            raise FreqlensError(f"checkpoint has no {key!r} entry (entries: {sorted(state_dict)})")
        state_dict = state_dict[key]
    own = model.state_dict().keys()
    return {k: v for k, v in clean_state_dict(state_dict).items()
            if not (k.endswith("num_batches_tracked") and k not in own)}


def _create_spectral_vmamba(variant: str, pretrained: bool = False, **kwargs) -> SpectralVMamba:
    return build_model_with_cfg(  # with features_only, timm moves a given out_indices into feature_cfg
        SpectralVMamba, variant, pretrained,
        pretrained_filter_fn=checkpoint_filter_fn,
        feature_cfg=dict(out_indices=(0, 1, 2, 3), feature_cls="getter"),
        **kwargs,
    )


def _cfg(**kwargs) -> dict[str, object]:
    return {
        "num_classes": 1000, "input_size": (3, 224, 224), "pool_size": (2, 2), "crop_pct": 0.875,
        "interpolation": "bicubic", "mean": IMAGENET_DEFAULT_MEAN, "std": IMAGENET_DEFAULT_STD,
        "first_conv": "model_patchification.conv1", "classifier": "classifier.head", "fixed_input_size": False,
        "license": "unknown (VMamba fork, MIT)", "paper_ids": "arXiv:2503.06369",
        "paper_name": "Spectral State Space Model for Rotation-Invariant Visual Representation Learning",
        "origin_url": "https://github.com/Sahardastani/spectral_vmamba", **kwargs,
    }


default_cfgs = generate_default_cfgs({
    "spectral_vmamba_t.untrained": _cfg(),
    "spectral_vmamba_s.untrained": _cfg(),
    "spectral_vmamba_b.untrained": _cfg(),
})


@register_model
def spectral_vmamba_t(pretrained: bool = False, **kwargs) -> SpectralVMamba:
    args = dict(depths=(2, 2, 5, 2), dims=256, drop_path_rate=0.2)
    return _create_spectral_vmamba("spectral_vmamba_t", pretrained, **dict(args, **kwargs))


@register_model
def spectral_vmamba_s(pretrained: bool = False, **kwargs) -> SpectralVMamba:
    args = dict(depths=(2, 2, 15, 2), dims=256, drop_path_rate=0.6)
    return _create_spectral_vmamba("spectral_vmamba_s", pretrained, **dict(args, **kwargs))


@register_model
def spectral_vmamba_b(pretrained: bool = False, **kwargs) -> SpectralVMamba:
    args = dict(depths=(2, 2, 15, 2), dims=256, drop_path_rate=0.3)
    return _create_spectral_vmamba("spectral_vmamba_b", pretrained, **dict(args, **kwargs))
