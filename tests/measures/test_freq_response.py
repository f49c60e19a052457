"""Frequency response measures: known answers (conv gain = |DFT kernel|, an ideal low-pass front end is
blind to high frequencies), the reference's Fourier basis, and batch-order independence."""
from __future__ import annotations

import math

import pytest
import timm
import torch
from torch import nn

from freqlens.lens.probes import ProbePoint, default_probe_points
from freqlens.measures.base import MEASURES
from freqlens.measures.freq_response import (
    BandLimitedAccuracy,
    FourierGrid,
    FourierSensitivity,
    TransferFunction,
    band_filter,
    fourier_basis,
)


def reference_basis(h: int, w: int, i: int, j: int) -> torch.Tensor:
    """The reference's construction (``frequency_analysis/freq_heatmap.py``, ``_get_fourier_basis``):
    ½(1+i) at centred index (i, j), its conjugate at the symmetric index, ifftshift, ifft2, √(HW)·real."""
    sym = [(n - p) % n if n % 2 == 0 else n - 1 - p for n, p in ((h, i), (w, j))]
    freq = torch.zeros(h, w, dtype=torch.complex128)
    if tuple(sym) == (i, j):
        freq[i, j] = 1.0
    else:
        freq[i, j] = 0.5 + 0.5j
        freq[sym[0], sym[1]] = 0.5 - 0.5j
    return math.sqrt(h * w) * torch.fft.ifft2(torch.fft.ifftshift(freq)).real


