"""Rotation consistency: does a model's prediction, and each probe point's features, follow a rotation?

Spectral VMamba claims robustness to rotation; SpaRTAN and SPANetV2 do not (measures.md §5). By
default only exact rotations are used: ``torch.rot90`` by k·90° for k = 1, 2, 3 (counter-clockwise,
from the H axis towards the W axis), no interpolation. For each angle:

- output: top-1 agreement with the unrotated prediction, top-1 accuracy when labels are given (also of
  the unrotated images, angle 0), cosine similarity of the logits and ``KL(p(x) || p(rot x))`` of the
  softmax outputs;
- per probe point: invariance, the cosine between the globally pooled features of x and of rot x, and
  equivariance, the cosine between ``f(rot x)`` and ``rot(f(x))`` over the whole (C, H, W) grid (token
  grids included; rot90 of a non-square grid swaps H and W, as it does for the input).

Option ``interpolation="bilinear"`` allows any angle: the image is rotated about its centre by
bilinear resampling, and a circular mask (the inscribed disc) is applied to the input of both the
original and the rotated pass, so that the corners, which a rotation moves out of view, never count.
Equivariance then compares the two feature maps inside the disc at feature resolution, after rotating
``f(x)`` the same way. Bilinear results include interpolation error and are labelled as such.
"""
from __future__ import annotations

import math
from typing import Any, Literal, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from freqlens.lens.lens import Lens
from freqlens.lens.probes import ProbePoint
from freqlens.measures.base import Measure, register_measure

Interpolation = Literal["exact", "bilinear"]
OUTPUT_QUANTITIES: tuple[str, ...] = ("agreement", "correct", "logit_cosine", "kl")


