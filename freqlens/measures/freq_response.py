"""Frequency response: how predictions and features react to single Fourier components of the input.

Three measures share one Fourier grid (zero frequency at (H//2, W//2), as after ``fftshift``):

- :class:`FourierSensitivity` (Yin et al., "A Fourier Perspective on Model Robustness in Computer
  Vision", NeurIPS 2019; repo ``google-research/google-research``, ``frequency_analysis/freq_heatmap.py``):
  add ε·r·U_{u,v} to every image, U the real Fourier basis image of unit ℓ2 norm supported at ±(u, v)
  and r = ±1 per channel, and count prediction flips (and errors, given labels) per frequency.
- :class:`TransferFunction`: the gain ‖J·U_{u,v}‖ / ‖U_{u,v}‖ of each probe point's linearisation at the
  input, by forward-mode JVPs batched over bases with ``torch.func.vmap``. For one circular convolution
  it is |DFT of the kernel|.
- :class:`BandLimitedAccuracy`: accuracy (and agreement with the clean prediction) on ideally low-pass
  and high-pass filtered inputs, over a sweep of cut-off radii.

U_{u,v} and U_{-u,-v} are the same image, so each symmetric pair is evaluated once and written to both
places of the map: half the forward passes of the reference, which evaluates the pair twice.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Literal, Sequence

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from freqlens.lens.lens import Lens, preserved_state
from freqlens.lens.probes import ProbePoint
from freqlens.measures.base import Measure, register_measure
from freqlens.measures.fourier import normalised_radius


# -- pure functions --------------------------------------------------------------------------------
def fourier_basis(size: tuple[int, int], freqs: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Real Fourier basis images of unit ℓ2 norm, one per integer frequency (u, v) in ``freqs`` (K, 2).

    U(m, n) = (cos θ − sin θ) / √(HW), θ = 2π(u·m/H + v·n/W): the reference's
    ``sqrt(HW) * real(ifft2(ifftshift(F)))`` with F = ½(1+i) at (u, v) and its conjugate at (−u, −v)
    (F = 1 where the two coincide, which the same formula gives since sin θ = 0 there).

    >>> u = fourier_basis((6, 5), torch.tensor([[1, 2], [3, 0]]), torch.float64)
    >>> [round(float(n), 6) for n in u.flatten(1).norm(dim=1)]
    [1.0, 1.0]
    >>> spectrum = torch.fft.fft2(u[0]).abs() > 1e-9
    >>> sorted(map(tuple, spectrum.nonzero().tolist()))
    [(1, 2), (5, 3)]
    """
    h, w = size
    freqs = freqs.to(torch.float64)
    m = torch.arange(h, dtype=torch.float64, device=freqs.device)
    n = torch.arange(w, dtype=torch.float64, device=freqs.device)
    theta = 2 * math.pi * (freqs[:, 0, None, None] * m[:, None] / h + freqs[:, 1, None, None] * n / w)
    return ((torch.cos(theta) - torch.sin(theta)) / math.sqrt(h * w)).to(dtype)


def band_filter(images: torch.Tensor, cutoff: float, keep: Literal["low", "high"] = "low") -> torch.Tensor:
    """Keep the Fourier components of each channel at normalised radius ≤ ``cutoff`` (``low``) or
    above it (``high``): an ideal, zero-phase filter; ``low + high`` gives back the images.

    >>> x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    >>> bool(torch.allclose(band_filter(x, 0.4) + band_filter(x, 0.4, "high"), x))
    True
    """
    if keep not in ("low", "high"):
        raise ValueError(f"keep must be 'low' or 'high', got {keep!r}")
    return _keep_band(images, *_spectrum(images), cutoff, keep)


