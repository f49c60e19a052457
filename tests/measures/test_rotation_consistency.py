"""Rotation consistency: known answers (measures.md §5), bilinear option, batching and merging."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from freqlens.lens import ProbePoint
from freqlens.measures.rotation_consistency import RotationConsistency, disc_mask, rotate


def small_cnn() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 8, 3, stride=2, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5),
    ).double()


class RotationAveraged(nn.Module):
    """f(x) = mean over k of g(rot90(x, k)): exactly invariant to rot90 by construction."""

    def __init__(self) -> None:
        super().__init__()
        self.g = small_cnn()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([self.g(torch.rot90(x, k, (-2, -1))) for k in range(4)]).mean(0)


def pointwise_model() -> nn.Sequential:
    """1x1 convs then global pooling: every layer commutes with rotations of the grid."""
    torch.manual_seed(1)
    return nn.Sequential(
        nn.Conv2d(3, 6, 1), nn.GELU(), nn.Conv2d(6, 4, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)
    ).double()


def test_rotation_averaged_model_is_invariant():
    images = torch.randn(4, 3, 12, 12, dtype=torch.float64)
    measure = RotationConsistency()
    measure.update(RotationAveraged(), images)
    out = measure.compute()["outputs"]
    assert out["agreement"] == [1.0] * 4
    np.testing.assert_allclose(out["logit_cosine"], 1.0, atol=1e-12)
    np.testing.assert_allclose(out["kl"], 0.0, atol=1e-12)
    assert all(np.isnan(out["correct"]))


def test_pointwise_model_is_equivariant_and_a_plain_cnn_is_not():
    images = torch.randn(3, 3, 10, 6, dtype=torch.float64)  # non-square: rot90 swaps the grid's sides
    points = [ProbePoint("0"), ProbePoint("2")]
    measure = RotationConsistency(points=points)
    measure.update(pointwise_model(), images)
    result = measure.compute()
    for point in result["points"]:
        np.testing.assert_allclose(point["equivariance"], 1.0, atol=1e-12)
        np.testing.assert_allclose(point["invariance"], 1.0, atol=1e-12)
    assert result["outputs"]["agreement"] == [1.0] * 4
    cnn = RotationConsistency(points=[ProbePoint("0")])
    cnn.update(small_cnn(), images)
    assert min(cnn.compute()["points"][0]["equivariance"]) < 0.999  # a 3x3 random kernel is not rotation-symmetric


def test_accuracy_uses_the_labels():
    images = torch.randn(5, 3, 8, 8, dtype=torch.float64)
    model = small_cnn().eval()
    labels = model(images).argmax(1)
    measure = RotationConsistency()
    measure.update(model, images, labels)
    result = measure.compute()
    assert result["outputs"]["correct"][0] == 1.0 and result["labelled"] == 5
    np.testing.assert_allclose(result["outputs"]["correct"][1:], result["outputs"]["agreement"][1:])


def test_bilinear_rotation_matches_rot90_and_masks_both_inputs():
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    for angle in (90, 180, 270):
        torch.testing.assert_close(rotate(x, angle, "bilinear"), rotate(x, angle, "exact"), rtol=0, atol=1e-12)
    mask = disc_mask(8, 8)
    assert mask[0, 0] == 0 and mask[4, 4] == 1 and torch.equal(mask, torch.rot90(mask, 1))
    images = torch.randn(2, 3, 12, 12, dtype=torch.float64)
    exact = RotationConsistency(points=[ProbePoint("2")])
    exact.update(pointwise_model(), images * disc_mask(12, 12, dtype=torch.float64))
    bilinear = RotationConsistency(angles=(90, 180, 270), interpolation="bilinear", points=[ProbePoint("2")])
    bilinear.update(pointwise_model(), images)  # the mask is applied inside, so the same numbers come out
    for key in ("logit_cosine", "kl", "agreement"):
        np.testing.assert_allclose(bilinear.compute()["outputs"][key], exact.compute()["outputs"][key], atol=1e-9)
    np.testing.assert_allclose(bilinear.compute()["points"][0]["equivariance"], 1.0, atol=1e-9)
    odd = RotationConsistency(angles=(30.0,), interpolation="bilinear")
    odd.update(pointwise_model(), images)
    assert odd.compute()["settings"]["mask"] == "inscribed disc on both inputs"
    with pytest.raises(ValueError, match="multiples of 90"):
        RotationConsistency(angles=(45,))


def test_runs_under_bfloat16_autocast(device):
    measure = RotationConsistency(points=[ProbePoint("2")])
    with torch.autocast(device.type, dtype=torch.bfloat16):
        measure.update(pointwise_model().float().to(device), torch.randn(2, 3, 8, 8, device=device))
    result = measure.compute()
    assert np.isfinite(result["outputs"]["logit_cosine"]).all()
    np.testing.assert_allclose(result["points"][0]["equivariance"], 1.0, atol=1e-6)  # rot90 is exact in any dtype


def test_batch_size_order_merge_and_state_dict(device):
    images = torch.randn(5, 3, 8, 8, dtype=torch.float64, device=device)
    labels = torch.tensor([0, 1, 2, 3, 4], device=device)
    model, points = small_cnn().to(device), [ProbePoint("0"), ProbePoint("2")]
    whole = RotationConsistency(points=points)
    whole.update(model, images, labels)
    pieces = RotationConsistency(points=points)
    for idx in ([4, 0], [2], [1, 3]):
        pieces.update(model, images[idx], labels[idx])
    a, b = RotationConsistency(points=points), RotationConsistency(points=points)
    a.update(model, images[:2], labels[:2])
    b.update(model, images[2:], labels[2:])
    restored = RotationConsistency(points=points)
    restored.load_state_dict(a.merge(b).state_dict())
    ref = whole.compute()
    for other in (pieces, restored):
        got = other.compute()
        for key, values in ref["outputs"].items():
            np.testing.assert_allclose(got["outputs"][key], values, rtol=1e-10, atol=1e-12)
        for p, q in zip(got["points"], ref["points"]):
            np.testing.assert_allclose(p["equivariance"], q["equivariance"], rtol=1e-10)
            np.testing.assert_allclose(p["invariance"], q["invariance"], rtol=1e-10)
