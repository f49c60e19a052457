"""Synthetic classification tasks whose label lives in one known frequency band.

Ground truth for the measures: a model trained on the ``hf`` task must read high frequencies, one
trained on the ``lf`` task low frequencies, and nothing else about the images differs between them.

Every image is the sum of three parts, all shared by the two tasks:

* **label part**: oriented band-pass noise, i.e. random complex coefficients on exactly those DFT
  bins whose radial frequency lies in the label band and whose orientation lies in the class's sector;
* **distractor part**: the same kind of oriented noise, twice as strong, in the distractor band, with
  an orientation drawn independently of the label (it looks like a label, at the wrong frequency);
* **nuisance**: white noise in every channel and a per-channel brightness offset.

Radial frequency is ``r = sqrt(fy² + fx²)`` in cycles/pixel with ``f = torch.fft.fftfreq(32)``
(Nyquist is 0.5); a band ``(lo, hi)`` is the closed interval ``lo <= r <= hi``. The two bands are
``LOW_BAND = (1/16, 3/16)`` and ``HIGH_BAND = (5/16, 7/16)``: 2 to 6 and 10 to 14 cycles per
32-pixel image. The ``hf`` task carries the label in ``HIGH_BAND`` and the distractor in ``LOW_BAND``;
the ``lf`` task swaps them. Class ``c`` of ``K`` owns the bins whose orientation ``atan2(fy, fx) mod pi``
lies within ``0.75 * pi / (2K)`` of ``c * pi / K`` (a guard gap between sectors).

Because every part is exactly band-limited (built in the Fourier domain, never clipped), a band-stop
of the label band leaves an image that does not depend on the label at all: no model can beat chance
on it. Images are float32 "pixels" around 0.5 with a standard deviation near ``PIXEL_STD``; they are
not clipped to [0, 1], because clipping would leak label energy into other bands through harmonics.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Literal

import torch

from freqlens.measures.fourier import normalised_radius

Band = tuple[float, float]

LOW_BAND: Band = (1 / 16, 3 / 16)
HIGH_BAND: Band = (5 / 16, 7 / 16)
IMAGE_SIZE = 32
IN_CHANS = 3
NUM_CLASSES = 4
PIXEL_MEAN = 0.5
PIXEL_STD = 0.15
SECTOR_FILL = 0.75  # fraction of each class's half-sector that carries energy; the rest is a guard gap

# Amplitudes in units of the label part's RMS; _PIXEL_SCALE maps the sum to a pixel std near PIXEL_STD.
_DISTRACTOR_RMS = 2.0
_NOISE_RMS = 0.3
_OFFSET_RANGE = 0.1
_PIXEL_SCALE = 1 / 16

Split = Literal["train", "test"]
# torch's CPU generator keeps only the low 32 bits of a seed, so seeds live in [0, 2**32): train
# splits use generator seeds [0, 2**31), test splits [2**31, 2**32); the two never overlap.
_SEED_LIMIT = 1 << 32
_SPLIT_OFFSET: dict[str, int] = {"train": 0, "test": 1 << 31}
_MAX_SPLIT_SEED = 1 << 31


@dataclasses.dataclass(frozen=True)
class ProbeTask:
    """A task: which band carries the label and which carries the label-free distractor.

    Args:
        name: ``hf`` or ``lf``.
        label_band: closed radial band (cycles/pixel) holding all label information.
        distractor_band: closed radial band holding oriented noise independent of the label.
        num_classes: number of orientation classes ``K``.
        image_size: height and width in pixels.
    """

    name: str
    label_band: Band
    distractor_band: Band
    num_classes: int = NUM_CLASSES
    image_size: int = IMAGE_SIZE

    @property
    def input_size(self) -> tuple[int, int, int]:
        return (IN_CHANS, self.image_size, self.image_size)


TASKS: dict[str, ProbeTask] = {
    "hf": ProbeTask("hf", label_band=HIGH_BAND, distractor_band=LOW_BAND),
    "lf": ProbeTask("lf", label_band=LOW_BAND, distractor_band=HIGH_BAND),
}


def get_task(task: str | ProbeTask) -> ProbeTask:
    """Return the task named ``task`` (``hf`` or ``lf``); a ``ProbeTask`` is returned as is."""
    if isinstance(task, ProbeTask):
        return task
    if task not in TASKS:
        raise ValueError(f"unknown probe task {task!r}; choose one of {sorted(TASKS)}")
    return TASKS[task]


def label_band(task: str | ProbeTask) -> Band:
    """The closed radial band ``(lo, hi)`` in cycles/pixel that carries the task's label.

    >>> label_band("hf")
    (0.3125, 0.4375)
    """
    return get_task(task).label_band


def radial_frequency(height: int, width: int, device: torch.device | None = None) -> torch.Tensor:
    """Radial frequency in cycles/pixel of every ``fft2`` bin of an (height, width) image, unshifted."""
    return 0.5 * normalised_radius(height, width, centred=False, device=device)  # Nyquist is 0.5 cycles/px


def band_mask(height: int, width: int, band: Band, device: torch.device | None = None) -> torch.Tensor:
    """Boolean (height, width) mask of the ``fft2`` bins with ``band[0] <= r <= band[1]``."""
    lo, hi = band
    if not 0 <= lo <= hi:
        raise ValueError(f"band must satisfy 0 <= lo <= hi, got {band}")
    r = radial_frequency(height, width, device)
    return (r >= lo) & (r <= hi)


def class_masks(task: str | ProbeTask, band: Band | None = None) -> torch.Tensor:
    """Boolean (K, S, S) masks: bin ``(i, j)`` of class ``c`` lies in ``band`` and in sector ``c``.

    ``band`` defaults to the task's label band; the distractor uses the same sectors in its own band.
    """
    task = get_task(task)
    size, k = task.image_size, task.num_classes
    in_band = band_mask(size, size, task.label_band if band is None else band)
    f = torch.fft.fftfreq(size, dtype=torch.float64)
    theta = torch.atan2(f[:, None], f[None, :]) % math.pi  # orientation of each bin, mod pi
    centres = torch.arange(k, dtype=torch.float64) * (math.pi / k)
    # angular distance to each class centre, wrapped to [-pi/2, pi/2)
    dist = ((theta[None] - centres[:, None, None] + math.pi / 2) % math.pi - math.pi / 2).abs()
    return in_band[None] & (dist < SECTOR_FILL * math.pi / (2 * k))


def generate(
    task: str | ProbeTask, n: int, seed: int, labels: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw ``n`` images of ``task`` from generator seed ``seed``, on the CPU.

    All random numbers are drawn before the labels are used, in a fixed order, so passing other
    ``labels`` with the same seed changes only the label part: outside the label band the images
    are identical, which is how the tests prove that the label lives in the band.

    Args:
        task: ``hf``, ``lf`` or a ``ProbeTask``.
        n: number of images.
        seed: seed in [0, 2**32) of a private ``torch.Generator``; the global RNG is not touched.
        labels: optional (n,) int64 labels to use instead of the drawn ones.

    Returns:
        images (n, 3, S, S) float32 and labels (n,) int64.
    """
    task = get_task(task)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if not 0 <= seed < _SEED_LIMIT:
        raise ValueError(f"seed must be in [0, 2**32) (torch keeps only 32 bits), got {seed}")
    size, k = task.image_size, task.num_classes
    g = torch.Generator().manual_seed(seed)
    drawn = torch.randint(k, (n,), generator=g)
    distractor_class = torch.randint(k, (n,), generator=g)
    label_coef = torch.randn(n, 2, size, size, generator=g, dtype=torch.float64)
    distractor_coef = torch.randn(n, 2, size, size, generator=g, dtype=torch.float64)
    label_amp = torch.empty(n, 1, 1, 1, dtype=torch.float64).uniform_(0.7, 1.3, generator=g)
    distractor_amp = torch.empty(n, 1, 1, 1, dtype=torch.float64).uniform_(0.7, 1.3, generator=g)
    label_gain = torch.empty(n, IN_CHANS, 1, 1, dtype=torch.float64).uniform_(0.5, 1.5, generator=g)
    distractor_gain = torch.empty(n, IN_CHANS, 1, 1, dtype=torch.float64).uniform_(0.5, 1.5, generator=g)
    noise = torch.randn(n, IN_CHANS, size, size, generator=g, dtype=torch.float64)
    offset = torch.empty(n, IN_CHANS, 1, 1, dtype=torch.float64).uniform_(-_OFFSET_RANGE, _OFFSET_RANGE, generator=g)

    if labels is None:
        labels = drawn
    elif labels.shape != (n,) or labels.dtype != torch.int64 or not bool(((labels >= 0) & (labels < k)).all()):
        raise ValueError(f"labels must be an int64 tensor of shape ({n},) with values in [0, {k})")
    label_part = _oriented_noise(label_coef, class_masks(task)[labels])
    distractor_part = _oriented_noise(distractor_coef, class_masks(task, task.distractor_band)[distractor_class])
    signal = (
        label_amp * label_gain * label_part
        + _DISTRACTOR_RMS * distractor_amp * distractor_gain * distractor_part
        + _NOISE_RMS * noise
    )
    images = PIXEL_MEAN + offset + _PIXEL_SCALE * signal
    return images.float(), labels.clone()