def _spectrum(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The images' 2-D FFT (float32, float64 for float64) and each bin's normalised radius, uncentred:
    computed once per batch for every cut-off and band."""
    work = torch.float64 if images.dtype == torch.float64 else torch.float32
    radius = normalised_radius(*images.shape[-2:], centred=False, device=images.device)
    return torch.fft.fft2(images.to(work)), radius


def _keep_band(images: torch.Tensor, spectrum: torch.Tensor, radius: torch.Tensor, cutoff: float, keep: str) -> torch.Tensor:
    mask = radius <= cutoff if keep == "low" else radius > cutoff
    return torch.fft.ifft2(spectrum * mask).real.to(images.dtype)


@dataclasses.dataclass(frozen=True)
class FourierGrid:
    """The centred frequencies |u|, |v| ≤ ``max_freq`` of an (H, W) image, one basis per symmetric pair.

    Maps on this grid are (len(freq_y), len(freq_x)), a centred crop of the full (H, W) map.
    """

    size: tuple[int, int]
    max_freq: int | None = None

    def __post_init__(self) -> None:
        if len(self.size) != 2 or min(self.size) < 1:
            raise ValueError(f"image size must be (H, W) with H, W >= 1, got {self.size}")
        if self.max_freq is not None and self.max_freq < 0:
            raise ValueError(f"max_freq must be >= 0 or None, got {self.max_freq}")

    @property
    def freq_y(self) -> torch.Tensor:
        """Integer frequency (cycles per image height) of each map row."""
        return self._axis(self.size[0])

    @property
    def freq_x(self) -> torch.Tensor:
        """Integer frequency (cycles per image width) of each map column."""
        return self._axis(self.size[1])

    def _axis(self, n: int) -> torch.Tensor:
        f = torch.arange(n) - n // 2
        return f if self.max_freq is None else f[f.abs() <= self.max_freq]

    def pairs(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(freqs (K, 2), map index (K, 2), partner map index (K, 2)): one entry per symmetric pair."""
        fy, fx = self.freq_y, self.freq_x
        grid = torch.stack(torch.meshgrid(fy, fx, indexing="ij"), dim=-1).reshape(-1, 2)
        h, w = self.size
        partner = torch.stack([_negate(grid[:, 0], h), _negate(grid[:, 1], w)], dim=1)
        key = grid[:, 0] * (w + 1) + grid[:, 1]
        partner_key = partner[:, 0] * (w + 1) + partner[:, 1]
        keep = key <= partner_key
        offset = torch.tensor([-int(fy[0]), -int(fx[0])])  # frequency -> row/column of the map
        return grid[keep], grid[keep] + offset, partner[keep] + offset

    def radius(self) -> torch.Tensor:
        """Normalised radius (see :func:`normalised_radius`) of each map entry."""
        h, w = self.size
        return normalised_radius(h, w)[self.freq_y[:, None] + h // 2, self.freq_x[None, :] + w // 2]

    def scatter(self, index: torch.Tensor, partner: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """A map with ``values`` (K,) at both places of each pair (a self-symmetric one is written once)."""
        out = torch.zeros(len(self.freq_y), len(self.freq_x), dtype=torch.float64, device=values.device)
        out[index[:, 0], index[:, 1]] = values.to(torch.float64)
        out[partner[:, 0], partner[:, 1]] = values.to(torch.float64)
        return out


def _negate(f: torch.Tensor, n: int) -> torch.Tensor:
    """−f as an integer frequency of the centred axis of length n (the Nyquist row of even n maps to itself)."""
    return (-f + n // 2) % n - n // 2


def _chunks(total: int, per_chunk: int) -> list[slice]:
    return [slice(i, min(i + per_chunk, total)) for i in range(0, total, max(1, per_chunk))]


def _check_images(name: str, images: torch.Tensor, size: tuple[int, int] | None = None) -> None:
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or not images.is_floating_point():
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"{name}: expected a floating-point (B, C, H, W) image batch, got {shape}")
    if size is not None and tuple(images.shape[-2:]) != tuple(size):
        raise ValueError(f"{name}: images are {tuple(images.shape[-2:])}, the measure was set up for {tuple(size)}")


def _check_labels(name: str, labels: torch.Tensor | None, batch: int) -> None:
    if labels is not None and (labels.dim() != 1 or labels.shape[0] != batch):
        raise ValueError(f"{name}: expected {batch} labels (B,), got shape {tuple(labels.shape)}")


def _predict(model: nn.Module, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    return torch.cat([model(x[s]).argmax(dim=-1) for s in _chunks(x.shape[0], batch_size)])


# -- measures --------------------------------------------------------------------------------------
@dataclasses.dataclass
class FourierHeatMap:
    """Fourier heat maps on a centred grid (rows ``freq_y``, columns ``freq_x``, integer frequencies)."""

    flip_rate: torch.Tensor  # (h, w) float64: fraction of images whose prediction changed
    error_rate: torch.Tensor | None  # (h, w) float64: fraction misclassified (None without labels)
    clean_error: float | None
    freq_y: torch.Tensor
    freq_x: torch.Tensor
    radius: torch.Tensor  # (h, w) normalised radius, for radial profiles
    count: int
    settings: dict


@register_measure
class FourierSensitivity(Measure):
    """Fourier heat map of prediction flips and errors (Yin et al. 2019; see the module docstring).

    For each frequency (u, v) of the grid and each image x: x' = x + ε·r_c·U_{u,v} / s_c per channel c
    (s = ``pixel_std``, so ε is measured in pixel units before normalisation; no clipping, the
    reference's default). ``update(model, images, labels=None, indices=None)``; ``compute()`` returns
    a :class:`FourierHeatMap`. States: ``flip_sum``/``error_sum`` (h, w) float64 counts, ``count``,
    ``labelled`` and ``clean_error_sum``.

    The signs r are drawn per image, frequency and channel, as in the reference, from a generator seeded
    by ``seed`` and the image's dataset index (``indices``; by default the running image count), so results
    do not depend on batch size or order. Partial runs to be merged must pass the dataset indices.

    Args:
        image_size: (H, W) of the images.
        eps: ℓ2 norm of the perturbation per channel.
        max_freq: only frequencies |u|, |v| ≤ max_freq (``None``: the full H×W grid).
        pixel_std: per-channel std of the input normalisation (``None``: images are in pixel units).
        seed: seed of the signs r.
        batch_size: most images per forward pass (speed only; not part of the result).
    """

    name = "fourier-sensitivity"
    presets = {
        "yin2019_cifar10": {"image_size": (32, 32), "eps": 4.0},
        "yin2019_imagenet": {"image_size": (224, 224), "eps": 15.7},
    }

    def __init__(
        self,
        image_size: tuple[int, int],
        eps: float = 4.0,
        max_freq: int | None = None,
        pixel_std: Sequence[float] | None = None,
        seed: int = 0,
        batch_size: int = 256,
    ) -> None:
        super().__init__()
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        if pixel_std is not None and not all(s > 0 for s in pixel_std):
            raise ValueError(f"pixel_std must be positive, got {pixel_std}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.grid = FourierGrid(tuple(image_size), max_freq)
        self.eps = float(eps)
        self.pixel_std = tuple(float(s) for s in pixel_std) if pixel_std is not None else None
        self.seed = seed
        self.batch_size = batch_size
        shape = (len(self.grid.freq_y), len(self.grid.freq_x))
        self.add_state("flip_sum", torch.zeros(shape, dtype=torch.float64))
        self.add_state("error_sum", torch.zeros(shape, dtype=torch.float64))
        self.add_state("count", torch.zeros((), dtype=torch.float64))
        self.add_state("labelled", torch.zeros((), dtype=torch.float64))
        self.add_state("clean_error_sum", torch.zeros((), dtype=torch.float64))

    def settings(self) -> dict:
        return {
            "image_size": list(self.grid.size),
            "eps": self.eps,
            "max_freq": self.grid.max_freq,
            "pixel_std": list(self.pixel_std) if self.pixel_std else None,
            "seed": self.seed,
        }

    @torch.no_grad()
    def update(
        self,
        model: nn.Module,
        images: torch.Tensor,
        labels: torch.Tensor | None = None,
        indices: Sequence[int] | None = None,
    ) -> None:
        _check_images(self.name, images, self.grid.size)
        b, c = images.shape[:2]
        _check_labels(self.name, labels, b)
        if self.pixel_std is not None and len(self.pixel_std) != c:
            raise ValueError(f"{self.name}: pixel_std has {len(self.pixel_std)} values for {c} channels")
        if indices is None:
            indices = range(int(self.count), int(self.count) + b)
        if len(indices) != b:
            raise ValueError(f"{self.name}: {len(indices)} indices for {b} images")
        freqs, index, partner = (t.to(images.device) for t in self.grid.pairs())
        signs = torch.stack([self._signs(int(i), len(freqs), c) for i in indices], dim=1)  # (K, B, C)
        signs = signs.to(images.device, torch.float64)
        scale = torch.full((c,), self.eps, dtype=torch.float64, device=images.device)
        if self.pixel_std is not None:
            scale = scale / torch.tensor(self.pixel_std, dtype=torch.float64, device=images.device)
        flips = torch.zeros(len(freqs), dtype=torch.float64, device=images.device)
        errors = torch.zeros_like(flips)
        with preserved_state(model):
            model.eval()
            clean = _predict(model, images, self.batch_size)
            for s in _chunks(len(freqs), self.batch_size // b):
                basis = fourier_basis(self.grid.size, freqs[s], torch.float64)  # (k, H, W)
                delta = (signs[s] * scale)[..., None, None] * basis[:, None, None]  # (k, B, C, H, W)
                x = (images[None] + delta.to(images.dtype)).flatten(0, 1)  # (k*B, C, H, W)
                pred = _predict(model, x, self.batch_size).view(-1, b)
                flips[s] = (pred != clean).sum(dim=1).to(torch.float64)
                if labels is not None:
                    errors[s] = (pred != labels.to(pred.device)).sum(dim=1).to(torch.float64)
        self.flip_sum += self.grid.scatter(index, partner, flips).to(self.flip_sum.device)
        self.count += b
        if labels is not None:
            self.error_sum += self.grid.scatter(index, partner, errors).to(self.error_sum.device)
            self.labelled += b
            self.clean_error_sum += float((clean != labels.to(clean.device)).sum())

    def _signs(self, image_index: int, k: int, channels: int) -> torch.Tensor:
        """(K, C) signs ±1 of one image, the same for a dataset index whatever the batching."""
        # The CPU generator keeps 32 bits of its seed, so fold seed and index into 32 bits.
        generator = torch.Generator().manual_seed((self.seed * 1_000_003 + image_index) % 2**32)
        return torch.randint(0, 2, (k, channels), generator=generator) * 2 - 1

    def compute(self) -> FourierHeatMap:
        if self.count == 0:
            raise ValueError(f"{self.name}: no images seen yet; call update() first")
        labelled = float(self.labelled)
        return FourierHeatMap(
            flip_rate=self.flip_sum.cpu() / float(self.count),
            error_rate=self.error_sum.cpu() / labelled if labelled else None,
            clean_error=float(self.clean_error_sum) / labelled if labelled else None,
            freq_y=self.grid.freq_y,
            freq_x=self.grid.freq_x,
            radius=self.grid.radius(),
            count=int(self.count),
            settings=self.settings(),
        )


@dataclasses.dataclass
class TransferMaps:
    """Mean gain of each probe point's linearisation per input frequency, on a centred grid."""

    gain: dict[str, torch.Tensor]  # probe name -> (h, w) float64, in forward order
    freq_y: torch.Tensor
    freq_x: torch.Tensor
    radius: torch.Tensor
    count: int
    settings: dict


@register_measure
class TransferFunction(Measure):
    """Gain ‖J·U_{u,v}‖ / ‖U_{u,v}‖ of each probe point at each input frequency, averaged over images.

    J is the Jacobian of the probe point's output (NCHW, prefix tokens dropped) with respect to the
    input image at each image; U_{u,v} (unit norm) is put on every channel, scaled by 1/√C so the
    perturbation has unit norm. Computed with ``torch.func.jvp`` under ``torch.func.vmap`` over bases.
    Known answer: a single circular convolution's gain is |DFT of its kernel| (zero-padded to H×W).
    JVPs run with autocast off and the math attention kernel (fused kernels lack forward-mode rules).
    ``update(model, images)``; ``compute()`` returns :class:`TransferMaps`. States: ``gain_sum``
    (per probe point, (h, w) float64) and ``count``.

    Args:
        points: the probe points to measure.
        image_size: (H, W) of the images.
        max_freq: only frequencies |u|, |v| ≤ max_freq (``None``: the full grid).
        basis_batch: bases per vmapped JVP (memory only; not part of the result).
    """

    name = "transfer-function"

    def __init__(
        self,
        points: Sequence[ProbePoint],
        image_size: tuple[int, int],
        max_freq: int | None = None,
        basis_batch: int = 16,
    ) -> None:
        super().__init__()
        if not points:
            raise ValueError("transfer-function: give at least one probe point")
        if basis_batch < 1:
            raise ValueError(f"basis_batch must be >= 1, got {basis_batch}")
        self.points = list(points)
        self.grid = FourierGrid(tuple(image_size), max_freq)
        self.basis_batch = basis_batch
        self.add_state("gain_sum", {})
        self.add_state("count", torch.zeros((), dtype=torch.float64))

    def settings(self) -> dict:
        names = [p.name for p in self.points]
        return {"points": names, "image_size": list(self.grid.size), "max_freq": self.grid.max_freq}

    def update(self, model: nn.Module, images: torch.Tensor) -> None:
        _check_images(self.name, images, self.grid.size)
        freqs, index, partner = (t.to(images.device) for t in self.grid.pairs())
        work = images.dtype if images.dtype == torch.float64 else torch.float32
        x = images.detach().to(work)
        outputs: dict[str, torch.Tensor] = {}

        def probe_outputs(inp: torch.Tensor) -> tuple[torch.Tensor, ...]:
            outputs.clear()
            model(inp)
            return tuple(outputs[p.name] for p in self.points)

        def gains(tangent: torch.Tensor) -> tuple[torch.Tensor, ...]:  # tangent (C, H, W) -> (B,) per point
            _, out = torch.func.jvp(probe_outputs, (x,), (tangent.expand_as(x),))
            return tuple(o.flatten(1).norm(dim=1) for o in out)

        sums = [torch.zeros(len(freqs), dtype=torch.float64, device=x.device) for _ in self.points]
        # Cloned: a later in-place op of the forward (e.g. ReLU(inplace=True)) must not change it.
        # Fused attention kernels (flash, memory-efficient) have no forward-mode derivative: use the math
        # one. Autocast is switched off: JVPs run in float32 (float64 for float64 input), as bf16 gains
        # would be mostly rounding.
        with (
            Lens(model, self.points, lambda p, f: outputs.__setitem__(p.name, f.clone())),
            sdpa_kernel(SDPBackend.MATH),
            torch.autocast(x.device.type, enabled=False),
        ):
            for p in model.parameters():
                p.requires_grad_(False)  # forward mode only; the lens restores the flags
            for s in _chunks(len(freqs), self.basis_batch):
                basis = fourier_basis(self.grid.size, freqs[s], work) / math.sqrt(x.shape[1])
                tangents = basis[:, None].expand(-1, x.shape[1], -1, -1)  # (k, C, H, W)
                for total, gain in zip(sums, torch.func.vmap(gains)(tangents), strict=True):
                    total[s] = gain.sum(dim=1).to(torch.float64)
        for point, total in zip(self.points, sums, strict=True):
            grid_sum = self.grid.scatter(index, partner, total)
            if point.name in self.gain_sum:
                self.gain_sum[point.name] += grid_sum.to(self.gain_sum[point.name].device)
            else:
                self.gain_sum[point.name] = grid_sum
        self.count += images.shape[0]

    def compute(self) -> TransferMaps:
        if self.count == 0:
            raise ValueError(f"{self.name}: no images seen yet; call update() first")
        n = float(self.count)
        return TransferMaps(
            gain={p.name: self.gain_sum[p.name].cpu() / n for p in self.points},
            freq_y=self.grid.freq_y,
            freq_x=self.grid.freq_x,
            radius=self.grid.radius(),
            count=int(self.count),
            settings=self.settings(),
        )


@dataclasses.dataclass
class BandLimitedCurves:
    """Accuracy and agreement with the clean prediction on low-/high-pass inputs, per cut-off."""

    cutoffs: torch.Tensor  # (K,) normalised radius
    low_agreement: torch.Tensor  # (K,) float64
    high_agreement: torch.Tensor
    low_accuracy: torch.Tensor | None  # (K,) float64, None without labels
    high_accuracy: torch.Tensor | None
    clean_accuracy: float | None
    count: int
    settings: dict


@register_measure
class BandLimitedAccuracy(Measure):
    """How much of a model's decision survives an ideal low-pass or high-pass filter of the input.

    For each cut-off c (normalised radius, 1 = Nyquist along an axis, √2 = the corner), every channel is
    filtered to radius ≤ c (low-pass) or > c (high-pass, which also removes the mean) with
    :func:`band_filter`. ``update(model, images, labels=None)``; ``compute()`` returns
    :class:`BandLimitedCurves`. States: ``low_agree``/``high_agree``/``low_correct``/``high_correct``
    (K,) float64 counts, ``count``, ``labelled``, ``clean_correct``.

    Args:
        cutoffs: increasing cut-off radii in (0, √2].
        batch_size: most images per forward pass (speed only).
    """

    name = "band-limited-accuracy"

    def __init__(self, cutoffs: Sequence[float] = (0.125, 0.25, 0.5, 0.75, 1.0), batch_size: int = 256) -> None:
        super().__init__()
        cut = torch.tensor(list(cutoffs), dtype=torch.float64)
        if cut.numel() == 0 or not bool(((cut > 0) & (cut <= math.sqrt(2))).all()) or not bool((cut.diff() > 0).all()):
            raise ValueError(f"cutoffs must be increasing values in (0, sqrt(2)], got {list(cutoffs)}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.cutoffs = cut
        self.batch_size = batch_size
        k = cut.numel()
        for state in ("low_agree", "high_agree", "low_correct", "high_correct"):
            self.add_state(state, torch.zeros(k, dtype=torch.float64))
        for state in ("count", "labelled", "clean_correct"):
            self.add_state(state, torch.zeros((), dtype=torch.float64))

    def settings(self) -> dict:
        return {"cutoffs": self.cutoffs.tolist()}

    @torch.no_grad()
    def update(self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor | None = None) -> None:
        _check_images(self.name, images)
        _check_labels(self.name, labels, images.shape[0])
        with preserved_state(model):
            model.eval()
            clean = _predict(model, images, self.batch_size)
            labels = labels.to(clean.device) if labels is not None else None
            spectrum, radius = _spectrum(images)
            # (agree | correct) x (low | high) x cutoff counts, kept on the device: one transfer per batch
            hits = torch.zeros(2, 2, len(self.cutoffs), dtype=torch.float64, device=clean.device)
            for i, cutoff in enumerate(self.cutoffs.tolist()):
                for band, keep in enumerate(("low", "high")):
                    pred = _predict(model, _keep_band(images, spectrum, radius, cutoff, keep), self.batch_size)
                    hits[0, band, i] = (pred == clean).sum()
                    if labels is not None:
                        hits[1, band, i] = (pred == labels).sum()
        hits = hits.to(self.low_agree.device)
        self.low_agree += hits[0, 0]
        self.high_agree += hits[0, 1]
        self.count += images.shape[0]
        if labels is not None:
            self.low_correct += hits[1, 0]
            self.high_correct += hits[1, 1]
            self.labelled += images.shape[0]
            self.clean_correct += float((clean == labels).sum())

    def compute(self) -> BandLimitedCurves:
        if self.count == 0:
            raise ValueError(f"{self.name}: no images seen yet; call update() first")
        n, labelled = float(self.count), float(self.labelled)
        return BandLimitedCurves(
            cutoffs=self.cutoffs.clone(),
            low_agreement=self.low_agree.cpu() / n,
            high_agreement=self.high_agree.cpu() / n,
            low_accuracy=self.low_correct.cpu() / labelled if labelled else None,
            high_accuracy=self.high_correct.cpu() / labelled if labelled else None,
            clean_accuracy=float(self.clean_correct) / labelled if labelled else None,
            count=int(self.count),
            settings=self.settings(),
        )
