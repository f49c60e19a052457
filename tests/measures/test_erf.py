"""Effective receptive field: known answers (measures.md §2), the RepLKNet script, batching and merging."""
from __future__ import annotations

import numpy as np
import pytest
import timm
import torch
from torch import nn

from freqlens.errors import FreqlensError
from freqlens.lens import ProbePoint
from freqlens.measures.erf import EffectiveReceptiveField, area_ratio, erf_heatmap


def box_stack(layers: int) -> nn.Sequential:
    """Linear stack of 3x3 all-ones convs (3 -> 1 channel first), zero padding, no bias."""
    convs = []
    for i in range(layers):
        conv = nn.Conv2d(3 if i == 0 else 1, 1, 3, padding=1, bias=False)
        nn.init.ones_(conv.weight)
        convs.append(conv)
    return nn.Sequential(*convs).double()


def box_kernel(layers: int) -> torch.Tensor:
    """The L-fold box convolution: outer product of the coefficients of (1 + x + x²)^L."""
    line = np.array([1.0])
    for _ in range(layers):
        line = np.convolve(line, [1.0, 1.0, 1.0])
    return torch.from_numpy(np.outer(line, line))


@pytest.mark.parametrize("layers", [1, 3])
def test_linear_box_stack_has_the_box_convolution_erf(layers):
    size = 17
    erf = EffectiveReceptiveField(points=[ProbePoint(str(layers - 1))], input_size=None)
    images = torch.rand(2, 3, size, size, dtype=torch.float64) + 0.1  # positive: relu passes the centre
    erf.update(box_stack(layers), images)
    result = erf.compute()["points"][0]
    expected = torch.zeros(size, size, dtype=torch.float64)
    k = box_kernel(layers)
    c, r = size // 2, layers
    expected[c - r : c + r + 1, c - r : c + r + 1] = 3 * k  # one path per input channel
    torch.testing.assert_close(result["mean_map"], expected, rtol=0, atol=1e-12)
    assert result["images"] == 2 and result["skipped"] == 0


def test_area_ratio_follows_analyze_erf():
    # the smallest square tried is 3x3 (i starts at 1) even when the centre pixel alone holds 100%
    heat = torch.zeros(9, 9, dtype=torch.float64)
    heat[4, 4] = 1.0
    assert area_ratio(heat, 0.5) == (3, 9 / 81)
    # the largest tried has half-side H//2 - 1: a uniform map never reaches 0.99 (the script crashes, we say None)
    uniform = torch.ones(9, 9, dtype=torch.float64)
    assert area_ratio(uniform, 0.99) is None
    assert area_ratio(uniform, 0.5) == (7, 49 / 81)  # 49/81 = 0.605 > 0.5, 25/81 is not
    heat = erf_heatmap(torch.tensor([[0.0, 9.0], [99.0, 0.0]]))
    torch.testing.assert_close(heat, torch.tensor([[0.0, 0.5], [1.0, 0.0]], dtype=torch.float64))


