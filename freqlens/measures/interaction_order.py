"""Multi-order interactions: how strongly pairs of image patches cooperate, by context size.

Reference: Deng et al., "Discovering and Explaining the Representation Bottleneck of DNNs" (ICLR 2022),
official repo ``Nebularaid2000/bottleneck`` (4b8354f): ``config.yaml``, ``gen_pairs_pixel.py``,
``m_order_interaction_logit_pixel_baseline.py``, ``compute_interactions.py``, ``draw_figures.py``,
``util/utils.py``; reused by MogaNet (Li et al., ICLR 2024), whose repo has no interaction code.

The image is split into a G×G grid of players (n = G²); an absent player takes the baseline 0 (the
mean, after normalisation), i.e. the image is multiplied by the nearest-upsampled player mask. Then

- reward ``v(S) = log p(y|x_S) / (1 - p(y|x_S)) = z_y - logsumexp_{c != y} z_c`` of class y (the label,
  or the prediction on the full image) — ``get_reward(softmax_type="modified")``;
- ``Δv(i,j,S) = v(S∪{i,j}) - v(S∪{i}) - v(S∪{j}) + v(S)``, ``I^(m)(i,j) = mean_S Δv(i,j,S)`` over
  sampled contexts S ⊆ N\\{i,j} with |S| = m;
- the curve ``J^(m) = E_x E_(i,j) |I^(m)(i,j)|`` over orders ``m = int((n-2)·r)``.

Where the reference code differs from measures.md §3, the code is followed (tests say so): orders are
``int`` (floor), not ``round``; the curve the paper draws is ``J / mean_m J`` (``draw_figures.py``),
``strength`` here, while ``J / max_m J`` is given too as ``strength_max``; pairs are neighbours within
``stride = 2`` grid units (clamped at the border, distinct, unordered pairs not repeated), 200 pairs x
100 contexts per image. Sampling follows ``gen_pairs_pixel.py`` draw for draw: for the image of index k,
pairs come from ``numpy`` / ``random`` seeded with ``1000k + seed`` and the contexts of order m from
``numpy`` seeded with ``1000k + m + 1 + seed`` (local generators; the global RNG is left alone).

Cost is 4·P·S forwards per order and image; they run as masked copies packed ``batch_size`` to a
forward, across orders. The state (per order: sums of |I|, of I and of I², the pair count) is a sum
over images, so a runner may save it after every image and merge partial runs.
"""
from __future__ import annotations

import functools
import random
from typing import Any, Iterable, Iterator, Literal, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from freqlens.lens.lens import preserved_state
from freqlens.measures.base import Measure, register_measure

RATIOS: tuple[float, ...] = (0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)  # config.yaml
Target = Literal["label", "predicted"]


def order_of(ratio: float, players: int) -> int:
    """Context size m = int((n - 2)·r) of a ratio r, as in the reference code (floor, not round).

    >>> [order_of(r, 256) for r in (0.05, 0.95, 1.0)]
    [12, 241, 254]
    """
    return int((players - 2) * ratio)


def sample_pairs(grid: int, count: int, stride: int | None, seed: int) -> np.ndarray:
    """(count, 2) distinct unordered player pairs (row-major indices on a grid x grid board).

    With ``stride``, j is i moved by a random non-zero offset of at most ``stride`` per axis, clamped to
    the board (``gen_pairs_pixel.gen_pairs``: ``numpy`` draws i, ``random.choice`` the offset); with
    None, j is any other player.
    """
    n = grid * grid
    available = pair_count(grid, stride)
    if count > available:
        raise ValueError(f"cannot draw {count} distinct pairs: a {grid}x{grid} grid with stride {stride} has {available}")
    np_rng, py_rng = np.random.RandomState(seed), random.Random(seed)
    offsets = _offsets(stride)
    pairs: list[list[int]] = []
    seen: set[tuple[int, int]] = set()  # unordered, for the membership test
    while len(pairs) < count:
        y1, x1 = np_rng.randint(0, grid), np_rng.randint(0, grid)
        if offsets is None:
            j = int(np_rng.randint(0, n))
            y2, x2 = divmod(j, grid)
        else:
            dy, dx = py_rng.choice(offsets)
            y2, x2 = min(max(y1 + dy, 0), grid - 1), min(max(x1 + dx, 0), grid - 1)
        i, j = y1 * grid + x1, y2 * grid + x2
        if i == j or (min(i, j), max(i, j)) in seen:
            continue
        seen.add((min(i, j), max(i, j)))
        pairs.append([i, j])
    return np.array(pairs, dtype=np.int64)


