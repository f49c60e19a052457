"""Cost of the spectrum measure over a plain forward: same model, batch, dtype and inputs, in one run.

    python benchmarks/spectrum.py --models deit_small_patch16_224 resnet50 convnext_tiny \
        --batch-size 128 --dtype bfloat16 --iters 20

Prints one JSON line per model: time per batch (plain / with spectrum, medians over alternating rounds),
peak memory, the summed CUDA kernel time per batch (a profiled round of each: what the GPU does,
independent of the host, which bounds a small model's wall time), and their ratios. Inputs are random
tensors already on the device, so data loading (identical for both) is not timed.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import timm
import torch

import freqlens  # noqa: F401  (registers the zoo)
from freqlens.api import probe_points
from freqlens.lens import Lens
from freqlens.measures.spectral_energy import SpectralEnergy
from freqlens.runner import DTYPES, precision
from throughput import device_name  # noqa: E402  (benchmarks/ is on sys.path when run)


def _timed(forward, iters: int, device: torch.device) -> tuple[float, int]:
    """Seconds per call and peak bytes allocated over ``iters`` calls, after two warm-up calls."""
    for _ in range(2):
        forward()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for _ in range(iters):
        forward()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = (time.perf_counter() - start) / iters
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else 0
    return seconds, peak


def _kernel_ms(forward, iters: int, device: torch.device) -> float:
    """Summed CUDA kernel time per call (CUPTI): the GPU's share of the cost, however fast the host queues it."""
    forward()
    torch.cuda.synchronize(device)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as profile:
        for _ in range(iters):
            forward()
        torch.cuda.synchronize(device)
    kernels = (e for e in profile.key_averages() if e.device_type == torch.autograd.DeviceType.CUDA)
    return sum(event.self_device_time_total for event in kernels) / iters / 1e3


def bench(name: str, batch: int, dtype: torch.dtype, iters: int, rounds: int, device: torch.device) -> dict:
    """Plain and lens-attached forwards the way ``freqlens spectrum`` runs them: autocast and the lens
    entered once per run, each batch under ``inference_mode``. Rounds alternate the two, so drift in the
    host's speed hits both; the medians over rounds are reported."""
    model = timm.create_model(name).eval().to(device)
    size = timm.data.resolve_data_config({}, model=model)["input_size"]
    points = probe_points(model, tuple(size))
    x = torch.randn(batch, *size, device=device)
    measure = SpectralEnergy()

    def forward():
        with torch.inference_mode():
            model(x)

    def observe(point, features):
        measure.update({point.name: features})

    plain, spectrum = [], []
    with precision(model, device, dtype):
        for _ in range(rounds):
            plain.append(_timed(forward, iters, device))
            with Lens(model, points, observe):
                spectrum.append(_timed(forward, iters, device))
        kernels = {}
        if device.type == "cuda":
            kernels["plain"] = _kernel_ms(forward, iters, device)
            with Lens(model, points, observe):
                kernels["spectrum"] = _kernel_ms(forward, iters, device)
    measure.compute()
    t_plain, t_spec = (statistics.median(t for t, _ in runs) for runs in (plain, spectrum))
    m_plain = plain[0][1]  # before the measure holds any state, which later plain rounds would count
    m_spec = max(m for _, m in spectrum)
    return {
        "model": name, "batch": batch, "dtype": str(dtype).removeprefix("torch."), "probe_points": len(points),
        "ms_plain": round(1e3 * t_plain, 2), "ms_spectrum": round(1e3 * t_spec, 2), "time_ratio": round(t_spec / t_plain, 3),
        "round_ratios": [round(s / p, 3) for (s, _), (p, _) in zip(spectrum, plain)],
        "peak_mib_plain": round(m_plain / 2**20, 1), "peak_mib_spectrum": round(m_spec / 2**20, 1),
        "memory_ratio": round(m_spec / m_plain, 3) if m_plain else None,
        **({"kernel_ms_plain": round(kernels["plain"], 2), "kernel_ms_spectrum": round(kernels["spectrum"], 2),
            "kernel_time_ratio": round(kernels["spectrum"] / kernels["plain"], 3)} if kernels else {}),
        "device": device_name(device),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["deit_small_patch16_224", "resnet50", "convnext_tiny"])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--dtype", choices=list(DTYPES), default="bfloat16")
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5, help="alternating plain/spectrum rounds")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    torch.backends.cudnn.benchmark = True
    for name in args.models:
        result = bench(name, args.batch_size, DTYPES[args.dtype], args.iters, args.rounds, torch.device(args.device))
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
