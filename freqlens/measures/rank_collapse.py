"""Rank collapse: how close each probe point's token matrix is to rank one, image by image.

Reference: Dong, Cordonnier & Loukas, "Attention is Not All You Need: Pure Attention Loses Rank Doubly
Exponentially with Depth" (ICML 2021); effective rank: Roy & Vetterli, "The effective rank: a measure of
effective dimensionality" (EUSIPCO 2007).

A feature map (C, H, W) is the token matrix X of n = H·W tokens by d = C channels. Per image:

- residual ``res(X) = X - 1 xᵀ`` with x the token mean, and the relative residual ``‖res(X)‖ / ‖X‖`` in
  the composite norm ``‖X‖_{1,∞} = sqrt(‖X‖₁ ‖X‖_∞)`` (max column / max row absolute sum) and in the
  Frobenius norm. The paper defines x as the minimiser of ``‖X - 1xᵀ‖``; the token mean is that minimiser
  for the Frobenius norm and is what this measure uses for both norms (measures.md §4).
- effective rank ``exp(H(σ / Σσ))`` of the singular values σ of X and of the centred X (= res(X)).
  Effective rank ignores scale: once the relative residual is at rounding level (a collapsed map), the
  centred effective rank describes rounding noise and should be read together with the residual.

The state per probe point is the sum over images of each per-image value and of its square, and the
image count, so the mean and spread over images merge exactly.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

import torch

from freqlens.measures.base import Measure, register_measure

QUANTITIES: tuple[str, ...] = ("residual_l1inf", "residual_fro", "effective_rank", "effective_rank_centred")
"""The per-image values, in the order of the last axis of the state."""


def token_matrix(features: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) feature maps as (B, n = H·W, d = C) token matrices."""
    if features.dim() != 4:
        raise ValueError(f"expected (B, C, H, W) features, got shape {tuple(features.shape)}")
    return features.flatten(2).transpose(1, 2)


def residual(x: torch.Tensor) -> torch.Tensor:
    """``X - 1 xᵀ`` with x the mean token: the part of (…, n, d) token matrices that is not rank one."""
    return x - x.mean(dim=-2, keepdim=True)


def composite_norm(x: torch.Tensor) -> torch.Tensor:
    """``sqrt(‖X‖₁ ‖X‖_∞)`` of (…, n, d) matrices: max absolute column sum times max absolute row sum.

    >>> composite_norm(torch.tensor([[1.0, -2.0], [0.0, 2.0]]))  # columns 1, 4; rows 3, 2
    tensor(3.4641)
    """
    a = x.abs()
    return torch.sqrt(a.sum(dim=-2).amax(dim=-1) * a.sum(dim=-1).amax(dim=-1))


def effective_rank(x: torch.Tensor) -> torch.Tensor:
    """``exp(entropy(σ / Σσ))`` of the singular values of (…, n, d) matrices (0 for a zero matrix).

    >>> round(float(effective_rank(torch.eye(3))), 6)
    3.0
    """
    s = torch.linalg.svdvals(x)
    total = s.sum(dim=-1, keepdim=True)
    p = s / total.clamp_min(torch.finfo(s.dtype).tiny)
    entropy = torch.special.entr(p).sum(dim=-1)  # -p·log p, 0 at p = 0
    return torch.where(total.squeeze(-1) > 0, torch.exp(entropy), torch.zeros_like(entropy))


def rank_statistics(features: torch.Tensor) -> torch.Tensor:
    """Per-image ``QUANTITIES`` of (B, C, H, W) features as a (B, 4) float64 tensor.

    Computed in float64 for float64 input and in float32 otherwise (bf16/half features are upcast).
    A zero token matrix has relative residual 0 (nothing to collapse) and effective rank 0.
    """
    dtype = torch.float64 if features.dtype == torch.float64 else torch.float32
    x = token_matrix(features.detach()).to(dtype)
    res = residual(x)

    def ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
        return torch.where(den > 0, num / den.clamp_min(torch.finfo(dtype).tiny), torch.zeros_like(num))

    stats = torch.stack(
        [
            ratio(composite_norm(res), composite_norm(x)),
            ratio(torch.linalg.matrix_norm(res), torch.linalg.matrix_norm(x)),
            effective_rank(x),
            effective_rank(res),
        ],
        dim=-1,
    )
    return stats.to(torch.float64)


@register_measure
class RankCollapse(Measure):
    """Relative residual and effective rank of each probe point's token matrices (module docstring).

    ``update(features)`` takes ``{probe name: (B, C, H, W) tensor}`` (what the lens hands over; token
    grids arrive as (B, C, H, W) with prefix tokens dropped); ``compute()`` returns, per probe point in
    forward order, the mean and standard deviation over images of each of ``QUANTITIES``, plus the
    token count n, the width d and the image count. States per point: ``stat_sum`` and ``stat_sq_sum``
    ((4,) float64 sums of the per-image values and their squares), ``count`` (images) and ``shape``
    ((n, d), merged by max and checked on update).

    Args:
        preset: the protocol this run follows (recorded in the provenance).
    """

    name = "rank"
    presets = {"dong2021": {"preset": "dong2021"}}

    def __init__(self, preset: str = "dong2021") -> None:
        super().__init__()
        self.check_preset(preset)
        self.preset = preset
        self.add_state("stat_sum", {}, "sum")
        self.add_state("stat_sq_sum", {}, "sum")
        self.add_state("count", {}, "sum")
        self.add_state("shape", {}, "max")  # dicts keep first-seen order: the forward order, i.e. depth

    def settings(self) -> dict[str, Any]:
        return {"preset": self.preset, "quantities": list(QUANTITIES), "residual_centre": "token mean"}

    @torch.no_grad()
    def update(self, features: Mapping[str, torch.Tensor]) -> None:
        for name, x in features.items():
            stats = rank_statistics(x)
            shape = torch.tensor([x.shape[2] * x.shape[3], x.shape[1]], dtype=torch.float64, device=x.device)
            if name not in self.count:
                self.stat_sum[name] = stats.sum(0)
                self.stat_sq_sum[name] = stats.square().sum(0)
                self.count[name] = torch.tensor(float(x.shape[0]), dtype=torch.float64, device=x.device)
                self.shape[name] = shape
                continue
            if self.shape[name].tolist() != shape.tolist():
                raise ValueError(
                    f"{name}: token matrix changed from {tuple(int(v) for v in self.shape[name])} to "
                    f"{tuple(int(v) for v in shape)} (n, d); use one input size per run"
                )
            self.stat_sum[name] += stats.sum(0)
            self.stat_sq_sum[name] += stats.square().sum(0)
            self.count[name] += x.shape[0]

    def compute(self) -> dict[str, Any]:
        """Per-point means and standard deviations (population, over images) of ``QUANTITIES``."""
        if not self.count:
            raise ValueError("rank: no features seen yet; call update() first")
        names = list(self.count)
        points = []
        for depth, name in enumerate(names):
            count = float(self.count[name])
            mean = self.stat_sum[name].cpu() / count
            var = (self.stat_sq_sum[name].cpu() / count - mean.square()).clamp_min(0)
            n, d = (int(v) for v in self.shape[name])
            entry: dict[str, Any] = {
                "name": name,
                "depth": depth / (len(names) - 1) if len(names) > 1 else 0.0,
                "tokens": n,
                "channels": d,
                "images": int(count),
            }
            for i, quantity in enumerate(QUANTITIES):
                entry[quantity] = float(mean[i])
                entry[f"{quantity}_std"] = math.sqrt(float(var[i]))
            points.append(entry)
        return {"points": points, "settings": self.settings()}
