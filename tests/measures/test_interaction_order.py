"""Multi-order interactions: known answers (measures.md §3), the reference's sampling, a per-sample
reimplementation, batching and merging."""
from __future__ import annotations

import math

import numpy as np
import pytest
import timm
import torch
import torch.nn.functional as F
from torch import nn

from freqlens.measures.interaction_order import (
    RATIOS,
    InteractionOrder,
    order_of,
    pair_interactions,
    sample_contexts,
    sample_pairs,
)

GRID, PATCH = 4, 2  # 16 players on an 8x8 image


class PlayerModel(nn.Module):
    """Two-class logits (z(p), 0) of the player presences p (patch means of an all-ones image).

    With label 0 the reward log p/(1-p) is exactly z, so interactions are those of z.
    """

    def __init__(self, kind: str, a: float = 1.5) -> None:
        super().__init__()
        self.kind, self.a = kind, a
        self.weights = torch.linspace(-1.0, 2.0, GRID * GRID, dtype=torch.float64)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = F.avg_pool2d(x[:, :1], PATCH).flatten(1)  # (B, n), 1 present, 0 absent
        if self.kind == "additive":
            z = p @ self.weights
        elif self.kind == "all_pairs":  # a · sum over pairs k < l of [k and l present]
            z = self.a * (p.sum(1) ** 2 - (p**2).sum(1)) / 2
        else:  # product of all players
            z = self.a * p.prod(1)
        return torch.stack([z, torch.zeros_like(z)], dim=1)


def run(model: nn.Module, images: torch.Tensor, **settings) -> dict:
    measure = InteractionOrder(grid=GRID, pairs=6, contexts=3, **settings)
    measure.update(model, images, torch.zeros(len(images), dtype=torch.long))
    return measure.compute()


@pytest.fixture
def ones() -> torch.Tensor:
    return torch.ones(2, 3, GRID * PATCH, GRID * PATCH, dtype=torch.float64)


def test_additive_model_has_no_interaction(ones):
    result = run(PlayerModel("additive"), ones)
    assert max(result["mean_abs"]) < 1e-12


def test_pair_gated_model_has_constant_interaction(ones):
    result = run(PlayerModel("all_pairs", a=1.5), ones)
    np.testing.assert_allclose(result["mean_abs"], 1.5, rtol=1e-12)
    np.testing.assert_allclose(result["mean"], 1.5, rtol=1e-12)
    np.testing.assert_allclose(result["std_abs"], 0.0, atol=1e-6)
    np.testing.assert_allclose(result["strength"], 1.0, rtol=1e-12)


def test_product_model_interacts_only_at_the_top_order(ones):
    result = run(PlayerModel("product", a=2.0), ones)
    assert result["orders"][-1] == GRID * GRID - 2
    np.testing.assert_allclose(result["mean_abs"][:-1], 0.0, atol=1e-12)
    assert result["mean_abs"][-1] == pytest.approx(2.0)
    assert result["strength_max"][-1] == 1.0
    # the reference normalises by the mean over orders (draw_figures.py), not the max: 13 orders, one non-zero
    assert result["strength"][-1] == pytest.approx(len(RATIOS))


def test_orders_and_ratios_follow_the_reference_code():
    # config.yaml's 13 ratios; m = int((n-2) r) floors where measures.md said round: 254 * 0.05 = 12.7 -> 12
    assert RATIOS == (0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)
    assert [order_of(r, 256) for r in RATIOS] == [0, 12, 25, 50, 76, 101, 127, 152, 177, 203, 228, 241, 254]
    assert order_of(0.05, 256) != round(254 * 0.05)
    deng = InteractionOrder.from_preset("deng2022")
    assert (deng.grid, deng.pairs, deng.contexts, deng.stride) == (16, 200, 100, 2)
    moga = InteractionOrder.from_preset("moganet2024")
    assert (moga.grid, moga.pairs, moga.contexts) == (14, 50, 50)
    assert moga.settings()["preset"] == "moganet2024"


