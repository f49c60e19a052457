"""Images per second of an eval-mode forward: the one timing loop every zoo benchmark shares."""
from __future__ import annotations

import time
from typing import Callable

import torch

AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}  # "float32": no autocast


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
