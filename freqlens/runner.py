"""Stream images through a model under the lens: batches, devices, dtypes, processes and progress.

Measures see only what the lens hands them; this module owns the loop around it. Under
``torch.distributed`` each rank streams its own share of the images (no image twice, none dropped) and the
measure's states are all-reduced at the end, so the result equals a single-process run.
"""
from __future__ import annotations

import contextlib
import sys
from typing import Callable, Iterator, Sequence

import torch
from torch import nn
from torch.utils.data import DataLoader, Subset

from freqlens.errors import UsageError
from freqlens.io.images import ImageDataset, ImageSet
from freqlens.lens import Lens, ProbePoint

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16, "float64": torch.float64}


def resolve_device(device: str | torch.device) -> torch.device:
    """``auto`` is the local CUDA device when there is one, else CPU. Under ``torchrun`` each process takes
    its own GPU (``cuda`` means ``cuda:LOCAL_RANK``) and joins the process group."""
    if str(device) == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:
        raise UsageError(f"--device {device!r} is not a device", hint="use auto, cpu, cuda or cuda:N") from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {device}: CUDA is not available on this machine", hint="use --device cpu")
    if resolved.type == "cuda" and resolved.index is None:
        resolved = torch.device("cuda", _local_rank() % torch.cuda.device_count())
    _join_torchrun(resolved)
    return resolved


def _join_torchrun(device: torch.device) -> None:
    """Join the process group once when launched by torchrun (NCCL on CUDA, gloo on CPU)."""
    import os

    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and dist.is_available() and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")


def resolve_dtype(dtype: str) -> torch.dtype:
    if dtype not in DTYPES:
        raise UsageError(f"--dtype {dtype!r} is not supported", hint=f"use one of {', '.join(DTYPES)}")
    return DTYPES[dtype]


@contextlib.contextmanager
def precision(model: nn.Module, device: torch.device, dtype: torch.dtype) -> Iterator[None]:
    """float32/float64 run the model in that dtype; bfloat16/float16 use autocast (FFTs stay float32)."""
    if dtype in (torch.float32, torch.float64):
        original = next(model.parameters(), torch.empty(0)).dtype
        model.to(dtype)
        try:
            yield
        finally:
            model.to(original)
    else:
        with torch.autocast(device.type, dtype=dtype):
            yield


def _local_rank() -> int:
    import os

    return int(os.environ.get("LOCAL_RANK", 0))


def rank_and_world() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def make_loader(images: ImageSet, transform: Callable, batch_size: int, num_workers: int) -> DataLoader:
    """A loader over this rank's share of ``images`` (every world_size-th image, starting at the rank)."""
    if batch_size < 1:
        raise UsageError(f"--batch-size must be >= 1, got {batch_size}")
    if num_workers < 0:
        raise UsageError(f"--num-workers must be >= 0, got {num_workers}")
    rank, world = rank_and_world()
    dataset = Subset(ImageDataset(images, transform), list(range(rank, len(images), world)))
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                      pin_memory=torch.cuda.is_available())


def stream(model: nn.Module, points: Sequence[ProbePoint], loader: DataLoader,
           observer: Callable[[ProbePoint, torch.Tensor], None], *, device: torch.device, dtype: torch.dtype,
           progress: bool = True) -> None:
    """Run every batch of ``loader`` through ``model`` without gradients, the lens attached:
    ``observer`` gets each probe point's features as they are produced."""
    with Lens(model, points, observer) as lens:

        def forward(images: torch.Tensor, _labels: torch.Tensor | None, _indices: list[int]) -> None:
            with torch.inference_mode():
                lens.model(images)

        feed(model, loader, forward, device=device, dtype=dtype, labelled=False, progress=progress)


def feed(model: nn.Module, loader: DataLoader, update: Callable[[torch.Tensor, torch.Tensor | None, list[int]], None], *,
         device: torch.device, dtype: torch.dtype, labelled: bool, progress: bool = True) -> None:
    """Hand every batch to ``update``: a measure that drives the model itself (ERF, interactions, rotation),
    or ``stream``'s lens-attached forward.

    ``update(images, labels, indices)`` gets the images on ``device``, the labels (None when the image set
    has none) and each image's index in the whole image set (``make_loader`` gives rank r every
    world-th image from r), which seeds per-image sampling identically in any number of processes.
    Gradients stay available: the measure decides where it needs them.
    """
    from tqdm.auto import tqdm

    rank, world = rank_and_world()
    seen = 0
    input_dtype = dtype if dtype in (torch.float32, torch.float64) else torch.float32
    with precision(model, device, dtype):
        bar = tqdm(loader, desc="images", unit="batch", file=sys.stderr, disable=not progress or None,
                   total=len(loader), leave=False)
        for images, labels in bar:
            indices = [rank + world * (seen + i) for i in range(images.shape[0])]
            update(images.to(device, input_dtype, non_blocking=True), labels.to(device) if labelled else None, indices)
            seen += images.shape[0]