def test_pair_and_context_sampling():
    pairs = sample_pairs(16, 200, stride=2, seed=1000 * 3)
    assert pairs.shape == (200, 2)
    assert (pairs[:, 0] != pairs[:, 1]).all()
    assert len({tuple(sorted(p)) for p in pairs.tolist()}) == 200  # no pair twice, in either order
    rows, cols = np.divmod(pairs, 16)
    assert np.abs(rows[:, 0] - rows[:, 1]).max() <= 2 and np.abs(cols[:, 0] - cols[:, 1]).max() <= 2
    np.testing.assert_array_equal(pairs, sample_pairs(16, 200, stride=2, seed=3000))  # seeded
    assert not np.array_equal(pairs, sample_pairs(16, 200, stride=2, seed=3001))
    contexts = sample_contexts(pairs[:5], 256, 101, 4, seed=7)
    assert contexts.shape == (5, 4, 101)
    for (i, j), per_pair in zip(pairs[:5], contexts):
        for context in per_pair:
            assert len(set(context.tolist())) == 101 and i not in context and j not in context
    # draws of the official gen_pairs_pixel.py (seed_torch(7000); then np.random.seed(11) for the contexts),
    # run once against Nebularaid2000/bottleneck@4b8354f: sampling is reproduced draw for draw
    assert sample_pairs(16, 5, stride=2, seed=7000).tolist() == [[29, 27], [249, 216], [31, 29], [117, 135], [59, 43]]
    assert sample_contexts(np.array([[29, 27]]), 256, 3, 2, seed=11).tolist() == [[[101, 124, 26], [1, 202, 249]]]
    with pytest.raises(ValueError, match="distinct pairs"):
        sample_pairs(2, 7, stride=1, seed=0)  # a 2x2 board has only 6 pairs


def straightforward_interactions(model, image, label, pairs, contexts, grid):
    """Per (pair, context), four batch-of-one forwards with masks built patch by patch."""
    h, w = image.shape[-2:]
    ph, pw = h // grid, w // grid

    def reward(players):
        masked = torch.zeros_like(image)
        for k in players:
            r, c = divmod(int(k), grid)
            masked[..., r * ph : (r + 1) * ph, c * pw : (c + 1) * pw] = image[..., r * ph : (r + 1) * ph, c * pw : (c + 1) * pw]
        p = torch.softmax(model(masked).double(), dim=1)[0, label]
        return math.log(p / (1 - p))

    values = []
    with torch.no_grad():
        for (i, j), per_pair in zip(pairs.tolist(), contexts.tolist()):
            deltas = [reward(s + [i, j]) - reward(s + [i]) - reward(s + [j]) + reward(s) for s in per_pair]
            values.append(sum(deltas) / len(deltas))
    return torch.tensor(values, dtype=torch.float64)


def test_engine_matches_a_per_sample_implementation():
    torch.manual_seed(0)
    model = timm.create_model("test_resnet", num_classes=10).eval().double()
    image = torch.randn(1, 3, 32, 32, dtype=torch.float64)
    pairs = sample_pairs(GRID, 3, stride=1, seed=5)
    contexts = sample_contexts(pairs, GRID * GRID, 5, 2, seed=6)
    expected = straightforward_interactions(model, image, 3, pairs, contexts, GRID)
    for batch_size in (5, 1000):  # packing must not matter
        got = pair_interactions(model, image, 3, torch.from_numpy(pairs), torch.from_numpy(contexts), GRID, batch_size)
        torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-9)


def test_batching_merging_and_resuming_are_invariant(device):
    torch.manual_seed(1)
    model = timm.create_model("test_resnet", num_classes=4).eval().double().to(device)
    images = torch.randn(3, 3, 16, 16, dtype=torch.float64, device=device)
    settings = dict(grid=GRID, pairs=3, contexts=2, ratios=(0.0, 0.5, 1.0), target="predicted")
    whole = InteractionOrder(**settings, batch_size=7)
    whole.update(model, images)
    stepwise = InteractionOrder(**settings, batch_size=64)
    for i in range(3):  # one image at a time, saved and restored between images as a resuming runner would
        resumed = InteractionOrder(**settings, batch_size=64)
        resumed.load_state_dict(stepwise.state_dict())
        resumed.update(model, images[i : i + 1])
        stepwise = resumed
    first, second = InteractionOrder(**settings), InteractionOrder(**settings)
    second.update(model, images[1:], indices=[1, 2])  # another process, out of order
    first.update(model, images[:1], indices=[0])
    merged = first.merge(second)
    for other in (stepwise, merged):
        np.testing.assert_allclose(other.compute()["mean_abs"], whole.compute()["mean_abs"], rtol=1e-9)
        assert other.compute()["images"] == 3


def test_runs_under_bfloat16_autocast(device):
    torch.manual_seed(2)
    model = timm.create_model("test_resnet", num_classes=4).eval().to(device)
    measure = InteractionOrder(grid=GRID, pairs=2, contexts=2, ratios=(0.0, 1.0), target="predicted")
    with torch.autocast(device.type, dtype=torch.bfloat16):
        measure.update(model, torch.randn(1, 3, 16, 16, device=device))
    assert np.isfinite(measure.compute()["mean_abs"]).all()


def test_label_target_needs_labels():
    measure = InteractionOrder(grid=GRID, pairs=2, contexts=1)
    with pytest.raises(ValueError, match="needs labels"):
        measure.update(PlayerModel("additive"), torch.ones(1, 1, 8, 8, dtype=torch.float64))
    with pytest.raises(ValueError, match="pairs asked"):
        InteractionOrder(grid=2, pairs=7, stride=1)
