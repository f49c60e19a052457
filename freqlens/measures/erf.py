"""Effective receptive field (ERF): how much each input pixel moves the centre of a feature map.

Reference: Ding et al., "Scaling Up Your Kernels to 31x31: Revisiting Large Kernel Design in CNNs"
(RepLKNet, CVPR 2022), repo ``DingXiaoH/RepLKNet-pytorch`` (b76808a), ``erf/visualize_erf.py`` and
``erf/analyze_erf.py``. Preset ``replknet2022``:

1. inputs resized to 1024x1024 (the image loader's job: ``settings()["input_size"]``), features taken at
   the last stage's output (before the final norm and head: ``erf/resnet_for_erf.py`` returns layer4);
2. objective ``sum_{b,c} relu(f[b, c, h//2, w//2])``;
3. ``g = relu(d objective / d input)`` summed over batch and input channels, averaged over images
   (images whose map has a NaN are skipped, as ``visualize_erf.py`` does);
4. heat map ``log10(avg + 1) / max``;
5. area ratio at threshold t: the smallest centred square of side 2i+1, i >= 1, whose sum of the heat
   map exceeds t of the total; ratio = side² / (H·W). ``analyze_erf.get_rectangle`` starts at i = 1
   (side 3, never 1) and stops before i = H//2; where no square qualifies the ratio is None.

One backward per batch is exact when no image's output depends on another image of the batch. The
first batch of two or more images checks this on its first two images, shrunk to a 128-pixel short
side where the model takes that (see ``batch_coupled``): the
gradient of (a random projection of) image 0's features must vanish on the other images, must not
change when the other images change, and must equal the gradient of image 0 run alone. A coupled
model (batch statistics in the forward, e.g. Spectral VMamba's scan order) is then measured image by
image (``on_coupling="per_sample"``) or refused (``"error"``).
"""
from __future__ import annotations

import contextlib
import math
from typing import Any, Iterator, Literal, Mapping, Sequence

import torch
from torch import nn

from freqlens.errors import FreqlensError
from freqlens.lens.lens import Lens
from freqlens.lens.probes import ProbePoint, default_probe_points
from freqlens.measures.base import Measure, register_measure

THRESHOLDS: tuple[float, ...] = (0.2, 0.3, 0.5, 0.99)  # analyze_erf.py
OnCoupling = Literal["per_sample", "error"]


