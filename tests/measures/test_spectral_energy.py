"""Known answers of the spectrum measure (measures.md §1) and its streaming contract."""
from __future__ import annotations

import math

import pytest
import timm
import torch
from torch import nn

from freqlens.lens import Lens, ProbePoint, default_probe_points
from freqlens.measures.fourier import normalised_radius
from freqlens.measures.spectral_energy import SpectralEnergy


def _run(x: torch.Tensor, name: str = "x", batch: int | None = None) -> SpectralEnergy:
    measure = SpectralEnergy()
    for chunk in x.split(batch or x.shape[0]):
        measure.update({name: chunk})
    return measure


def _cosine(h: int, w: int, a: int, b: int, images: int = 2, channels: int = 3) -> torch.Tensor:
    i, j = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    wave = torch.cos(2 * math.pi * (a * i / h + b * j / w))
    return wave.expand(images, channels, h, w).clone()


@pytest.mark.parametrize(("a", "b"), [(1, 2), (5, 6), (3, 0)])
def test_pure_sinusoid_puts_all_power_in_one_bin(a, b):
    h = w = 16
    spec = _run(_cosine(h, w, a, b)).compute()["x"]
    radius = math.hypot(a / h, b / w) / 0.5
    peak_bin = int(torch.bucketize(torch.tensor(radius, dtype=torch.float64), spec.radial_edges[1:-1], right=True))
    power = torch.nan_to_num(spec.radial_power, nan=0.0)
    assert power[peak_bin] > 0
    assert float(power.sum() - power[peak_bin]) < 1e-9 * float(power[peak_bin])
    assert spec.hf_fraction == pytest.approx(1.0 if radius > 0.5 else 0.0, abs=1e-9)
    # the centred power map has its energy exactly at (±a, ±b)
    centre = (h // 2, w // 2)
    peaks = {(centre[0] + a, centre[1] + b), ((centre[0] - a) % h, (centre[1] - b) % w)}
    top = spec.power.flatten().topk(len(peaks)).indices
    assert {(int(i) // w, int(i) % w) for i in top} == peaks


def test_white_noise_spectrum_is_flat():
    torch.manual_seed(0)
    h = w = 12
    spec = _run(torch.randn(400, 8, h, w), batch=64).compute()["x"]
    ac = spec.power[normalised_radius(h, w) > 0]
    assert ac.mean() == pytest.approx(h * w, rel=0.02)  # E|X(k)|² = H·W·σ²
    assert float(ac.std() / ac.mean()) < 0.05
    radius = normalised_radius(h, w)
    share_of_frequencies = float((radius > 0.5).sum() / (radius > 0).sum())
    assert spec.hf_fraction == pytest.approx(share_of_frequencies, abs=0.01)


class _Identities(nn.Module):
    def __init__(self, n: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(*[nn.Identity() for _ in range(n)])

    def forward(self, x):
        return self.layers(x)


def test_identity_model_gives_the_same_curve_at_every_point():
    model = _Identities(4)
    points = [ProbePoint(f"layers.{i}") for i in range(4)]
    measure = SpectralEnergy()
    with Lens(model, points, lambda p, f: measure.update({p.name: f})) as lens:
        lens.model(torch.randn(3, 3, 14, 14))
    result = measure.compute()
    first = result.points[0]
    for other in result.points[1:]:
        assert torch.equal(other.relative_log_amplitude, first.relative_log_amplitude)
        assert torch.equal(other.log_amplitude, first.log_amplitude)
    assert result.normalized_depth() == [0.0, 1 / 3, 2 / 3, 1.0]


def test_box_blur_scales_power_by_its_transfer_function():
    h = w = 16
    blur = nn.Conv2d(1, 1, 3, padding=1, padding_mode="circular", bias=False)
    nn.init.constant_(blur.weight, 1 / 9)
    model = nn.Sequential(nn.Identity(), blur)
    measure = SpectralEnergy()
    with Lens(model, [ProbePoint("0"), ProbePoint("1")], lambda p, f: measure.update({p.name: f})) as lens:
        lens.model(torch.randn(20, 1, h, w, generator=torch.Generator().manual_seed(1)))
    result = measure.compute()
    fy = torch.fft.fftshift(torch.fft.fftfreq(h, dtype=torch.float64))
    fx = torch.fft.fftshift(torch.fft.fftfreq(w, dtype=torch.float64))
    transfer = ((1 + 2 * torch.cos(2 * math.pi * fy))[:, None] * (1 + 2 * torch.cos(2 * math.pi * fx))[None, :] / 9) ** 2
    p_in, p_out = result["0"].power, result["1"].power
    assert torch.allclose(p_out, transfer * p_in, rtol=1e-4, atol=1e-6 * float(p_in.max()))
    radius = normalised_radius(h, w)
    expected = float((transfer * p_in)[radius > 0.5].sum() / (transfer * p_in)[radius > 0].sum())
    assert result["1"].hf_fraction == pytest.approx(expected, rel=1e-4)
    assert result["1"].hf_fraction < 0.3 * result["0"].hf_fraction  # the blur really removes high frequencies


def _features(n: int = 13) -> torch.Tensor:
    return torch.randn(n, 5, 10, 14, generator=torch.Generator().manual_seed(3))


def _assert_same_result(a: SpectralEnergy, b: SpectralEnergy) -> None:
    ra, rb = a.compute(), b.compute()
    for pa, pb in zip(ra.points, rb.points, strict=True):
        assert torch.allclose(pa.log_amplitude, pb.log_amplitude, rtol=0, atol=1e-12)
        assert torch.allclose(pa.power, pb.power, rtol=1e-12)
        assert pa.hf_fraction == pytest.approx(pb.hf_fraction, rel=1e-12)
        assert pa.count == pb.count


@pytest.mark.parametrize("batch", [1, 7])
def test_result_does_not_depend_on_batch_size_or_order(batch):
    x = _features()
    _assert_same_result(_run(x), _run(x, batch=batch))
    _assert_same_result(_run(x), _run(x.flip(0), batch=batch))


def test_merge_of_two_halves_equals_one_pass_and_state_round_trips():
    x = _features()
    first, second = _run(x[:6]), _run(x[6:])
    _assert_same_result(_run(x), first.merge(second))
    restored = SpectralEnergy()
    restored.load_state_dict(first.state_dict())
    _assert_same_result(first, restored)
    restored.reset()
    with pytest.raises(ValueError, match="no features"):
        restored.compute()


def test_merge_refuses_other_settings_and_size_changes():
    with pytest.raises(ValueError, match="cannot merge"):
        SpectralEnergy().merge(SpectralEnergy(radial_bins=8))
    measure = _run(_features())
    with pytest.raises(ValueError, match="size changed"):
        measure.update({"x": torch.randn(1, 5, 10, 15)})


def test_odd_and_non_square_maps():
    spec = _run(torch.randn(4, 2, 7, 9)).compute()["x"]
    assert spec.log_amplitude.shape == (7, 9) and spec.shape == (7, 9)
    assert spec.relative_log_amplitude.shape == (4,)
    # the curve runs from the centred DC bin (3, 4) down the diagonal, relative to that bin
    diagonal = torch.diagonal(spec.log_amplitude[3:, 4:])[:4]
    torch.testing.assert_close(spec.relative_log_amplitude, diagonal - spec.log_amplitude[3, 4])
    assert spec.profile_y.shape == (7,) and spec.profile_x.shape == (9,)
    # half-plane accumulation rebuilds exactly the full FFT's mean log amplitude
    x = torch.randn(3, 2, 7, 9)
    full = torch.log(torch.fft.fft2(x).abs() + 1e-6).mean((0, 1)).double()
    full = torch.roll(full, (3, 4), (0, 1))
    assert torch.allclose(_run(x).compute()["x"].log_amplitude, full, atol=1e-5)


def test_class_token_is_dropped_and_non_square_token_grid_used():
    vit = timm.create_model("vit_tiny_patch16_224", img_size=(32, 48), depth=2, num_classes=2).eval()
    points = default_probe_points(vit, (3, 32, 48))
    measure = SpectralEnergy()
    captured = {}

    def capture(module, inputs, output):
        captured["blocks.1"] = output[:, 1:].transpose(1, 2).reshape(output.shape[0], -1, 2, 3)

    handle = vit.blocks[1].register_forward_hook(capture)
    x = torch.randn(3, 3, 32, 48)
    with Lens(vit, points, lambda p, f: measure.update({p.name: f})) as lens, torch.no_grad():
        lens.model(x)
    handle.remove()
    ours = measure.compute()["blocks.1"]
    assert ours.shape == (2, 3)
    assert torch.allclose(ours.log_amplitude, _run(captured["blocks.1"]).compute()["x"].log_amplitude)


def _reference_parkkim(latents: list[torch.Tensor]) -> list[torch.Tensor]:
    """Steps 1-7 of measures.md §1 written out plainly, as the notebook does."""
    curves = []
    for latent in latents:  # (B, N, C) with a class token
        b, n, c = latent.shape
        side = int(math.sqrt(n - 1))
        fmap = latent[:, 1:].transpose(1, 2).reshape(b, c, side, side)
        f = torch.log(torch.abs(torch.fft.fft2(fmap.float())) + 1e-6)
        f = torch.roll(f, shifts=(side // 2, side // 2), dims=(2, 3))
        f = f.mean(dim=(0, 1))
        diag = torch.diag(f)[side // 2:]
        curves.append(diag - diag[0])
    return curves


def test_reproduces_the_reference_recipe_on_a_timm_deit():
    torch.manual_seed(0)
    deit = timm.create_model("deit_tiny_patch16_224", num_classes=10).eval()
    x = torch.randn(4, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    latents = []
    handles = [blk.register_forward_hook(lambda m, i, o: latents.append(o.detach())) for blk in deit.blocks]
    with torch.no_grad():
        deit(x)
    for h in handles:
        h.remove()
    expected = _reference_parkkim(latents)
    measure = SpectralEnergy()
    points = default_probe_points(deit, (3, 224, 224))
    with Lens(deit, points, lambda p, f: measure.update({p.name: f})) as lens, torch.no_grad():
        lens.model(x[:3])
        lens.model(x[3:])
    result = measure.compute()
    assert [p.name for p in result.points] == [f"blocks.{i}" for i in range(12)]
    for ours, ref in zip(result.points, expected, strict=True):
        assert ours.relative_log_amplitude.shape == (7,)
        assert torch.allclose(ours.relative_log_amplitude, ref.double(), atol=1e-6, rtol=0)
        assert ours.delta_log_amplitude == pytest.approx(float(ref[-1]), abs=1e-6)
        assert ours.diag_freq[-1] == pytest.approx(6 / 7)  # 6·2π/14 = 0.857π, not π


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu_and_bf16_autocast_runs():
    from freqlens import api

    images = api.sample_images_dir()
    cpu = api.spectrum("deit_tiny_patch16_224", images, device="cpu", progress=False)
    gpu = api.spectrum("deit_tiny_patch16_224", images, device="cuda", progress=False)
    bf16 = api.spectrum("deit_tiny_patch16_224", images, device="cuda", dtype="bfloat16", progress=False)
    for a, b, c in zip(cpu.result.points, gpu.result.points, bf16.result.points, strict=True):
        fp32_err = float((a.relative_log_amplitude - b.relative_log_amplitude).abs().max())
        bf16_err = float((a.relative_log_amplitude - c.relative_log_amplitude).abs().max())
        assert fp32_err < 1e-3, f"{a.name}: CUDA float32 differs from CPU by {fp32_err:.2e}"
        assert bf16_err < 0.1, f"{a.name}: bf16 autocast differs from float32 by {bf16_err:.2e}"
    assert bf16.provenance["environment"]["dtype"] == "bfloat16"


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_fused_kernel_path_streams_folds_and_merges_like_one_float64_pass(monkeypatch):
    from freqlens.measures import spectral_energy

    monkeypatch.setattr(spectral_energy, "FOLD_EVERY", 3)  # ten batches of two: three folds and a remainder
    g = torch.Generator().manual_seed(3)
    x = (torch.randn(20, 6, 14, 14, generator=g) + torch.linspace(0, 2, 14)).to(torch.bfloat16).cuda()
    reference = _run(x.double().cpu()).compute()["x"]
    streamed = _run(x, batch=2)
    halves = _run(x[:10], batch=2).merge(_run(x[10:], batch=3))
    restored = SpectralEnergy()
    restored.load_state_dict(_run(x[:7], batch=2).state_dict())
    restored.update({"x": x[7:]})
    for measure in (streamed, halves, restored):
        ours = measure.compute()["x"]
        assert ours.count == reference.count == 20 * 6
        assert torch.allclose(ours.log_amplitude, reference.log_amplitude, atol=1e-4, rtol=0)
        assert torch.allclose(ours.power, reference.power, rtol=1e-4, atol=0)