@pytest.mark.parametrize("h, w", [(6, 8), (5, 7), (4, 5)])
def test_basis_matches_reference(h, w):
    grid = torch.stack(torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij"), -1).reshape(-1, 2)
    ours = fourier_basis((h, w), grid - torch.tensor([h // 2, w // 2]), torch.float64)
    for (i, j), u in zip(grid.tolist(), ours, strict=True):
        torch.testing.assert_close(u, reference_basis(h, w, i, j), atol=1e-12, rtol=0, msg=f"basis ({i}, {j})")


@pytest.mark.parametrize("size, max_freq", [((6, 8), None), ((5, 7), None), ((8, 8), 2), ((9, 6), 3)])
def test_grid_pairs_cover_each_frequency_once(size, max_freq):
    grid = FourierGrid(size, max_freq)
    freqs, index, partner = grid.pairs()
    covered = torch.zeros(len(grid.freq_y), len(grid.freq_x), dtype=torch.int64)
    covered[index[:, 0], index[:, 1]] += 1
    self_sym = (index == partner).all(dim=1)
    covered[partner[~self_sym, 0], partner[~self_sym, 1]] += 1
    assert bool((covered == 1).all()), covered
    torch.testing.assert_close(grid.freq_y[index[:, 0]], freqs[:, 0])
    torch.testing.assert_close(grid.freq_x[index[:, 1]], freqs[:, 1])


def circular_conv(c_in: int, c_out: int, k: int, dtype: torch.dtype) -> nn.Module:
    torch.manual_seed(0)
    conv = nn.Conv2d(c_in, c_out, k, padding=k // 2, padding_mode="circular", bias=True)
    return nn.Sequential(conv, nn.ReLU()).to(dtype)  # the ReLU after the probe point must not matter


def dft_gain(kernel: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Centred |DFT| of (C_out, C_in, k, k) kernels zero-padded to H×W, for a grey input 1/√C_in."""
    c_out, c_in, k, _ = kernel.shape
    padded = torch.zeros(c_out, h, w, dtype=torch.float64)
    padded[:, :k, :k] = kernel.detach().double().sum(dim=1)
    power = torch.fft.fft2(padded).abs().square().sum(dim=0) / c_in
    return torch.fft.fftshift(power.sqrt())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("c_in, c_out, max_freq", [(1, 1, None), (3, 2, 3)])
def test_conv_gain_is_dft_of_kernel(dtype, c_in, c_out, max_freq, device):
    h, w = 12, 10
    net = circular_conv(c_in, c_out, 3, dtype).to(device)
    measure = TransferFunction([ProbePoint("0")], (h, w), max_freq=max_freq, basis_batch=7)
    measure.update(net, torch.randn(3, c_in, h, w, dtype=dtype, device=device))
    result = measure.compute()
    expected = dft_gain(net[0].weight, h, w)
    rows, cols = result.freq_y + h // 2, result.freq_x + w // 2
    torch.testing.assert_close(result.gain["0"], expected[rows][:, cols], atol=1e-5, rtol=0)
    assert result.count == 3


def test_transfer_function_ignores_bf16_autocast():
    net, x = circular_conv(2, 2, 3, torch.float32), torch.randn(2, 2, 8, 8)
    plain, cast = (TransferFunction([ProbePoint("0")], (8, 8), max_freq=2) for _ in range(2))
    plain.update(net, x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        cast.update(net, x)
    torch.testing.assert_close(cast.compute().gain["0"], plain.compute().gain["0"])


def test_transfer_function_through_vit_tokens(device):
    model = timm.create_model(
        "vit_tiny_patch16_224", pretrained=False, img_size=(16, 24), patch_size=8, depth=1, num_classes=3
    ).to(device)
    points = default_probe_points(model, (3, 16, 24))
    assert points[-1].prefix_tokens == 1
    measure = TransferFunction(points, (16, 24), max_freq=1)
    measure.update(model, torch.randn(1, 3, 16, 24, device=device))
    gain = measure.compute().gain[points[-1].name]
    assert gain.shape == (3, 3) and bool((gain > 0).all())
    torch.testing.assert_close(gain, gain.flip(0, 1))  # U(u, v) = U(-u, -v)


class LowPassClassifier(nn.Module):
    """An ideal low-pass filter in front of a linear classifier."""

    def __init__(self, cutoff: float, h: int, w: int) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.cutoff = cutoff
        self.fc = nn.Linear(3 * h * w, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(band_filter(x, self.cutoff).flatten(1))


def test_fourier_heat_map_is_zero_above_an_ideal_low_pass(device):
    h, w, cutoff = 12, 10, 0.45
    model = LowPassClassifier(cutoff, h, w).to(device)
    images, labels = torch.randn(16, 3, h, w, device=device), torch.randint(0, 4, (16,), device=device)
    measure = FourierSensitivity((h, w), eps=20.0)
    measure.update(model, images, labels)
    result = measure.compute()
    high = result.radius > cutoff
    assert result.flip_rate.shape == (h, w)
    assert float(result.flip_rate[high].abs().max()) == 0.0
    assert float(result.flip_rate[~high].max()) > 0.3  # the test can fail: low frequencies do flip
    clean_error = float((model(images).argmax(1) != labels).float().mean())
    assert result.clean_error == pytest.approx(clean_error)
    torch.testing.assert_close(result.error_rate[high], torch.full_like(result.error_rate[high], clean_error))


def test_fourier_sensitivity_is_batch_independent_and_mergeable():
    h, w = 8, 6
    model = LowPassClassifier(0.8, h, w)
    images = torch.randn(6, 3, h, w)
    whole = FourierSensitivity((h, w), eps=8.0, max_freq=2, batch_size=64)
    whole.update(model, images)
    a = FourierSensitivity((h, w), eps=8.0, max_freq=2, batch_size=5)
    b = FourierSensitivity((h, w), eps=8.0, max_freq=2, batch_size=5)
    a.update(model, images[4:], indices=[4, 5])
    b.update(model, images[:4], indices=range(4))
    a.merge(b)
    other_seed = FourierSensitivity((h, w), eps=8.0, max_freq=2, seed=1)
    other_seed.update(model, images)
    assert not torch.equal(other_seed.compute().flip_rate, whole.compute().flip_rate)  # signs matter
    torch.testing.assert_close(a.compute().flip_rate, whole.compute().flip_rate)
    restored = FourierSensitivity((h, w), eps=8.0, max_freq=2)
    restored.load_state_dict(whole.state_dict())
    torch.testing.assert_close(restored.compute().flip_rate, whole.compute().flip_rate)
    assert whole.compute().flip_rate.shape == (5, 5) and whole.compute().error_rate is None


def test_pixel_std_rescales_the_perturbation():
    h, w = 8, 8
    model = LowPassClassifier(1.5, h, w)
    images = torch.randn(4, 3, h, w)
    pixel = FourierSensitivity((h, w), eps=6.0, max_freq=1)
    pixel.update(model, images)
    scaled = FourierSensitivity((h, w), eps=3.0, max_freq=1, pixel_std=(0.5, 0.5, 0.5))
    scaled.update(model, images)
    torch.testing.assert_close(pixel.compute().flip_rate, scaled.compute().flip_rate)


class MeanSign(nn.Module):
    """Class 0 when the image mean is >= 0 (up to rounding), else class 1: only the DC component matters."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = x.mean(dim=(1, 2, 3))
        return torch.stack([m + 1e-4, -m], dim=1)


def test_band_limited_accuracy_of_a_dc_model(device):
    torch.manual_seed(0)
    images = (torch.randn(10, 3, 8, 8) + torch.linspace(-1, 1, 10)[:, None, None, None]).to(device)
    labels = (images.mean(dim=(1, 2, 3)) < 0).long()
    measure = BandLimitedAccuracy(cutoffs=(0.25, 0.5, 1.0))
    measure.update(MeanSign(), images[:3], labels[:3])
    measure.update(MeanSign(), images[3:], labels[3:])
    result = measure.compute()
    positive = float((labels == 0).float().mean())  # high-pass images have mean 0: predicted class 0
    torch.testing.assert_close(result.low_agreement, torch.ones(3, dtype=torch.float64))
    torch.testing.assert_close(result.high_agreement, torch.full((3,), positive, dtype=torch.float64))
    torch.testing.assert_close(result.high_accuracy, torch.full((3,), positive, dtype=torch.float64))
    assert result.clean_accuracy == 1.0 and 0.0 < positive < 1.0


def test_model_state_is_restored():
    model = nn.Sequential(circular_conv(3, 2, 3, torch.float32), nn.AdaptiveAvgPool2d(1), nn.Flatten()).train()
    model[0][0].bias.requires_grad_(False)
    FourierSensitivity((8, 8), max_freq=1).update(model, torch.randn(2, 3, 8, 8))
    TransferFunction([ProbePoint("0.0")], (8, 8), max_freq=1).update(model, torch.randn(2, 3, 8, 8))
    assert all(m.training for m in model.modules())
    assert model[0][0].weight.requires_grad and not model[0][0].bias.requires_grad
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_registered_and_validated():
    assert {"fourier-sensitivity", "transfer-function", "band-limited-accuracy"} <= set(MEASURES)
    assert FourierSensitivity.from_preset("yin2019_imagenet").settings()["eps"] == 15.7
    with pytest.raises(ValueError, match="images are"):
        FourierSensitivity((8, 8)).update(MeanSign(), torch.randn(1, 3, 8, 9))
    with pytest.raises(ValueError, match="labels"):
        FourierSensitivity((8, 8)).update(MeanSign(), torch.randn(2, 3, 8, 8), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="cutoffs"):
        BandLimitedAccuracy(cutoffs=(0.5, 0.25))
    with pytest.raises(ValueError, match="eps"):
        FourierSensitivity((8, 8), eps=0.0)