def replknet_script_erf(model: nn.Module, images: torch.Tensor) -> np.ndarray:
    """Straightforward transcription of the visualize_erf.py recipe: one image per backward, then average."""
    maps = []
    for sample in images.split(1):
        sample = sample.clone().requires_grad_(True)
        outputs = model.forward_features(sample)
        h, w = outputs.shape[2:]
        central = torch.relu(outputs[:, :, h // 2, w // 2]).sum()
        (grad,) = torch.autograd.grad(central, sample)
        maps.append(torch.relu(grad).sum((0, 1)).numpy())
    return np.mean(maps, axis=0)


def test_matches_replknet_script_on_a_timm_model():
    torch.manual_seed(0)
    model = timm.create_model("test_resnet", num_classes=10).eval()
    images = torch.randn(3, 3, 64, 64)
    expected = replknet_script_erf(model, images)
    erf = EffectiveReceptiveField(input_size=None)  # default point: the last stage (layer4)
    erf.update(model, images)
    result = erf.compute()
    assert result["points"][0]["name"] == "layer4"
    assert result["batch_coupled"] is False
    got = result["points"][0]["mean_map"].numpy()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5 * expected.max())
    assert all(p.requires_grad for p in model.parameters()), "grad flags must be restored"


def test_batch_size_order_and_merge_invariance(device):
    torch.manual_seed(1)
    model = timm.create_model("test_resnet", num_classes=10).eval().double().to(device)
    images = torch.randn(4, 3, 32, 32, dtype=torch.float64, device=device)
    point = [ProbePoint("layer3")]
    whole = EffectiveReceptiveField(points=point, input_size=None)
    whole.update(model, images)
    ones = EffectiveReceptiveField(points=point, input_size=None)
    for i in [3, 1, 0, 2]:
        ones.update(model, images[i : i + 1])
    first, second = (EffectiveReceptiveField(points=point, input_size=None) for _ in range(2))
    first.update(model, images[:1])
    second.update(model, images[1:])
    restored = EffectiveReceptiveField(points=point, input_size=None)
    restored.load_state_dict(first.merge(second).state_dict())
    ref = whole.compute()["points"][0]["mean_map"]
    for other in (ones, restored):
        torch.testing.assert_close(other.compute()["points"][0]["mean_map"], ref, rtol=1e-10, atol=1e-12)


class BatchMixer(nn.Module):
    """Adds half the batch mean to every sample: a model whose images are coupled across the batch."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return y + 0.5 * y.mean(0, keepdim=True)


class DetachedBatchScale(nn.Module):
    """Scales by a detached batch statistic: no gradient crosses images, yet the forward is coupled
    (as Spectral VMamba's scan order, a non-differentiable function of the whole batch)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) * x.detach().square().mean()


@pytest.mark.parametrize("model_cls", [BatchMixer, DetachedBatchScale])
def test_batch_coupling_is_detected_and_measured_per_sample(device, model_cls):
    torch.manual_seed(2)
    model, images = model_cls().double().to(device), torch.randn(3, 3, 9, 9, dtype=torch.float64, device=device)
    point = [ProbePoint("")]
    batched = EffectiveReceptiveField(points=point, input_size=None)
    batched.update(model, images)
    assert batched.compute()["batch_coupled"] is True
    singles = EffectiveReceptiveField(points=point, input_size=None)
    for sample in images.split(1):  # batches of one: nothing to check, nothing coupled
        singles.update(model, sample)
    assert singles.compute()["batch_coupled"] is None
    torch.testing.assert_close(batched.compute()["points"][0]["mean_map"], singles.compute()["points"][0]["mean_map"])
    refusing = EffectiveReceptiveField(points=point, input_size=None, on_coupling="error")
    with pytest.raises(FreqlensError, match="couples the images"):
        refusing.update(model, images)


class FixedSize(nn.Module):
    """Refuses any input but 160x160, as models with fixed position embeddings do."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (160, 160):
            raise AssertionError(f"input must be 160x160, got {tuple(x.shape[-2:])}")
        return self.conv(x)


@pytest.mark.parametrize("model_cls, coupled", [(BatchMixer, True), (DetachedBatchScale, True), (FixedSize, False)])
def test_large_inputs_are_checked_shrunk_when_the_model_allows(model_cls, coupled):
    """Above a 128-pixel side the check runs on shrunk copies; the verdict is the same, fixed-size models
    are checked at full size. A forward pre-hook records every input the model is given, so the test sees
    which size each of the check's three passes (batched, swapped, alone) actually ran at."""
    torch.manual_seed(4)
    model, images = model_cls().double(), torch.randn(2, 3, 160, 160, dtype=torch.float64)
    seen: list[torch.Tensor] = []
    model.register_forward_pre_hook(lambda _module, args: seen.append(args[0].detach().clone()))
    erf = EffectiveReceptiveField(points=[ProbePoint("")], input_size=None)
    erf.update(model, images)
    assert erf.compute()["batch_coupled"] is coupled
    shapes = [tuple(x.shape) for x in seen]
    batched = (2, 3, 160, 160)  # the measuring pass, queued before the check
    if model_cls is FixedSize:  # one refused 128-pixel try, then the three check passes at full size
        assert shapes == [batched, (2, 3, 128, 128), batched, batched, (1, 3, 160, 160)]
        return
    # the three check passes at 128 pixels and no full-size check pass; then (coupled) one pass per image
    assert shapes == [batched, (2, 3, 128, 128), (2, 3, 128, 128), (1, 3, 128, 128), (1, 3, 160, 160), (1, 3, 160, 160)]
    shrunk = nn.functional.interpolate(images, size=(128, 128), mode="area")
    torch.testing.assert_close(seen[1], shrunk, rtol=0, atol=0)  # the batch itself, area-shrunk
    torch.testing.assert_close(seen[2][:1], shrunk[:1], rtol=0, atol=0)  # swapped: image 0 kept, image 1 replaced
    assert not torch.equal(seen[2][1:], shrunk[1:])
    torch.testing.assert_close(seen[3], shrunk[:1], rtol=0, atol=0)  # image 0 alone


class FailsWhenShrunk(nn.Module):
    """Raises a device error on the shrunk check input, as a crowded or failing GPU could."""

    def __init__(self, error: type[Exception]) -> None:
        super().__init__()
        self.conv, self.error = nn.Conv2d(3, 2, 3, padding=1), error

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (160, 160):
            raise self.error("device error (simulated)")
        return self.conv(x)


@pytest.mark.parametrize("error", [torch.OutOfMemoryError, torch.AcceleratorError])
def test_a_device_failure_in_the_shrunk_check_is_not_taken_for_a_size_refusal(error):
    """A device error at the shrunk size is raised as itself, not retried at full size."""
    model, images = FailsWhenShrunk(error).double(), torch.randn(2, 3, 160, 160, dtype=torch.float64)
    erf = EffectiveReceptiveField(points=[ProbePoint("")], input_size=None)
    with pytest.raises(error, match="simulated"):
        erf.update(model, images)


def test_runs_under_bfloat16_autocast(device):
    torch.manual_seed(3)
    model = timm.create_model("test_resnet", num_classes=10).eval().to(device)
    erf = EffectiveReceptiveField(input_size=None)
    with torch.autocast(device.type, dtype=torch.bfloat16):
        erf.update(model, torch.randn(2, 3, 32, 32, device=device))
    result = erf.compute()
    assert result["batch_coupled"] is False  # the looser reduced-precision tolerance applies
    assert torch.isfinite(result["points"][0]["mean_map"]).all() and result["points"][0]["mean_map"].sum() > 0


def test_preset_and_input_size_check():
    erf = EffectiveReceptiveField.from_preset("replknet2022")
    assert erf.settings()["preset"] == "replknet2022" and erf.settings()["input_size"] == 1024
    with pytest.raises(FreqlensError, match="1024x1024"):
        erf.update(box_stack(1), torch.ones(1, 3, 16, 16, dtype=torch.float64))
    with pytest.raises(ValueError, match="on_coupling"):
        EffectiveReceptiveField(on_coupling="ignore")