def sample_contexts(pairs: np.ndarray, players: int, order: int, count: int, seed: int) -> np.ndarray:
    """(P, count, order) contexts: for each pair, ``count`` draws of ``order`` other players.

    ``np.random.choice(context, m, replace=False)`` with ``numpy`` seeded by ``seed``, pair by pair
    (``gen_pairs_pixel.py``).
    """
    rng = np.random.RandomState(seed)
    out = np.empty((len(pairs), count, order), dtype=np.int64)
    for p, (i, j) in enumerate(pairs):
        context = np.array([k for k in range(players) if k != i and k != j])
        for s in range(count):
            out[p, s] = rng.choice(context, order, replace=False)
    return out


def coalition_masks(pairs: torch.Tensor, contexts: torch.Tensor, players: int) -> torch.Tensor:
    """(P·S·4, n) boolean masks, per (pair, context) the coalitions S∪{i,j}, S∪{i}, S∪{j}, S in turn."""
    p, s, _ = contexts.shape
    base = torch.zeros(p, s, players, dtype=torch.bool, device=contexts.device)
    base.scatter_(2, contexts, True)
    masks = base.unsqueeze(2).repeat(1, 1, 4, 1)  # (P, S, 4, n)
    i = pairs[:, 0].view(p, 1, 1).expand(p, s, 1)
    j = pairs[:, 1].view(p, 1, 1).expand(p, s, 1)
    masks[:, :, 0].scatter_(2, i, True)
    masks[:, :, 0].scatter_(2, j, True)
    masks[:, :, 1].scatter_(2, i, True)
    masks[:, :, 2].scatter_(2, j, True)
    return masks.flatten(0, 2)


def log_odds(logits: torch.Tensor, target: torch.Tensor | int) -> torch.Tensor:
    """``log p / (1 - p)`` of class ``target`` from (B, classes) logits, in float64.

    >>> round(float(log_odds(torch.tensor([[0.0, 0.0]]), 0)), 6)
    0.0
    """
    z = logits.double()
    target = torch.as_tensor(target, device=z.device).expand(z.shape[0])
    picked = z.gather(1, target[:, None]).squeeze(1)
    others = z.scatter(1, target[:, None], -torch.inf)
    return picked - torch.logsumexp(others, dim=1)


def interaction_from_rewards(rewards: torch.Tensor, contexts: int) -> torch.Tensor:
    """(P,) interactions ``mean_S Δv`` from rewards in ``coalition_masks`` order (P·S·4,)."""
    v = rewards.view(-1, contexts, 4)
    return (v[..., 0] - v[..., 1] - v[..., 2] + v[..., 3]).mean(dim=1)


@torch.no_grad()
def masked_rewards(
    model: nn.Module,
    image: torch.Tensor,
    target: int,
    blocks: Iterable[torch.Tensor],
    grid: int,
    batch_size: int,
) -> Iterator[torch.Tensor]:
    """Yield, block by block, the rewards of ``image`` (1, C, H, W) under each (K, n) mask block.

    Masked copies are packed ``batch_size`` per forward across blocks, so a block's last partial batch
    rides with the next block's first rows.
    """
    pending: list[torch.Tensor] = []  # rewards computed but not yet handed out
    buffer = image.new_zeros((0, grid * grid), dtype=torch.bool)
    sizes: list[int] = []
    for block in blocks:
        sizes.append(len(block))
        buffer = torch.cat([buffer, block.to(image.device)])
        full = len(buffer) // batch_size * batch_size
        for start in range(0, full, batch_size):
            pending.append(_reward_batch(model, image, target, buffer[start : start + batch_size], grid))
        buffer = buffer[full:]
        yield from _hand_out(pending, sizes)
    if len(buffer):
        pending.append(_reward_batch(model, image, target, buffer, grid))
    yield from _hand_out(pending, sizes)


def _hand_out(pending: list[torch.Tensor], sizes: list[int]) -> Iterator[torch.Tensor]:
    """Yield complete blocks from the front of ``pending`` (both lists are consumed in place)."""
    while sizes and sum(len(r) for r in pending) >= sizes[0]:
        done = torch.cat(pending)
        yield done[: sizes[0]]
        rest = done[sizes.pop(0) :]
        pending[:] = [rest] if len(rest) else []


def _reward_batch(model: nn.Module, image: torch.Tensor, target: int, masks: torch.Tensor, grid: int) -> torch.Tensor:
    mask = masks.view(-1, 1, grid, grid).to(image.dtype)
    mask = F.interpolate(mask, size=image.shape[-2:], mode="nearest")  # m_order_interaction_logit_pixel_baseline.py
    return log_odds(model(image * mask), target)


