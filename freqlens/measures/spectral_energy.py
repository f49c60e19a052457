"""Spectral energy per layer: the mean log-amplitude spectrum of each probe point's feature maps.

Reference: Park & Kim, "How Do Vision Transformers Work?" (ICLR 2022), repo ``xxxnell/how-do-vits-work``,
``fourier_analysis.ipynb``; SPANetV2's ``Fourier_analysis.ipynb`` applies the same recipe.

For features x of shape (B, C, H, W), per image and channel, F = log(|fft2(x)| + 1e-6); the state is the
sum of F over images and channels (and of |fft2(x)|² for the power-based outputs) with its count. The
mean map is shifted so the zero frequency sits at (H//2, W//2). The preset ``parkkim2022`` summarises it
as the half-diagonal ``diag(F)[H//2:]`` relative to its first (DC) element: the "relative log amplitude"
curve, whose last point (the highest diagonal frequency) is the layer's "Δ log amplitude".

The map of a real signal is Hermitian-symmetric, so only the half plane of ``rfft2`` is accumulated and the
full map is rebuilt at ``compute`` time: half the FFT work and memory, same numbers. Reduced-precision
CUDA maps take the fused kernel of :mod:`freqlens.ops.spectrum_dft` instead of cuFFT.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Mapping

import torch

from freqlens.measures.base import Measure, register_measure
from freqlens.measures.fourier import normalised_radius
from freqlens.ops import spectrum_dft

EPS = 1e-6  # inside the log, as in the reference notebook
FFT_CHUNK_ELEMS = 1 << 24  # input elements per float32 FFT chunk: bounds the extra memory
FOLD_EVERY = 32  # batches the fused kernel sums in float32 on the device before they join the float64 state
# recorded with every result: which DFT serves which maps, and how close each comes
_SIDE = spectrum_dft.MAX_SIDE
DFT_BACKENDS = ("torch.fft float32, ~1e-7 of the map's norm (float64 for float64 maps); reduced-precision CUDA "
                f"maps up to {_SIDE} a side but {_SIDE}x{_SIDE}: fused split-bfloat16 DFT, ~1e-5 of the map's norm")


def spectrum_sums(spec: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sums over the first two dims of log(|F| + EPS) and |F|² of a complex (B, C, H, W') spectrum.

    Three passes over the spectrum's size (amplitude, in-place log, sum) and one reduction for the
    power; the sums accumulate in float64.
    """
    amp = spec.abs()
    power = torch.linalg.vector_norm(amp, dim=(0, 1), dtype=torch.float64).square()
    return amp.add_(EPS).log_().sum((0, 1), dtype=torch.float64), power


