"""Images per second of an eval-mode forward, and the ours-vs-official loop every zoo benchmark shares."""
from __future__ import annotations

import json
import time
from typing import Callable

import torch

AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}  # "float32": no autocast


def rel_err(ours: torch.Tensor, ref: torch.Tensor) -> float:
    """‖ours − ref‖ / ‖ref‖ in float64: how closely our model follows the official one."""
    ours, ref = ours.detach().double(), ref.detach().double()
    return float((ours - ref).norm() / ref.norm())


def images_per_second(model: Callable[[torch.Tensor], object], x: torch.Tensor, dtype: str, iters: int,
                      warmup: int) -> float:
    """Forwards of ``x`` under inference mode (and autocast for ``bf16``/``fp16``), warm-up excluded.

    CUDA runs are timed with CUDA events around the whole loop, CPU runs with the wall clock.
    """
    autocast = torch.autocast(x.device.type, dtype=AUTOCAST.get(dtype, torch.bfloat16), enabled=dtype in AUTOCAST)
    with torch.inference_mode(), autocast:
        for _ in range(warmup):
            model(x)
        if x.device.type == "cuda":
            torch.cuda.synchronize(x.device)
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(iters):
                model(x)
            end.record()
            torch.cuda.synchronize(x.device)
            seconds = start.elapsed_time(end) / 1000
        else:
            t0 = time.perf_counter()
            for _ in range(iters):
                model(x)
            seconds = time.perf_counter() - t0
    return iters * x.shape[0] / seconds


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def fill_weights(model: torch.nn.Module, generator: torch.Generator) -> None:
    """Seeded weights for an ours-vs-official check: vectors (norm scales, biases) near 1, matrices small.

    A freshly built model may have zero-initialised parts (layer scales, heads) that would hide differences.
    """
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(torch.rand(tensor.shape, generator=generator) * 0.2 + 0.9 if tensor.ndim == 1
                             else torch.randn(tensor.shape, generator=generator) * 0.05)


def compare_throughput(ours: Callable[[torch.Tensor], object], official: Callable[[torch.Tensor], object] | None,
                       device: torch.device, dtypes: list[str], sizes: list[int], batches: list[int], iters: int,
                       warmup: int, **tags) -> None:
    """Print one JSON line per (dtype, size, batch): images/s of ours and of the official model, and their ratio.

    ``official=None`` times ours alone; ``tags`` (e.g. the variant) lead each line.
    """
    for dtype in dtypes:
        for size in sizes:
            for batch in batches:
                x = torch.randn(batch, 3, size, size, device=device)
                row = {**tags, "device": device_name(device), "dtype": dtype, "size": size, "batch": batch,
                       "ours_img_s": round(images_per_second(ours, x, dtype, iters, warmup), 1)}
                if official is not None:
                    row["official_img_s"] = round(images_per_second(official, x, dtype, iters, warmup), 1)
                    row["ratio"] = round(row["ours_img_s"] / row["official_img_s"], 3)
                print(json.dumps(row), flush=True)