def rotate(x: torch.Tensor, angle: float, interpolation: Interpolation = "exact") -> torch.Tensor:
    """Rotate (B, C, H, W) maps counter-clockwise by ``angle`` degrees (the sense of ``torch.rot90``).

    ``exact`` needs a multiple of 90 and uses ``torch.rot90``; ``bilinear`` resamples about the centre
    with zeros outside (for a square map and a multiple of 90 it equals ``rot90``).

    >>> x = torch.arange(4.0).view(1, 1, 2, 2)
    >>> bool(torch.equal(rotate(x, 90, "bilinear"), torch.rot90(x, 1, (-2, -1))))
    True
    """
    if interpolation == "exact":
        k, rest = divmod(angle, 90)
        if rest != 0:
            raise ValueError(f"exact rotations need a multiple of 90 degrees, got {angle}; use interpolation='bilinear'")
        return torch.rot90(x, int(k) % 4, dims=(-2, -1))
    if interpolation != "bilinear":
        raise ValueError(f"interpolation must be 'exact' or 'bilinear', got {interpolation!r}")
    b, _, h, w = x.shape
    theta = math.radians(angle)
    cos, sin = round(math.cos(theta), 12), round(math.sin(theta), 12)
    # grid_sample's sampling map in pixel units (x right, y down), rescaled to normalised coordinates;
    # the sign makes angle=90 equal rot90(k=1) (checked in the doctest and tests)
    matrix = torch.tensor([[cos, -sin * h / w, 0.0], [sin * w / h, cos, 0.0]], dtype=x.dtype, device=x.device)
    grid = F.affine_grid(matrix.expand(b, 2, 3), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def disc_mask(h: int, w: int, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(H, W) mask of the pixels whose centres lie in the disc inscribed in the map."""
    ys = (torch.arange(h, device=device, dtype=torch.float64) + 0.5 - h / 2) / (min(h, w) / 2)
    xs = (torch.arange(w, device=device, dtype=torch.float64) + 0.5 - w / 2) / (min(h, w) / 2)
    return ((ys[:, None] ** 2 + xs[None, :] ** 2) <= 1.0).to(dtype)


def flat_cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-sample cosine similarity of two (B, …) tensors flattened, in float64 (1 when both are zero)."""
    a, b = a.flatten(1).double(), b.flatten(1).double()
    num = (a * b).sum(1)
    den = a.norm(dim=1) * b.norm(dim=1)
    both_zero = (a.norm(dim=1) == 0) & (b.norm(dim=1) == 0)
    return torch.where(both_zero, torch.ones_like(num), num / den.clamp_min(torch.finfo(torch.float64).tiny))


def output_statistics(reference: torch.Tensor, rotated: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    """Per-image (B, 4) float64 ``OUTPUT_QUANTITIES`` of rotated vs reference logits (NaN: no labels).

    >>> z = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    >>> output_statistics(z, z, torch.tensor([0, 0]))[:, :2].tolist()
    [[1.0, 1.0], [1.0, 0.0]]
    """
    ref, rot = reference.double(), rotated.double()
    agreement = (rot.argmax(1) == ref.argmax(1)).double()
    correct = (rot.argmax(1) == labels).double() if labels is not None else torch.full_like(agreement, math.nan)
    kl = F.kl_div(F.log_softmax(rot, 1), F.log_softmax(ref, 1), log_target=True, reduction="none").sum(1)
    return torch.stack([agreement, correct, flat_cosine(ref, rot), kl], dim=1)


@register_measure
class RotationConsistency(Measure):
    """Agreement of predictions and features under rotation (see the module docstring).

    ``update(model, images, labels=None)`` takes the model, a normalised (B, 3, H, W) batch and
    optional (B,) class labels; the model runs in eval mode, without gradients. ``compute()`` returns
    per angle the mean over images of ``OUTPUT_QUANTITIES`` (``correct`` also for angle 0, NaN without
    labels) and per probe point the mean invariance and equivariance per angle. States: ``output_sum``
    ((A+1, 4) float64 sums; row 0 is the unrotated pass), ``count`` (images), ``labelled`` (images
    with labels), and per point ``invariance_sum`` / ``equivariance_sum`` ((A,) float64).

    Args:
        preset: the protocol this run follows (recorded in the provenance).
        angles: rotation angles in degrees, counter-clockwise.
        interpolation: ``exact`` (rot90, multiples of 90 only) or ``bilinear`` (any angle, disc mask).
        points: probe points for invariance / equivariance; empty for outputs only.
    """

    name = "rotation"
    presets = {"rot90": {"preset": "rot90", "angles": (90.0, 180.0, 270.0), "interpolation": "exact"}}

    def __init__(
        self,
        preset: str = "rot90",
        angles: Sequence[float] = (90.0, 180.0, 270.0),
        interpolation: Interpolation = "exact",
        points: Sequence[ProbePoint] = (),
    ) -> None:
        super().__init__()
        self.check_preset(preset)
        if interpolation not in ("exact", "bilinear"):
            raise ValueError(f"rotation: interpolation must be 'exact' or 'bilinear', got {interpolation!r}")
        if not angles or not all(math.isfinite(a) for a in angles):
            raise ValueError(f"rotation: angles must be a non-empty list of finite degrees, got {list(angles)}")
        if interpolation == "exact" and any(a % 90 for a in angles):
            raise ValueError(f"rotation: exact rotations need multiples of 90 degrees, got {list(angles)}")
        self.preset = preset
        self.angles = tuple(float(a) for a in angles)
        self.interpolation: Interpolation = interpolation
        self.points = list(points)
        self.add_state("output_sum", torch.zeros(len(self.angles) + 1, len(OUTPUT_QUANTITIES), dtype=torch.float64))
        self.add_state("count", torch.zeros((), dtype=torch.float64))
        self.add_state("labelled", torch.zeros((), dtype=torch.float64))
        self.add_state("invariance_sum", {}, "sum")
        self.add_state("equivariance_sum", {}, "sum")

    def settings(self) -> dict[str, Any]:
        return {
            "preset": self.preset,
            "angles": list(self.angles),
            "interpolation": self.interpolation,
            "mask": "inscribed disc on both inputs" if self.interpolation == "bilinear" else None,
            "points": [p.name for p in self.points],
            "kl": "KL(p(x) || p(rot x))",
        }

    @torch.no_grad()
    def update(self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor | None = None) -> None:
        if images.dim() != 4:
            raise ValueError(f"rotation: expected (B, C, H, W) images, got shape {tuple(images.shape)}")
        if labels is not None and labels.shape != images.shape[:1]:
            raise ValueError(f"rotation: labels {tuple(labels.shape)} do not match {images.shape[0]} images")
        masked = self.interpolation == "bilinear"
        x = images * disc_mask(*images.shape[-2:], images.device, images.dtype) if masked else images
        logits, feats = _run(model, x, self.points)
        rows = [output_statistics(logits, logits, labels)]
        for slot, angle in enumerate(self.angles):
            x_rot = rotate(x, angle, self.interpolation)
            if masked:  # resampling blurs the disc's rim; mask again so both passes see the same support
                x_rot = x_rot * disc_mask(*x_rot.shape[-2:], x_rot.device, x_rot.dtype)
            logits_rot, feats_rot = _run(model, x_rot, self.points)
            rows.append(output_statistics(logits, logits_rot, labels))
            for point in self.points:
                inv, equi = _feature_consistency(feats[point.name], feats_rot[point.name], angle, self.interpolation)
                self._add_point(point.name, slot, inv, equi)
        stats = torch.stack(rows)  # (A+1, B, 4)
        if labels is None:
            stats[:, :, 1] = 0.0
        self.output_sum = self.output_sum.to(stats.device) + stats.sum(1)
        self.count = self.count.to(stats.device) + images.shape[0]
        self.labelled = self.labelled.to(stats.device) + (images.shape[0] if labels is not None else 0)

    def _add_point(self, name: str, slot: int, inv: torch.Tensor, equi: torch.Tensor) -> None:
        if name not in self.invariance_sum:
            zeros = torch.zeros(len(self.angles), dtype=torch.float64, device=inv.device)
            self.invariance_sum[name], self.equivariance_sum[name] = zeros, zeros.clone()
        self.invariance_sum[name][slot] += inv.sum()
        self.equivariance_sum[name][slot] += equi.sum()

    def compute(self) -> dict[str, Any]:
        """``angles`` (with 0 first), ``outputs`` {quantity: list per angle}, ``points`` per point
        {name, invariance, equivariance} per rotated angle, ``images`` and ``labelled``."""
        count = float(self.count)
        if count == 0:
            raise ValueError("rotation: no images seen yet; call update() first")
        means = (self.output_sum.cpu() / count).clone()
        labelled = float(self.labelled)
        means[:, 1] = self.output_sum[:, 1].cpu() / labelled if labelled > 0 else math.nan
        outputs = {q: [float(v) for v in means[:, i]] for i, q in enumerate(OUTPUT_QUANTITIES)}
        points = [
            {
                "name": p.name,
                "invariance": [float(v) / count for v in self.invariance_sum[p.name].cpu()],
                "equivariance": [float(v) / count for v in self.equivariance_sum[p.name].cpu()],
            }
            for p in self.points
            if p.name in self.invariance_sum
        ]
        return {
            "angles": [0.0, *self.angles],
            "outputs": outputs,
            "points": points,
            "images": int(count),
            "labelled": int(labelled),
            "settings": self.settings(),
        }


def _run(model: nn.Module, x: torch.Tensor, points: Sequence[ProbePoint]) -> tuple[torch.Tensor, Mapping[str, torch.Tensor]]:
    """Logits of ``x`` and each point's (B, C, H, W) features, detached."""
    feats: dict[str, torch.Tensor] = {}

    def keep(point: ProbePoint, features: torch.Tensor) -> None:
        feats[point.name] = features.detach()

    with Lens(model, points, keep) as lens:
        logits = lens.model(x)
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2:
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(f"rotation: the model must return (B, classes) logits, got {shape}")
    return logits, feats


def _feature_consistency(
    ref: torch.Tensor, rot: torch.Tensor, angle: float, interpolation: Interpolation
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image invariance (cosine of pooled features) and equivariance (cosine of f(rot x), rot f(x))."""
    if interpolation == "bilinear":
        mask = disc_mask(*ref.shape[-2:], ref.device, ref.dtype)
        ref_rot = rotate(ref * mask, angle, "bilinear") * mask
        rot = rot * mask
        pooled_ref, pooled_rot = (ref * mask).mean((-2, -1)), rot.mean((-2, -1))
    else:
        ref_rot = rotate(ref, angle, "exact")
        pooled_ref, pooled_rot = ref.mean((-2, -1)), rot.mean((-2, -1))
    if ref_rot.shape != rot.shape:
        raise ValueError(
            f"rotation: the rotated input's features are {tuple(rot.shape[1:])} but the rotated features "
            f"are {tuple(ref_rot.shape[1:])}; equivariance needs grids that rotate with the input"
        )
    return flat_cosine(pooled_ref, pooled_rot), flat_cosine(rot, ref_rot)
