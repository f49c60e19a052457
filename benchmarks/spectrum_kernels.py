"""Where the spectrum measure's time goes: its per-feature-map reduction alone, several ways, on one GPU.

    python benchmarks/spectrum_kernels.py            # variants
    python benchmarks/spectrum_kernels.py --sweep    # the fused kernel's launch settings

Both modes run on ``MAPS``: the feature maps of resnet50, convnext_tiny and deit_s at batch 128, in the
dtypes and views a bf16 autocast run hands the lens. The default mode turns each into the batch-and-channel
sums of log|F| and |F|² over the rfft half plane several ways (cuFFT variants, float32 matmuls, the fused
kernel with its current settings) and prints one JSON line per (map, variant): milliseconds and the largest
difference from the float64 reference. ``--sweep`` times the fused kernels under every launch setting (a
budget or maps per step, warps, stages, rows per chunk, programs per SM) with the L2 cache flushed before
each call: one JSON line per map with its fastest settings, then one with the settings that minimise each
table key's time weighted by its probe points: ``spectrum_dft.LAUNCH_CONFIGS`` and ``SMALL_MAP_CONFIGS``
hold them.
"""
from __future__ import annotations

import argparse
import collections
import functools
import itertools
import json
import math
import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import torch
import triton

from freqlens.measures.spectral_energy import EPS
from freqlens.ops import spectrum_dft

def reference(x):
    f = torch.fft.rfft2(x.double())
    return torch.log(f.abs() + EPS).sum((0, 1)), f.abs().square().sum((0, 1))


def fft_f64sum(x):
    f = torch.view_as_real(torch.fft.rfft2(x.float())).square().sum(-1)
    return torch.log(f.sqrt() + EPS).sum((0, 1), dtype=torch.float64), f.sum((0, 1), dtype=torch.float64)


def fft_f32sum(x):
    f = torch.view_as_real(torch.fft.rfft2(x.float())).square().sum(-1)
    return torch.log(f.sqrt() + EPS).sum((0, 1)).double(), f.sum((0, 1)).double()


def fft_contiguous(x):
    return fft_f32sum(x.float().contiguous())


