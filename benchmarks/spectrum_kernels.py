"""Where the spectrum measure's time goes: its per-feature-map reduction alone, several ways, on one GPU.

    python benchmarks/spectrum_kernels.py            # variants
    python benchmarks/spectrum_kernels.py --sweep    # the fused kernel's launch settings

Each variant turns a (B, C, H, W) bf16 feature tensor into the batch-and-channel sums of log|F| and |F|²
over the rfft half plane. Prints one JSON line per (shape, variant): milliseconds and the largest
difference from the float64 reference. ``--sweep`` times the fused kernel under every (budget, warps,
stages, rows per chunk) setting on the maps of resnet50, convnext_tiny and deit_s in the dtypes a bf16
autocast run gives them, one JSON line per map with the settings fastest first:
``spectrum_dft.LAUNCH_CONFIGS`` holds the winners.
"""
from __future__ import annotations

import argparse
import itertools
import json
import math
import time

import torch
import triton

from freqlens.measures.spectral_energy import EPS
from freqlens.ops import spectrum_dft

SHAPES = {  # (B, C, H, W) and whether the features arrive as an NHWC/NLC view
    "deit_s block (NLC view)": ((128, 384, 14, 14), True),
    "resnet50 stem": ((128, 64, 112, 112), False),
    "resnet50 layer1": ((128, 256, 56, 56), False),
    "resnet50 layer3": ((128, 1024, 14, 14), False),
    "convnext_t stage0": ((128, 96, 56, 56), False),
    "resnet50 layer2": ((128, 512, 28, 28), False),
    "resnet50 layer4": ((128, 2048, 7, 7), False),
}


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


SWEEP_MAPS = [  # (B, C, H, W), layout, dtype: the dtypes and views a bf16 autocast run hands the lens
    ((128, 64, 112, 112), "nchw", torch.bfloat16), ((128, 256, 56, 56), "nchw", torch.bfloat16),
    ((128, 64, 56, 56), "nchw", torch.bfloat16),
    ((128, 512, 28, 28), "nchw", torch.bfloat16), ((128, 1024, 14, 14), "nchw", torch.bfloat16),
    ((128, 2048, 7, 7), "nchw", torch.bfloat16), ((128, 384, 14, 14), "tokens", torch.float32),
    ((128, 96, 56, 56), "nhwc", torch.float32), ((128, 192, 28, 28), "nhwc", torch.float32),
    ((128, 384, 14, 14), "nhwc", torch.float32), ((128, 768, 7, 7), "nhwc", torch.float32),
]


def _sweep_features(shape, layout, dtype, device):
    b, c, h, w = shape
    if layout == "tokens":  # deit's (B, 1 + H·W, C) block output seen as (B, C, H, W)
        return torch.randn(b, 1 + h * w, c, device=device, dtype=dtype)[:, 1:].reshape(b, h, w, c).permute(0, 3, 1, 2)
    if layout == "nhwc":  # convnext's block output
        return torch.randn(b, h, w, c, device=device, dtype=dtype).permute(0, 3, 1, 2)
    return torch.randn(shape, device=device, dtype=dtype)


def _ms(fn, iters: int = 20) -> float:
    fn()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / iters * 1e3


def sweep(device: torch.device) -> None:
    for shape, layout, dtype in SWEEP_MAPS:
        x = _sweep_features(shape, layout, dtype, device)
        key = (spectrum_dft._tiles(*shape[-2:])[0], dtype != torch.bfloat16)
        partial = spectrum_dft.partial_buffer(x)
        rows = []
        rows_per_chunk = [r for r in (32, 64) if r <= key[0]] or [key[0]]
        for setting in itertools.product((4096, 8192, 16384), (4, 8), (1, 2), rows_per_chunk):
            spectrum_dft.LAUNCH_CONFIGS[key] = setting
            spectrum_dft._launch.cache_clear()
            try:
                rows.append((round(_ms(lambda: spectrum_dft.accumulate(x, partial, EPS)), 4), *setting))
            except triton.runtime.errors.OutOfResources:  # e.g. 64-row chunks of a 128-wide map
                continue
        print(json.dumps({"map": list(shape), "layout": layout, "dtype": str(dtype).removeprefix("torch."),
                          "key": list(key), "ms_budget_warps_stages_rows": sorted(rows)}), flush=True)


VARIANTS = {"fft_f64sum": fft_f64sum, "fft_f32sum": fft_f32sum, "fft_contiguous": fft_contiguous,
            "matmul_dft": matmul_dft, "fft_compiled_post": fft_compiled_post,
            "fused_kernel": fused_kernel}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", action="store_true", help="time the fused kernel's launch settings instead")
    torch.backends.cuda.matmul.allow_tf32 = False
    device = torch.device("cuda")
    if parser.parse_args().sweep:
        sweep(device)
        return
    for label, (shape, nhwc) in SHAPES.items():
        b, c, h, w = shape
        x = torch.randn(b, h, w, c, device=device, dtype=torch.bfloat16).permute(0, 3, 1, 2) if nhwc else \
            torch.randn(shape, device=device, dtype=torch.bfloat16)
        ref_log, ref_pow = reference(x)
        for name, fn in VARIANTS.items():
            if fn is fused_kernel and not spectrum_dft.supported(x):
                continue
            log, power = fn(x)
            ms = _ms(lambda: fn(x), iters=10)
            err_log = float((log - ref_log).abs().max() / (b * c))
            err_pow = float(((power - ref_pow).abs() / ref_pow.abs().clamp_min(1e-30)).max())
            print(json.dumps({"shape": label, "variant": name, "ms": round(ms, 3),
                              "elements_per_ns": round(x.numel() / ms / 1e6, 2),
                              "max_err_mean_logamp": err_log, "max_rel_err_power": err_pow}), flush=True)


if __name__ == "__main__":
    main()
