"""The fused spectrum kernel against float64 FFTs, for every map size and stride it is chosen for."""
from __future__ import annotations

import pytest
import torch

from freqlens.measures.spectral_energy import EPS
from freqlens.ops import spectrum_dft

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

SHAPES = [  # (B, C, H, W, token view with one class token)
    (2, 5, 14, 14, True), (3, 7, 7, 7, False), (2, 9, 28, 20, False), (1, 4, 56, 56, False),
    (2, 6, 13, 9, True), (1, 2, 64, 40, True), (2, 3, 16, 16, False), (4, 8, 8, 8, False), (1, 3, 112, 112, True),
    (2, 5, 100, 128, True), (2, 3, 8, 128, False), (2, 3, 50, 120, False), (2, 6, 5, 9, True), (200, 3, 4, 4, False),
    (2, 3, 4, 16, False), (1, 3, 1, 100, False), (1, 3, 100, 1, True),
]


def _features(b, c, h, w, tokens, dtype=torch.bfloat16):
    g = torch.Generator().manual_seed(h * w + c)
    if tokens:  # (B, 1 + H·W, C) tokens viewed as (B, C, H, W), the lens's NLC layout
        x = torch.randn(b, 1 + h * w, c, generator=g)[:, 1:].reshape(b, h, w, c).permute(0, 3, 1, 2)
    else:
        x = torch.randn(b, c, h, w, generator=g) + torch.linspace(0, 3, w)  # a DC and a ramp, not only noise
    return x.to(dtype).cuda()


def _reference(x):
    """float64 sums over (B, C) of log(|rfft2| + eps) and |rfft2|²."""
    spectrum = torch.fft.rfft2(x.double())
    return torch.log(spectrum.abs() + EPS).sum((0, 1)), spectrum.abs().square().sum((0, 1))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32], ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s[:4])) + ("-tokens" if s[4] else ""))
def test_matches_float64_fft(shape, dtype):
    b, c, h, w, tokens = shape
    x = _features(*shape, dtype=dtype)
    with torch.autocast("cuda", dtype=torch.bfloat16):  # float32 maps take the kernel in autocast runs only
        assert spectrum_dft.supported(x)
    ref_log, ref_power = _reference(x)
    log, power = spectrum_dft.half_plane_sums(x, EPS)
    assert log.shape == power.shape == (h, w // 2 + 1)
    # split-precision products: every amplitude within ~1e-5 of the maps' norm (the documented accuracy),
    # so every power sum to 1e-3 relative
    amplitude_error = (power.sqrt() - ref_power.sqrt()).abs().max() / ref_power.sum().sqrt()
    assert float(amplitude_error) < 3e-5
    assert float(((power - ref_power).abs() / ref_power).max()) < 1e-3
    if max(h, w) <= 64:  # and the mean log amplitude to 1e-3 even at its smallest bins; a larger noise map
        # has bins so close to zero (~1e-4 of its norm) that their log is ill-conditioned at any precision
        assert float((log - ref_log).abs().max()) / (b * c) < 1e-3


def test_pure_sinusoid_keeps_its_bin():
    """A cosine at (ky, kx) = (3, 5) on a 14x14 map: all power in that bin (and its mirror), none elsewhere."""
    y, x = torch.meshgrid(torch.arange(14.0), torch.arange(14.0), indexing="ij")
    wave = torch.cos(2 * torch.pi * (3 * y + 5 * x) / 14).expand(4, 8, 14, 14).to(torch.bfloat16).cuda()
    _, power = spectrum_dft.half_plane_sums(wave, EPS)
    assert float(power[3, 5] / power.sum()) == pytest.approx(1.0, abs=1e-4)


def test_other_inputs_take_the_fft_path():
    assert not spectrum_dft.supported(torch.zeros(1, 1, 8, 8, device="cuda"))  # float32 outside autocast
    assert not spectrum_dft.supported(torch.zeros(1, 1, 8, 256, device="cuda", dtype=torch.bfloat16))
    assert not spectrum_dft.supported(torch.zeros(1, 1, 8, 8, dtype=torch.bfloat16))  # CPU
    assert not spectrum_dft.supported(torch.zeros(1, 1, 160, 160, device="cuda", dtype=torch.bfloat16))
    assert not spectrum_dft.supported(torch.zeros(1, 1, 128, 128, device="cuda", dtype=torch.bfloat16))  # tile


def test_maps_beyond_32_bit_offsets_take_cufft():
    big = torch.empty(2**31 // (64 * 56 * 56) + 1, 64, 56, 56, device="cuda", dtype=torch.bfloat16)
    assert not spectrum_dft.supported(big) and not spectrum_dft.supported(big[:1])  # a view keeps its storage
    assert spectrum_dft.supported(big[:1].clone())


def test_batches_of_both_dtypes_share_one_buffer():
    """A probe point's maps may arrive as float32 (an autocast residual stream) in one batch and bfloat16 in
    another: both add into the buffer the first batch made, though each dtype's own launch has more or
    fewer programs."""
    x32 = _features(2, 64, 56, 56, False, dtype=torch.float32)
    x16 = _features(8, 64, 56, 56, False)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        partial = spectrum_dft.partial_buffer(x32)
        _, steps_per_image, _ = spectrum_dft._launch(64, 56, 56, False, x16.device)
        assert 8 * steps_per_image > partial.shape[0]  # the bf16 batch has work for more programs than slices
        spectrum_dft.accumulate(x32, partial, EPS)
        spectrum_dft.accumulate(x16, partial, EPS)
    log, power = spectrum_dft.fold(partial, 56, 56)
    (log32, power32), (log16, power16) = _reference(x32), _reference(x16)
    ref_log, ref_power = log32 + log16, power32 + power16
    assert float(((power - ref_power).abs() / ref_power).max()) < 1e-3
    assert float((log - ref_log).abs().max()) / (10 * 64) < 1e-3