def _dft_mats(n: int, half: bool, device):
    k = torch.arange(n // 2 + 1 if half else n, device=device, dtype=torch.float64)
    j = torch.arange(n, device=device, dtype=torch.float64)
    ang = 2 * math.pi * j[:, None] * k[None, :] / n
    return torch.cos(ang).float(), -torch.sin(ang).float()


def matmul_dft(x):
    """rfft2 as two real matmul stages in float32 (TF32 off)."""
    b, c, h, w = x.shape
    cw, sw = _dft_mats(w, True, x.device)
    ch, sh = _dft_mats(h, False, x.device)
    xf = x.float().reshape(b * c, h, w)
    zr, zi = xf @ cw, xf @ sw  # (N, H, W')
    fr = ch.T @ zr - sh.T @ zi
    fi = ch.T @ zi + sh.T @ zr
    p = fr.square() + fi.square()
    return torch.log(p.sqrt() + EPS).sum(0).double(), p.sum(0).double()


def _post(f):
    p = torch.view_as_real(f).square().sum(-1)
    return torch.log(p.sqrt() + EPS).sum((0, 1)), p.sum((0, 1))


_post_compiled = torch.compile(_post, dynamic=False)


def fft_compiled_post(x):
    log, power = _post_compiled(torch.fft.rfft2(x.float()))
    return log.double(), power.double()


def fused_kernel(x):
    return spectrum_dft.half_plane_sums(x, EPS)


MAPS = [  # (B, C, H, W), layout, dtype, probe points: the maps a bf16 autocast run hands the lens for resnet50,
    # convnext_tiny and deit_s, and how many of each the three models have (none is 112²: its weight of 1 is
    # nominal, for the 128-wide settings)
    ((128, 64, 112, 112), "nchw", torch.bfloat16, 1), ((128, 256, 56, 56), "nchw", torch.bfloat16, 3),
    ((128, 64, 56, 56), "nchw", torch.bfloat16, 1), ((128, 512, 28, 28), "nchw", torch.bfloat16, 4),
    ((128, 1024, 14, 14), "nchw", torch.bfloat16, 6), ((128, 2048, 7, 7), "nchw", torch.bfloat16, 3),
    ((128, 384, 14, 14), "tokens", torch.float32, 12), ((128, 96, 56, 56), "nhwc", torch.float32, 3),
    ((128, 192, 28, 28), "nhwc", torch.float32, 3), ((128, 384, 14, 14), "nhwc", torch.float32, 9),
    ((128, 768, 7, 7), "nhwc", torch.float32, 3),
]


def _features(shape, layout, dtype, device):
    b, c, h, w = shape
    if layout == "tokens":  # deit's (B, 1 + H·W, C) block output seen as (B, C, H, W)
        return torch.randn(b, 1 + h * w, c, device=device, dtype=dtype)[:, 1:].reshape(b, h, w, c).permute(0, 3, 1, 2)
    if layout == "nhwc":  # convnext's block output
        return torch.randn(b, h, w, c, device=device, dtype=dtype).permute(0, 3, 1, 2)
    return torch.randn(shape, device=device, dtype=dtype)


def _ms(fn) -> float:
    """Median milliseconds per call, the L2 cache flushed before each (``triton.testing.do_bench``)."""
    return triton.testing.do_bench(fn, warmup=10, rep=60, return_mode="median")


def _settings(shape: tuple) -> list[tuple[int, ...]]:
    """Every launch setting the sweep times for maps of this shape (the last entry, programs per SM, needs
    no compilation of its own)."""
    if spectrum_dft._small(*shape[-2:]):  # maps per step, warps, stages, programs
        return list(itertools.product((32, 64, 128), (4, 8), (1, 2), (2, 4, 8)))
    rows = [r for r in (16, 32, 64) if r <= spectrum_dft._tiles(*shape[-2:])[0]]
    return list(itertools.product((2048, 4096, 8192, 16384), (4, 8), (1, 2), rows, (2, 4, 8)))


def _config(shape: tuple, dtype: torch.dtype) -> tuple[str, tuple | bool]:
    """The name of the ``spectrum_dft`` table of launch settings that serves these maps, and their key in it."""
    split = dtype != torch.bfloat16
    if spectrum_dft._small(*shape[-2:]):
        return "SMALL_MAP_CONFIGS", split
    return "LAUNCH_CONFIGS", (spectrum_dft._tiles(*shape[-2:])[0], split)


def _use(shape: tuple, dtype: torch.dtype, setting: tuple) -> None:
    name, key = _config(shape, dtype)
    getattr(spectrum_dft, name)[key] = setting
    spectrum_dft._launch.cache_clear()


@functools.cache  # a worker compiles several settings of one map in a row: build its input once
def _cached_features(shape: tuple, layout: str, dtype: torch.dtype) -> torch.Tensor:
    return _features(shape, layout, dtype, torch.device("cuda"))


def _run_once(job: tuple) -> None:
    """Compile (into Triton's on-disk cache) and run the kernel once for one map and setting."""
    (shape, layout, dtype, _), setting = job
    x = _cached_features(shape, layout, dtype)
    _use(shape, dtype, setting)
    try:
        spectrum_dft.accumulate(x, spectrum_dft.partial_buffer(x), EPS)
    except triton.runtime.errors.OutOfResources:
        pass


def sweep(device: torch.device, jobs: int) -> None:
    """Every setting on every map: compiled by ``jobs`` processes first, then timed one at a time. Prints
    each map's fastest settings, then the ``LAUNCH_CONFIGS`` and ``SMALL_MAP_CONFIGS`` entries that
    minimise the time of each key's maps weighted by their probe points."""
    work = [(m, s) for m in MAPS for s in _settings(m[0]) if s[-1] == 2]
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(_run_once, work, chunksize=4))
    totals: dict[tuple, dict[tuple, float]] = collections.defaultdict(lambda: collections.defaultdict(float))
    for shape, layout, dtype, count in MAPS:
        x = _features(shape, layout, dtype, device)
        name, key = _config(shape, dtype)
        timed, seen = {}, {}
        for setting in _settings(shape):
            _use(shape, dtype, setting)
            programs, _, launch = spectrum_dft._launch(shape[1], *shape[-2:], dtype != torch.bfloat16, device)
            same = seen.setdefault((programs, *sorted(launch.items())), setting)  # budgets giving the same G
            if same != setting:
                timed[setting] = timed.get(same, math.inf)
                continue
            partial = spectrum_dft.partial_buffer(x)
            try:
                timed[setting] = _ms(lambda: spectrum_dft.accumulate(x, partial, EPS))
            except triton.runtime.errors.OutOfResources:  # e.g. 64-row chunks of a 128-wide map
                timed[setting] = math.inf
        for setting, ms in timed.items():
            totals[name, key][setting] += count * ms
        best = sorted((round(ms, 4), *setting) for setting, ms in timed.items())[:6]
        print(json.dumps({"map": list(shape), "layout": layout, "dtype": str(dtype).removeprefix("torch."),
                          "table": name, "key": key, "fastest_ms_and_setting": best}), flush=True)
    winners: dict[str, dict] = collections.defaultdict(dict)
    for (name, key), settings in totals.items():
        winners[name][json.dumps(key)] = min(settings, key=settings.get)
    print(json.dumps(winners), flush=True)


VARIANTS = {"fft_f64sum": fft_f64sum, "fft_f32sum": fft_f32sum, "fft_contiguous": fft_contiguous,
            "matmul_dft": matmul_dft, "fft_compiled_post": fft_compiled_post,
            "fused_kernel": fused_kernel}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", action="store_true", help="time the fused kernel's launch settings instead")
    parser.add_argument("--jobs", type=int, default=8, help="processes that compile the sweep's settings")
    torch.backends.cuda.matmul.allow_tf32 = False
    device = torch.device("cuda")
    args = parser.parse_args()
    if args.sweep:
        sweep(device, args.jobs)
        return
    for shape, layout, dtype, _ in MAPS:
        x = _features(shape, layout, dtype, device)
        ref_log, ref_pow = reference(x)
        for name, fn in VARIANTS.items():
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=fn is fused_kernel):  # as the lens runs it
                if fn is fused_kernel and not spectrum_dft.supported(x):
                    continue
                log, power = fn(x)
                ms = _ms(lambda: fn(x))
            err_log = float((log - ref_log).abs().max() / (shape[0] * shape[1]))
            err_pow = float(((power - ref_pow).abs() / ref_pow.abs().clamp_min(1e-30)).max())
            print(json.dumps({"map": list(shape), "layout": layout, "dtype": str(dtype).removeprefix("torch."),
                              "variant": name, "ms": round(ms, 3), "elements_per_ns": round(x.numel() / ms / 1e6, 2),
                              "max_err_mean_logamp": err_log, "max_rel_err_power": err_pow}), flush=True)

if __name__ == "__main__":
    main()
