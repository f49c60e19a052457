"""Rank collapse: known answers (measures.md §4), batching, merging and a two-process sync."""
from __future__ import annotations

import math

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from freqlens.measures.rank_collapse import RankCollapse, composite_norm, effective_rank, rank_statistics


def as_features(tokens: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(B, n, d) token matrices as (B, d, h, w) feature maps, token k at row-major position k."""
    return tokens.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], h, w)


def test_identical_tokens_have_no_residual_and_rank_one():
    v = torch.randint(-9, 9, (1, 1, 5)).double()  # integers: the token mean is exact, the residual exactly 0
    stats = rank_statistics(as_features(v.expand(1, 6, 5), 2, 3))[0]
    residual_l1inf, residual_fro, erank, erank_centred = stats.tolist()
    assert residual_l1inf == 0.0 and residual_fro == 0.0
    assert erank == pytest.approx(1.0, abs=1e-12)
    assert erank_centred == 0.0  # the centred matrix is zero


def test_any_rank_one_matrix_has_effective_rank_one_but_a_residual():
    # measures.md says "rank-1 -> residual 0": that holds for X = 1 xᵀ only; u vᵀ with varying u keeps a residual
    u, v = torch.randn(6, 1, dtype=torch.float64), torch.randn(1, 5, dtype=torch.float64)
    stats = rank_statistics(as_features((u @ v)[None], 2, 3))[0]
    assert stats[2] == pytest.approx(1.0, abs=1e-9)
    assert stats[1] > 0.1


@pytest.mark.parametrize("n", [4, 9])
def test_orthogonal_matrix_has_full_effective_rank(n):
    q, _ = torch.linalg.qr(torch.randn(n, n, dtype=torch.float64))
    side = int(math.isqrt(n))
    stats = rank_statistics(as_features(q[None], side, side))[0]
    assert stats[2] == pytest.approx(n, rel=1e-10)


def test_norms_by_hand():
    x = torch.tensor([[1.0, -2.0], [3.0, 0.0], [-1.0, 1.0]], dtype=torch.float64)
    # column sums 5, 3 -> ||X||_1 = 5; row sums 3, 3, 2 -> ||X||_inf = 3
    assert float(composite_norm(x)) == pytest.approx(math.sqrt(15))
    res = x - x.mean(0)
    stats = rank_statistics(as_features(x[None], 1, 3))[0]
    assert float(stats[0]) == pytest.approx(float(composite_norm(res) / composite_norm(x)))
    assert float(stats[1]) == pytest.approx(float(res.norm() / x.norm()))
    s = torch.linalg.svdvals(x)
    p = s / s.sum()
    assert float(stats[2]) == pytest.approx(math.exp(float(-(p * p.log()).sum())))
    assert float(effective_rank(torch.zeros(3, 2))) == 0.0


def features(seed: int, batch: int = 6) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "blocks.0": torch.randn(batch, 8, 4, 4, generator=g, dtype=torch.float64),
        "blocks.1": torch.randn(batch, 16, 2, 3, generator=g, dtype=torch.float64),
    }


def test_batch_size_order_merge_and_state_dict(device):
    feats = {k: v.to(device) for k, v in features(0).items()}
    whole = RankCollapse()
    whole.update(feats)
    pieces = RankCollapse()
    for idx in ([5, 1], [0], [4, 3, 2]):
        pieces.update({k: v[idx] for k, v in feats.items()})
    a, b = RankCollapse(), RankCollapse()
    a.update({k: v[:2] for k, v in feats.items()})
    b.update({k: v[2:] for k, v in feats.items()})
    restored = RankCollapse()
    restored.load_state_dict(a.merge(b).state_dict())
    ref = whole.compute()
    assert [p["name"] for p in ref["points"]] == ["blocks.0", "blocks.1"]
    assert ref["points"][0]["tokens"] == 16 and ref["points"][1]["channels"] == 16
    for other in (pieces, restored):
        for got, want in zip(other.compute()["points"], ref["points"]):
            assert got.keys() == want.keys()
            for key, value in want.items():
                assert got[key] == (pytest.approx(value, rel=1e-10, abs=1e-12) if isinstance(value, float) else value)
    with pytest.raises(ValueError, match="token matrix changed"):
        whole.update({"blocks.0": torch.randn(1, 8, 2, 2)})


def test_reset_forgets_the_probe_points_seen():
    measure = RankCollapse()
    measure.update(features(0))
    measure.reset()
    with pytest.raises(ValueError, match="no features seen yet"):
        measure.compute()
    measure.update({"blocks.1": features(1)["blocks.1"]})
    assert [p["name"] for p in measure.compute()["points"]] == ["blocks.1"]


def test_low_precision_features_are_measured_in_float32(device):
    feats = {k: v.to(device, torch.bfloat16) for k, v in features(1).items()}
    measure = RankCollapse()
    measure.update(feats)
    reference = RankCollapse()
    reference.update({k: v.double() for k, v in feats.items()})
    for got, want in zip(measure.compute()["points"], reference.compute()["points"]):
        assert got["effective_rank"] == pytest.approx(want["effective_rank"], rel=1e-4)


def _sync_worker(rank: int, world: int, tmp: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{tmp}/init", rank=rank, world_size=world)
    try:
        measure = RankCollapse()
        measure.update({k: v[rank::world] for k, v in features(0).items()})
        measure.sync()
        torch.save(measure.state_dict(), f"{tmp}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow  # two spawned interpreters each import torch and freqlens
def test_two_process_sync_matches_one_process(tmp_path):
    mp.spawn(_sync_worker, args=(2, str(tmp_path)), nprocs=2)
    synced = RankCollapse()
    synced.load_state_dict(torch.load(tmp_path / "rank1.pt"))
    single = RankCollapse()
    single.update(features(0))
    for got, want in zip(synced.compute()["points"], single.compute()["points"]):
        assert got["images"] == want["images"] == 6
        for key in ("residual_l1inf", "residual_fro", "effective_rank", "effective_rank_centred"):
            assert got[key] == pytest.approx(want[key], rel=1e-12)