def pair_interactions(
    model: nn.Module,
    image: torch.Tensor,
    target: int,
    pairs: torch.Tensor,
    contexts: torch.Tensor,
    grid: int,
    batch_size: int = 512,
) -> torch.Tensor:
    """(P,) interactions ``I(i,j) = mean_S Δv(i,j,S)`` of one image for given pairs (P, 2) and
    contexts (P, S, m); the model should be in eval mode."""
    masks = coalition_masks(pairs.to(image.device), contexts.to(image.device), grid * grid)
    (rewards,) = masked_rewards(model, image, target, [masks], grid, batch_size)
    return interaction_from_rewards(rewards, contexts.shape[1])


@register_measure
class InteractionOrder(Measure):
    """Mean strength of pairwise patch interactions per order (see the module docstring).

    ``update(model, images, labels=None, indices=None)`` takes the model, a normalised (B, C, H, W)
    batch, (B,) labels (needed when ``target="label"``) and (B,) dataset indices that seed the
    sampling (default: the running count of images this measure has seen, so one pass over a dataset
    in order gives the same pairs however it is batched). ``compute()`` returns the curve. States:
    ``abs_sum``, ``sum``, ``sq_sum`` ((R,) float64 sums over images and pairs of |I|, I and I²),
    ``count`` ((R,) pairs) and ``images``.

    Args:
        preset: the protocol this run follows (recorded in the provenance).
        grid: players per side (G).
        pairs: pairs (i, j) per image.
        contexts: contexts S per pair and order.
        ratios: orders as fractions r of n - 2.
        stride: neighbourhood radius of j around i in grid units; None draws j anywhere.
        target: the class whose log-odds are the reward: the label or the prediction on the full image.
        seed: added to every sampling seed.
        batch_size: masked copies per forward (speed and memory only, not the result).
    """

    name = "interactions"
    presets = {
        "deng2022": {"preset": "deng2022", "grid": 16, "pairs": 200, "contexts": 100, "stride": 2},
        # measures.md §3: G = 14 (16 px patches at 224), 50 pairs x 50 contexts; MogaNet publishes no code,
        # so neighbourhood, reward and orders stay those of Deng et al.
        "moganet2024": {"preset": "moganet2024", "grid": 14, "pairs": 50, "contexts": 50, "stride": 2},
    }

    def __init__(
        self,
        preset: str = "deng2022",
        grid: int = 16,
        pairs: int = 200,
        contexts: int = 100,
        ratios: Sequence[float] = RATIOS,
        stride: int | None = 2,
        target: Target = "label",
        seed: int = 0,
        batch_size: int = 512,
    ) -> None:
        super().__init__()
        self.check_preset(preset)
        if grid < 2:
            raise ValueError(f"interactions: grid must be >= 2, got {grid}")
        if pairs < 1 or contexts < 1 or batch_size < 1:
            raise ValueError(f"interactions: pairs, contexts and batch_size must be >= 1, got {pairs}, {contexts}, {batch_size}")
        if not ratios or any(not 0.0 <= r <= 1.0 for r in ratios):
            raise ValueError(f"interactions: ratios must be a non-empty list in [0, 1], got {list(ratios)}")
        if stride is not None and stride < 1:
            raise ValueError(f"interactions: stride must be >= 1 or None, got {stride}")
        if target not in ("label", "predicted"):
            raise ValueError(f"interactions: target must be 'label' or 'predicted', got {target!r}")
        n_pairs = pair_count(grid, stride)
        if pairs > n_pairs:
            raise ValueError(f"interactions: {pairs} pairs asked but a {grid}x{grid} grid with stride {stride} has {n_pairs}")
        self.preset, self.grid, self.pairs, self.contexts = preset, grid, pairs, contexts
        self.ratios = tuple(float(r) for r in ratios)
        self.stride, self.target, self.seed, self.batch_size = stride, target, seed, batch_size
        self.orders = [order_of(r, grid * grid) for r in self.ratios]
        r = len(self.ratios)
        for state in ("abs_sum", "sum", "sq_sum", "count"):
            self.add_state(state, torch.zeros(r, dtype=torch.float64))
        self.add_state("images", torch.zeros((), dtype=torch.float64))

    def settings(self) -> dict[str, Any]:
        return {
            "preset": self.preset,
            "grid": self.grid,
            "pairs": self.pairs,
            "contexts": self.contexts,
            "ratios": list(self.ratios),
            "orders": self.orders,
            "stride": self.stride,
            "target": self.target,
            "seed": self.seed,
            "reward": "log p/(1-p)",
            "baseline": "zero (normalised mean)",
        }

    @torch.no_grad()
    def update(
        self,
        model: nn.Module,
        images: torch.Tensor,
        labels: torch.Tensor | None = None,
        indices: Sequence[int] | None = None,
    ) -> None:
        if images.dim() != 4:
            raise ValueError(f"interactions: expected (B, C, H, W) images, got shape {tuple(images.shape)}")
        b = images.shape[0]
        if self.target == "label" and labels is None:
            raise ValueError("interactions: target='label' needs labels; pass them or use target='predicted'")
        if labels is not None and labels.shape != (b,):
            raise ValueError(f"interactions: labels {tuple(labels.shape)} do not match {b} images")
        if indices is None:
            start = int(self.images)
            indices = range(start, start + b)
        if len(indices) != b:
            raise ValueError(f"interactions: {len(indices)} indices for {b} images")
        with preserved_state(model):
            model.eval()
            for image, index, label in zip(images.split(1), indices, labels if labels is not None else [None] * b, strict=True):
                target = int(label) if self.target == "label" else int(model(image).argmax(1))
                self._add(self.image_interactions(model, image, target, int(index)))

    def image_interactions(self, model: nn.Module, image: torch.Tensor, target: int, index: int) -> torch.Tensor:
        """(R, P) interactions of one (1, C, H, W) image, all orders, for dataset index ``index``."""
        pairs = sample_pairs(self.grid, self.pairs, self.stride, 1000 * index + self.seed)
        pairs_t = torch.from_numpy(pairs).to(image.device)
        n = self.grid * self.grid

        def blocks() -> Iterator[torch.Tensor]:
            for m in self.orders:
                ctx = sample_contexts(pairs, n, m, self.contexts, 1000 * index + m + 1 + self.seed)
                yield coalition_masks(pairs_t, torch.from_numpy(ctx).to(image.device), n)

        rewards = masked_rewards(model, image, target, blocks(), self.grid, self.batch_size)
        return torch.stack([interaction_from_rewards(r, self.contexts) for r in rewards])

    def _add(self, interactions: torch.Tensor) -> None:
        device = interactions.device
        for name, value in (
            ("abs_sum", interactions.abs().sum(1)),
            ("sum", interactions.sum(1)),
            ("sq_sum", interactions.square().sum(1)),
            ("count", torch.full_like(interactions[:, 0], interactions.shape[1])),
        ):
            setattr(self, name, getattr(self, name).to(device) + value)
        self.images = self.images.to(device) + 1

    def compute(self) -> dict[str, Any]:
        """Per order: ``mean_abs`` (J^(m)), ``std_abs`` (spread of |I| over images and pairs), ``mean``
        (signed), ``strength`` (J / mean_m J, the reference's curve) and ``strength_max`` (J / max_m J)."""
        if float(self.images) == 0:
            raise ValueError("interactions: no images seen yet; call update() first")
        count = self.count.cpu()
        mean_abs = self.abs_sum.cpu() / count
        std_abs = (self.sq_sum.cpu() / count - mean_abs.square()).clamp_min(0).sqrt()
        return {
            "ratios": list(self.ratios),
            "orders": list(self.orders),
            "mean_abs": mean_abs.tolist(),
            "std_abs": std_abs.tolist(),
            "mean": (self.sum.cpu() / count).tolist(),
            "strength": (mean_abs / mean_abs.mean()).tolist(),
            "strength_max": (mean_abs / mean_abs.max()).tolist(),
            "images": int(self.images),
            "settings": self.settings(),
        }


def _offsets(stride: int | None) -> list[tuple[int, int]] | None:
    """Neighbour offsets in the reference's order (row offset outer, column offset inner)."""
    if stride is None:
        return None
    return [(dy, dx) for dy in range(-stride, stride + 1) for dx in range(-stride, stride + 1) if dy or dx]


@functools.lru_cache(maxsize=16)  # sample_pairs asks once per image
def pair_count(grid: int, stride: int | None) -> int:
    """How many distinct unordered pairs ``sample_pairs`` can draw (counted, not listed, without a stride:
    a 100x100 grid has 5e7).

    >>> pair_count(3, None), pair_count(3, 1)
    (36, 20)
    """
    n = grid * grid
    if stride is None:
        return n * (n - 1) // 2
    found = set()
    for y in range(grid):
        for x in range(grid):
            for dy, dx in _offsets(stride) or []:
                i, j = y * grid + x, min(max(y + dy, 0), grid - 1) * grid + min(max(x + dx, 0), grid - 1)
                if i != j:
                    found.add((min(i, j), max(i, j)))
    return len(found)