def accumulate_half_plane(x: torch.Tensor, logamp: torch.Tensor, power: torch.Tensor) -> None:
    """Add the batch-and-channel sums of log(|rfft2(x)| + EPS) and |rfft2(x)|² to (H, W//2+1) accumulators.

    The FFT runs in float32 (float64 for float64 input) over channel chunks of at most ``FFT_CHUNK_ELEMS``
    input elements, so the extra memory stays bounded whatever the feature-map size.
    """
    b, c, h, w = x.shape
    compute_dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    step = max(1, FFT_CHUNK_ELEMS // max(1, b * h * w))
    for start in range(0, c, step):
        chunk_logamp, chunk_power = spectrum_sums(torch.fft.rfft2(x[:, start : start + step].to(compute_dtype)))
        logamp += chunk_logamp
        power += chunk_power


def full_plane(half: torch.Tensor, width: int) -> torch.Tensor:
    """Rebuild the (H, W) map of a Hermitian-symmetric spectrum from its rfft half (H, W//2+1).

    >>> x = torch.randn(5, 6, dtype=torch.float64)
    >>> bool(torch.allclose(full_plane(torch.fft.rfft2(x).abs(), 6), torch.fft.fft2(x).abs()))
    True
    """
    h = half.shape[0]
    cols = torch.arange(width, device=half.device)
    mirrored = cols > width // 2
    src_col = torch.where(mirrored, (width - cols) % width, cols)
    rows = torch.arange(h, device=half.device)[:, None]
    src_row = torch.where(mirrored[None, :], (-rows) % h, rows.expand(h, width))
    return half[src_row, src_col.expand(h, width)]


@dataclasses.dataclass
class _Pending:
    """A probe point's fused-kernel partial sums not yet folded into the float64 state."""

    partial: torch.Tensor
    maps: int = 0
    batches: int = 0


@dataclasses.dataclass
class PointSpectrum:
    """The spectrum of one probe point, all maps centred (zero frequency at (H//2, W//2))."""

    name: str
    shape: tuple[int, int]
    count: int  # images x channels averaged
    log_amplitude: torch.Tensor  # (H, W) mean log-amplitude map
    power: torch.Tensor  # (H, W) mean power map
    diag_freq: torch.Tensor  # (K,) diagonal frequencies k, in units of pi: 2k/H
    relative_log_amplitude: torch.Tensor  # (K,) half-diagonal minus its DC element (parkkim2022)
    delta_log_amplitude: float  # last element of relative_log_amplitude
    radial_edges: torch.Tensor  # (bins+1,) normalised radius
    radial_power: torch.Tensor  # (bins,) mean power per annulus (nan where the grid has no frequency)
    hf_fraction: float  # power at r > hf_cutoff over power at r > 0 (DC excluded)
    profile_y: torch.Tensor  # (H,) mean log-amplitude over columns
    profile_x: torch.Tensor  # (W,) mean log-amplitude over rows


@dataclasses.dataclass
class SpectrumResult:
    """Per-probe-point spectra in forward order, plus the settings that made them."""

    points: list[PointSpectrum]
    settings: dict

    def __getitem__(self, name: str) -> PointSpectrum:
        for point in self.points:
            if point.name == name:
                return point
        raise KeyError(f"no probe point {name!r}; have {[p.name for p in self.points]}")

    def normalized_depth(self) -> list[float]:
        """Depth of each point in [0, 1] by forward order, the x axis of the Δ log amplitude plot."""
        n = len(self.points)
        return [i / (n - 1) if n > 1 else 0.0 for i in range(n)]


@register_measure
class SpectralEnergy(Measure):
    """Mean log-amplitude spectrum of each probe point's features (see the module docstring).

    ``update(features)`` takes ``{probe name: (B, C, H, W) tensor}``; ``compute()`` returns a
    :class:`SpectrumResult`. Per-point states: ``logamp_sum`` and ``power_sum``, (H, W) float64 of which
    the rfft half plane [:, :W//2+1] holds the sums (the shape keeps W), and ``count`` (images x channels).

    Args:
        preset: the protocol this run follows (recorded in the provenance).
        radial_bins: number of equal-width annuli of normalised radius over [0, √2].
        hf_cutoff: normalised radius above which power counts as high frequency.
    """

    name = "spectrum"
    presets = {"parkkim2022": {"radial_bins": 16, "hf_cutoff": 0.5}}

    def __init__(self, preset: str = "parkkim2022", radial_bins: int = 16, hf_cutoff: float = 0.5) -> None:
        super().__init__()
        self.check_preset(preset)
        if radial_bins < 1:
            raise ValueError(f"radial_bins must be >= 1, got {radial_bins}")
        if not 0.0 < hf_cutoff < math.sqrt(2):
            raise ValueError(f"hf_cutoff must lie in (0, sqrt(2)), got {hf_cutoff}")
        self.preset = preset
        self.radial_bins = radial_bins
        self.hf_cutoff = hf_cutoff
        self.add_state("logamp_sum", {}, "sum")
        self.add_state("power_sum", {}, "sum")
        self.add_state("count", {}, "sum")
        self._pending: dict[str, _Pending] = {}

    def settings(self) -> dict:
        return {"preset": self.preset, "radial_bins": self.radial_bins, "hf_cutoff": self.hf_cutoff, "eps": EPS,
                "dft": DFT_BACKENDS}

    @torch.no_grad()
    def update(self, features: Mapping[str, torch.Tensor]) -> None:
        for name, x in features.items():
            if x.dim() != 4:
                raise ValueError(f"{name}: expected (B, C, H, W) features, got shape {tuple(x.shape)}")
            b, c, h, w = x.shape
            if name not in self.logamp_sum:  # dicts keep first-seen order: the forward order, i.e. depth
                # (H, W) states of which the rfft half plane [:, :W//2+1] is used: the shape keeps W
                self.logamp_sum[name] = torch.zeros(h, w, dtype=torch.float64, device=x.device)
                self.power_sum[name] = torch.zeros(h, w, dtype=torch.float64, device=x.device)
                self.count[name] = torch.zeros((), dtype=torch.float64, device=x.device)
            elif self.logamp_sum[name].shape != (h, w):
                old_h, old_w = self.logamp_sum[name].shape
                raise ValueError(f"{name}: feature map size changed from {old_h}x{old_w} to {h}x{w}; "
                                 "use one input size per run")
            if spectrum_dft.supported(x):
                self._accumulate_fused(name, x.detach())
                continue
            half = slice(0, w // 2 + 1)
            accumulate_half_plane(x.detach(), self.logamp_sum[name][:, half], self.power_sum[name][:, half])
            self.count[name] += b * c

    def _accumulate_fused(self, name: str, x: torch.Tensor) -> None:
        """One kernel launch per map batch: per-program float32 partials, folded every FOLD_EVERY batches.

        Launching nothing else per batch matters: with a dozen probe points, a few small adds each cost
        more host time than the forward leaves free.
        """
        pending = self._pending.get(name)
        if pending is None:
            pending = self._pending[name] = _Pending(spectrum_dft.partial_buffer(x))
        spectrum_dft.accumulate(x, pending.partial, EPS)
        pending.maps += x.shape[0] * x.shape[1]
        pending.batches += 1
        if pending.batches >= FOLD_EVERY:
            self._fold(name)

    @torch.inference_mode()  # states made inside a lens run are inference tensors; compute may run outside
    def _fold(self, name: str) -> None:
        pending = self._pending[name]
        h, w = self.logamp_sum[name].shape
        logamp, power = spectrum_dft.fold(pending.partial, h, w)
        self.logamp_sum[name][:, : w // 2 + 1] += logamp
        self.power_sum[name][:, : w // 2 + 1] += power
        self.count[name] += pending.maps
        pending.partial.zero_()
        pending.maps = pending.batches = 0

    def settle(self) -> None:
        for name, pending in self._pending.items():
            if pending.batches:
                self._fold(name)
        self._pending.clear()  # the states may move device next; a later update makes new buffers

    def reset(self) -> None:
        self._pending.clear()
        super().reset()

    def compute(self) -> SpectrumResult:
        self.settle()
        if not self.count:
            raise ValueError("spectrum: no features seen yet; call update() first")
        return SpectrumResult([self._point(name) for name in self.count], self.settings())

    def _point(self, name: str) -> PointSpectrum:
        count = float(self.count[name])
        h, w = self.logamp_sum[name].shape
        logamp = torch.fft.fftshift(full_plane(self.logamp_sum[name][:, : w // 2 + 1].cpu() / count, w), dim=(-2, -1))
        power = torch.fft.fftshift(full_plane(self.power_sum[name][:, : w // 2 + 1].cpu() / count, w), dim=(-2, -1))
        k = min(h - h // 2, w - w // 2)
        ks = torch.arange(k)
        diag = logamp[h // 2 + ks, w // 2 + ks]
        relative = diag - diag[0]
        radius = normalised_radius(h, w)
        edges = torch.linspace(0.0, math.sqrt(2), self.radial_bins + 1, dtype=torch.float64)
        which = torch.bucketize(radius, edges[1:-1], right=True)
        sums = torch.zeros(self.radial_bins, dtype=torch.float64).index_add_(0, which.flatten(), power.flatten())
        counts = torch.bincount(which.flatten(), minlength=self.radial_bins).to(torch.float64)
        radial = torch.where(counts > 0, sums / counts.clamp_min(1), torch.full_like(sums, math.nan))
        ac = power[radius > 0].sum()
        hf = float(power[radius > self.hf_cutoff].sum() / ac) if ac > 0 else math.nan
        return PointSpectrum(
            name=name,
            shape=(h, w),
            count=int(count),
            log_amplitude=logamp,
            power=power,
            diag_freq=2.0 * ks.to(torch.float64) / h,
            relative_log_amplitude=relative,
            delta_log_amplitude=float(relative[-1]),
            radial_edges=edges,
            radial_power=radial,
            hf_fraction=hf,
            profile_y=logamp.mean(dim=1),
            profile_x=logamp.mean(dim=0),
        )