def centre_objective(features: torch.Tensor) -> torch.Tensor:
    """``sum_{b,c} relu(f[b, c, h//2, w//2])`` of (B, C, H, W) features (visualize_erf.get_input_grad)."""
    h, w = features.shape[-2:]
    return torch.relu(features[:, :, h // 2, w // 2]).sum()


def contribution_maps(grad: torch.Tensor) -> torch.Tensor:
    """Per-image (B, H, W) contribution scores ``relu(grad)`` summed over input channels, in float64."""
    return torch.relu(grad).sum(dim=1, dtype=torch.float64)


def erf_heatmap(mean_map: torch.Tensor) -> torch.Tensor:
    """``log10(map + 1)`` rescaled to a maximum of 1 (analyze_erf.py); an all-zero map stays zero."""
    data = torch.log10(mean_map.to(torch.float64) + 1)
    top = data.max()
    return data / torch.where(top > 0, top, 1.0)


def area_ratios(heatmap: torch.Tensor, thresholds: Sequence[float]) -> dict[float, tuple[int, float] | None]:
    """``area_ratio`` for several thresholds from one integral image, on the heat map's device."""
    h, w = heatmap.shape
    sides = torch.arange(1, min(h, w) // 2, device=heatmap.device)  # half-sides i; min(h, w) keeps non-square maps in bounds
    if sides.numel() == 0:
        return {t: None for t in thresholds}
    integral = torch.nn.functional.pad(heatmap.to(torch.float64).cumsum(0).cumsum(1), (1, 0, 1, 0))
    top, bottom = h // 2 - sides, h // 2 + 1 + sides
    left, right = w // 2 - sides, w // 2 + 1 + sides
    sums = integral[bottom, right] - integral[top, right] - integral[bottom, left] + integral[top, left]
    total = integral[-1, -1]
    exceeds = sums[None, :] > torch.tensor(thresholds, dtype=torch.float64, device=heatmap.device)[:, None] * total
    exceeds &= total > 0
    first = exceeds.to(torch.int8).argmax(dim=1)  # the first square over the threshold, where any is
    found: dict[float, tuple[int, float] | None] = {}
    for t, hit, i in zip(thresholds, exceeds.any(dim=1).tolist(), first.tolist(), strict=True):
        side = 2 * (i + 1) + 1
        found[t] = (side, side / h * side / w) if hit else None
    return found


def area_ratio(heatmap: torch.Tensor, threshold: float) -> tuple[int, float] | None:
    """(side, side²/(H·W)) of the smallest centred square (side 2i+1, i >= 1) holding > ``threshold``.

    Follows ``analyze_erf.get_rectangle``: i runs over 1 … H//2 - 1 (min(H, W) for non-square maps),
    so the full map never qualifies and a 1-pixel square is never tried; None when no square exceeds
    the threshold.

    >>> area_ratio(torch.ones(8, 8), 0.1)
    (3, 0.140625)
    """
    return area_ratios(heatmap, [threshold])[threshold]


def last_stage_point(points: Sequence[ProbePoint]) -> ProbePoint:
    """The last point of kind ``stage`` (the ERF preset's feature map), else the last point."""
    if not points:
        raise FreqlensError("the model has no probe points", hint="name the modules to probe with --probe PATTERN")
    stages = [p for p in points if p.kind == "stage"]
    return stages[-1] if stages else points[-1]


@register_measure
class EffectiveReceptiveField(Measure):
    """Mean input-gradient map of the centre of each probe point (see the module docstring).

    ``update(model, images)`` takes the model and a normalised (B, 3, H, W) batch (run in eval mode,
    parameters frozen for the duration); ``compute()`` returns per point the mean contribution map,
    the heat map, the area ratios at ``THRESHOLDS`` and the image counts. States per point:
    ``grad_sum`` ((H, W) float64 sum of per-image maps), ``count`` (images used) and ``skipped``
    (images whose map had a NaN).

    Args:
        preset: the protocol this run follows (recorded in the provenance).
        points: probe points whose centres to explain; None: the model's last stage output.
        input_size: side the images must have (1024 in the preset); None accepts any size.
        on_coupling: what to do when the batch-coupling check fails: measure image by image, or raise.
    """

    name = "erf"
    presets = {"replknet2022": {"preset": "replknet2022", "input_size": 1024}}

    def __init__(
        self,
        preset: str = "replknet2022",
        points: Sequence[ProbePoint] | None = None,
        input_size: int | None = 1024,
        on_coupling: OnCoupling = "per_sample",
    ) -> None:
        super().__init__()
        self.check_preset(preset)
        if input_size is not None and input_size < 1:
            raise ValueError(f"erf: input_size must be >= 1 or None, got {input_size}")
        if on_coupling not in ("per_sample", "error"):
            raise ValueError(f"erf: on_coupling must be 'per_sample' or 'error', got {on_coupling!r}")
        if points is not None and not points:
            raise ValueError("erf: points must be None (last stage) or a non-empty sequence")
        self.preset = preset
        self.points = list(points) if points is not None else None
        self.input_size = input_size
        self.on_coupling = on_coupling
        self.coupled: bool | None = None  # None until a batch of >= 2 images has been checked
        self.add_state("grad_sum", {}, "sum")
        self.add_state("count", {}, "sum")
        self.add_state("skipped", {}, "sum")

    def settings(self) -> dict[str, Any]:
        return {
            "preset": self.preset,
            "points": [p.name for p in self.points] if self.points is not None else "last stage",
            "input_size": self.input_size,
            "objective": "relu(f[:, :, h//2, w//2]).sum()",
            "thresholds": list(THRESHOLDS),
        }

    def update(self, model: nn.Module, images: torch.Tensor) -> None:
        if images.dim() != 4:
            raise ValueError(f"erf: expected (B, C, H, W) images, got shape {tuple(images.shape)}")
        if self.input_size is not None and tuple(images.shape[-2:]) != (self.input_size, self.input_size):
            raise FreqlensError(
                f"erf: images are {images.shape[-2]}x{images.shape[-1]} but this run needs "
                f"{self.input_size}x{self.input_size}",
                hint="resize the images (the replknet2022 preset uses 1024x1024) or set input_size=None",
            )
        points = self.points or [last_stage_point(default_probe_points(model, tuple(images.shape[1:])))]
        if self.points is None:
            self.points = points
        # the batched pass is queued first: the check's host-bound small passes then run while the GPU
        # works on it, and its maps are used only once the check has cleared the model (a model that
        # couples its images pays for this one discarded pass)
        batched = input_gradient_maps(model, images, points) if not self.coupled else None
        if self.coupled is None and images.shape[0] > 1:
            self.coupled = _coupled(model, images, points)
            if self.coupled and self.on_coupling == "error":
                raise FreqlensError(
                    f"erf: {type(model).__name__} couples the images of a batch (an image's gradient "
                    "depends on the other images), so a batched ERF would be wrong",
                    hint="use on_coupling='per_sample' (one image per backward)",
                )
        if self.coupled:
            batched = None  # wrong for this model: measure image by image instead
            for one in images.split(1):
                for name, maps in input_gradient_maps(model, one, points).items():
                    self._accumulate(name, maps)
        for name, maps in (batched or {}).items():
            self._accumulate(name, maps)

    def _accumulate(self, name: str, maps: torch.Tensor) -> None:
        # masks, not boolean indexing: nothing here waits for the GPU, so the next batch queues behind this one
        finite = ~torch.isnan(maps).flatten(1).any(dim=1)
        total = torch.where(finite[:, None, None], maps, 0.0).sum(0)
        used = finite.sum(dtype=torch.float64)
        skipped = (~finite).sum(dtype=torch.float64)
        if name not in self.grad_sum:
            self.grad_sum[name], self.count[name], self.skipped[name] = total, used, skipped
            return
        if self.grad_sum[name].shape != total.shape:
            raise ValueError(
                f"erf: {name}: input size changed from {tuple(self.grad_sum[name].shape)} to {tuple(total.shape)}"
            )
        self.grad_sum[name] += total
        self.count[name] += used
        self.skipped[name] += skipped

    def merge(self, other: Measure) -> Measure:
        super().merge(other)
        flags = [f for f in (self.coupled, getattr(other, "coupled", None)) if f is not None]
        self.coupled = any(flags) if flags else None
        return self

    def compute(self) -> dict[str, Any]:
        """Per point: ``mean_map`` (H, W), ``heatmap`` (H, W), ``area_ratios`` {t: ratio or None},
        ``sides`` {t: side or None}, ``images`` and ``skipped``; plus ``batch_coupled``."""
        if not self.grad_sum:
            raise ValueError("erf: no images seen yet; call update() first")
        names = [p.name for p in self.points or []] or list(self.grad_sum)
        points = []
        for name in names:
            count = float(self.count[name])
            # heat map and area ratios where the sums are (a 1024² map is cheap there), then to the CPU
            mean_map = self.grad_sum[name] / count if count > 0 else torch.full_like(self.grad_sum[name], math.nan)
            heat = erf_heatmap(mean_map)
            found = area_ratios(heat, THRESHOLDS) if count > 0 else {t: None for t in THRESHOLDS}
            mean_map, heat = mean_map.cpu(), heat.cpu()
            points.append(
                {
                    "name": name,
                    "mean_map": mean_map,
                    "heatmap": heat,
                    "area_ratios": {t: (r[1] if r else None) for t, r in found.items()},
                    "sides": {t: (r[0] if r else None) for t, r in found.items()},
                    "images": int(count),
                    "skipped": int(self.skipped[name]),
                }
            )
        return {"points": points, "batch_coupled": self.coupled, "settings": self.settings()}


def input_gradient_maps(model: nn.Module, images: torch.Tensor, points: Sequence[ProbePoint]) -> dict[str, torch.Tensor]:
    """Per point, the per-image contribution maps (B, H, W) of one batched backward per point.

    The model runs in eval mode with its parameters frozen (both restored on exit); ``images`` is
    neither modified nor left with a gradient.
    """
    x, captured = _forward_capture(model, images, points)
    maps = {}
    for i, point in enumerate(points):
        (grad,) = torch.autograd.grad(centre_objective(captured[point.name]), x, retain_graph=i < len(points) - 1)
        maps[point.name] = contribution_maps(grad)
    return maps


def batch_coupled(model: nn.Module, images: torch.Tensor, points: Sequence[ProbePoint]) -> bool:
    """True when image 0's features depend on the rest of the batch (module docstring).

    Every check differentiates a fixed random projection of image 0's whole feature map at the first
    point (the ERF objective itself can be flat, e.g. where relu kills the centre), on the first two
    images. Strict checks, at the same batch shape (so the same kernels run): its gradient on images 1…
    must vanish, and its gradient on image 0 must not change when images 1… are replaced by others
    (deterministic cuDNN algorithms, so two passes of one shape agree to rounding). Loose check: that
    gradient must match the one of image 0 run alone (a batch of one may pick other kernels, and TF32
    or reduced precision differ by more than rounding). Tolerances are relative to the largest value.
    """
    images = images[:2]  # two images decide it; a full batch would cost the run two extra batch passes
    reduced = torch.is_autocast_enabled(images.device.type)
    strict, loose = (1e-2, 3e-2) if reduced else (1e-10, 1e-8) if images.dtype == torch.float64 else (1e-5, 1e-3)
    others = torch.randn(images[1:].shape, generator=_generator(images.device), device=images.device, dtype=images.dtype)
    with _exact_convolutions():
        batched = _projection_gradient(model, images, points[0])
        swapped = _projection_gradient(model, torch.cat([images[:1], others]), points[0])
        alone = _projection_gradient(model, images[:1], points[0])
    scale = alone.abs().max().clamp_min(torch.finfo(alone.dtype).tiny)
    leak = batched[1:].abs().max() / scale
    swap = (batched[:1] - swapped[:1]).abs().max() / scale
    mismatch = (batched[:1] - alone).abs().max() / scale
    checks = torch.stack([leak / strict, swap / strict, mismatch / loose])
    return bool((checks > 1).any() or torch.isnan(checks).any())


CHECK_SIDE = 128


def _coupled(model: nn.Module, images: torch.Tensor, points: Sequence[ProbePoint]) -> bool:
    """``batch_coupled`` on the first two images, shrunk to a CHECK_SIDE short side when the model takes that.

    Coupling is a property of the model's batch-wise operations, not of the resolution, and at 1024² the
    check's three extra passes (TF32 off) would cost as much as a third of a 50-image run. A model that
    refuses the small size (fixed position embeddings, masks) is checked at full size.
    """
    images = images[:2]
    h, w = images.shape[-2:]
    if min(h, w) > CHECK_SIDE:
        scale = CHECK_SIDE / min(h, w)
        small = torch.nn.functional.interpolate(images, size=(round(h * scale), round(w * scale)), mode="area")
        try:
            return batch_coupled(model, small, points)
        except (torch.OutOfMemoryError, torch.AcceleratorError):
            raise  # the device failed, not the size: a full-size retry would only hide this error
        except (RuntimeError, ValueError, AssertionError, FreqlensError):
            pass  # the model takes only its own size
    return batch_coupled(model, images, points)


def _projection_gradient(model: nn.Module, images: torch.Tensor, point: ProbePoint) -> torch.Tensor:
    """Gradient on ``images`` of a fixed random projection of image 0's features at ``point``."""
    x, captured = _forward_capture(model, images, [point])
    feats = captured[point.name][:1]
    weights = torch.randn(feats.shape, generator=_generator(feats.device), device=feats.device, dtype=feats.dtype)
    (grad,) = torch.autograd.grad((feats * weights).sum(), x)
    return grad


@contextlib.contextmanager
def _exact_convolutions() -> Iterator[None]:
    """Full float32 matmuls and convolutions (TF32 differs between batch shapes far beyond 1e-3) and
    deterministic cuDNN algorithms (two passes of one batch shape agree to rounding, so the swap check
    needs no noise floor); the caller's flags come back after."""
    flags = (torch.backends.cuda.matmul, "allow_tf32"), (torch.backends.cudnn, "allow_tf32"), (torch.backends.cudnn, "deterministic")
    saved = [getattr(owner, attr) for owner, attr in flags]
    for (owner, attr), value in zip(flags, (False, False, True)):
        setattr(owner, attr, value)
    try:
        yield
    finally:
        for (owner, attr), value in zip(flags, saved):
            setattr(owner, attr, value)


def _generator(device: torch.device) -> torch.Generator:
    """A seeded generator on ``device``: the check's random tensors are made where they are used."""
    return torch.Generator(device=device).manual_seed(0)


def _forward_capture(
    model: nn.Module, images: torch.Tensor, points: Sequence[ProbePoint]
) -> tuple[torch.Tensor, Mapping[str, torch.Tensor]]:
    """Run the model on a grad-requiring copy of ``images``; return it and each point's (B, C, H, W) output."""
    captured: dict[str, torch.Tensor] = {}

    def keep(point: ProbePoint, features: torch.Tensor) -> None:
        captured[point.name] = features

    x = images.detach().clone().requires_grad_(True)
    with torch.enable_grad(), Lens(model, points, keep) as lens:
        for p in model.parameters():
            p.requires_grad_(False)
        lens.model(x)
    missing = [p.name for p in points if p.name not in captured]
    if missing:
        raise FreqlensError(f"erf: probe points {missing} produced no output", hint="check the probe point names")
    return x, captured