def make_split(task: str | ProbeTask, split: Split, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Images and labels of a split; train and test seeds map to disjoint generator seeds.

    The held-out test set used for every stated accuracy is ``make_split(task, "test", 2000, 0)``.
    """
    if split not in _SPLIT_OFFSET:
        raise ValueError(f"split must be one of {sorted(_SPLIT_OFFSET)}, got {split!r}")
    if not 0 <= seed < _MAX_SPLIT_SEED:
        raise ValueError(f"seed must be in [0, 2**31), got {seed}")
    return generate(task, n, _SPLIT_OFFSET[split] + seed)


def band_stop(images: torch.Tensor, band: Band) -> torch.Tensor:
    """Remove every ``fft2`` bin of ``band`` from (..., H, W) images (an ideal band-stop filter)."""
    return _filter(images, ~band_mask(*images.shape[-2:], band, images.device))


def band_pass(images: torch.Tensor, band: Band) -> torch.Tensor:
    """Keep only the ``fft2`` bins of ``band`` in (..., H, W) images (an ideal band-pass filter)."""
    return _filter(images, band_mask(*images.shape[-2:], band, images.device))


def oracle_predict(task: str | ProbeTask, images: torch.Tensor) -> torch.Tensor:
    """Predict labels from the energy in each class sector of the label band (the Bayes-style reader)."""
    task = get_task(task)
    power = torch.fft.fft2(images.double().mean(dim=-3)).abs() ** 2  # (N, S, S), channel mean
    masks = class_masks(task).to(device=images.device, dtype=power.dtype)  # (K, S, S)
    return torch.einsum("nij,kij->nk", power, masks).argmax(dim=1)


def _oriented_noise(coef: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Real (n, 1, S, S) field with unit RMS whose spectrum lies on ``masks`` (n, S, S) and its mirror."""
    spectrum = torch.complex(coef[:, 0], coef[:, 1]) * masks
    # The sectors are symmetric under f -> -f, so the real part keeps the spectrum inside the mask.
    field = torch.fft.ifft2(spectrum).real
    rms = field.pow(2).mean(dim=(-2, -1), keepdim=True).sqrt()
    return (field / rms).unsqueeze(1)


def _filter(images: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    spectrum = torch.fft.fft2(images.to(torch.promote_types(images.dtype, torch.float32)))
    return torch.fft.ifft2(spectrum * keep).real.to(images.dtype)
