"""Spatial-Mamba on a GPU: scan backends agree, bf16 autocast, and throughput against the official code.

Checks, one JSON line each: (1) ``selective_scan`` fast vs reference on the device (forward and input
gradients); (2) the float64 golden of ``spatialmamba_t`` with the fast backend on the device; (3) the
whole model with the fast vs the reference scan (float32) and bf16 autocast vs float32; (4) with
``--official-src``, our logits vs the official model's. Then eval-mode throughput (synchronised wall clock,
warm-up excluded) of ours and, with ``--official-src``, of the official model, and their ratio (contract §7).

The official model needs its two CUDA extensions built in place (``spatial_mamba_official.sh`` applies
the spec's CUDA-13 build shims, none touching the math)::

    benchmarks/spatial_mamba_official.sh prepare <git dir of EdwardChasel/Spatial-Mamba> .official/spatialmamba
    benchmarks/spatial_mamba_official.sh build .official/spatialmamba          # on the GPU machine
    python benchmarks/spatial_mamba.py --official-src .official/spatialmamba

fvcore and einops (imported by the official model file) are replaced by stubs when not installed.
"""
from __future__ import annotations

import argparse
import importlib
import json
import math
import sys
import types
from pathlib import Path

import timm
import torch

import freqlens  # noqa: F401  (registers the zoo)
from freqlens.ops.selective_scan import selective_scan
from throughput import device_name, fill_weights, images_per_second, rel_err  # noqa: E402  (benchmarks/ is on sys.path when run)

CONFIGS = {"t": dict(depths=[2, 4, 8, 4], dims=64, drop_path_rate=0.2),
           "s": dict(depths=[2, 4, 21, 5], dims=64, drop_path_rate=0.3),
           "b": dict(depths=[2, 4, 21, 5], dims=96, drop_path_rate=0.5)}


def _emit(**record) -> None:
    print(json.dumps(record), flush=True)


def _einops_stub() -> types.ModuleType:
    """``rearrange``/``repeat`` for the plain axis patterns the official files use (no ellipsis)."""

    def parse(side: str) -> list[list[str]]:
        groups, tokens = [], side.replace("(", " ( ").replace(")", " ) ").split()
        current = None
        for tok in tokens:
            if tok == "(":
                current = []
            elif tok == ")":
                groups.append(current)
                current = None
            elif current is not None:
                current.append(tok)
            else:
                groups.append([tok])
        return groups

    def rearrange(x: torch.Tensor, pattern: str, **sizes: int) -> torch.Tensor:
        left, right = (parse(s) for s in pattern.split("->"))
        known = dict(sizes)
        for group, dim in zip(left, x.shape, strict=True):
            names = [n for n in group if n != "1"]
            unknown = [n for n in names if n not in known]
            if len(unknown) == 1:
                known[unknown[0]] = dim // math.prod(known[n] for n in names if n in known)
        axes = [n for g in left for n in g if n != "1"]
        x = x.reshape([known[n] for n in axes])
        out_axes = [n for g in right for n in g if n != "1"]
        for n in out_axes:  # repeat: new axes are broadcast
            if n not in axes:
                x = x.unsqueeze(-1)
                axes.append(n)
        x = x.permute([axes.index(n) for n in out_axes])
        x = x.expand([known[n] for n in out_axes])
        return x.reshape([math.prod(known.get(n, 1) if n != "1" else 1 for n in g) for g in right])

    module = types.ModuleType("einops")
    module.rearrange = rearrange
    module.repeat = lambda x, pattern, **sizes: rearrange(x, pattern, **sizes).contiguous()
    return module


def official_model(src: Path, variant: str) -> torch.nn.Module:
    """``SpatialMamba(**kwargs)`` exactly as ``classification/models/__init__.py: build_model`` builds it."""
    if "einops" not in sys.modules and importlib.util.find_spec("einops") is None:
        sys.modules["einops"] = _einops_stub()
    if "fvcore" not in sys.modules and importlib.util.find_spec("fvcore") is None:  # for its FLOP counter only
        fvcore, nn_mod = types.ModuleType("fvcore"), types.ModuleType("fvcore.nn")
        nn_mod.flop_count = nn_mod.parameter_count = lambda *a, **k: None
        fvcore.nn = nn_mod
        sys.modules.update({"fvcore": fvcore, "fvcore.nn": nn_mod})
    for sub in ("kernels/selective_scan", "kernels/dwconv2d", "classification/models"):
        sys.path.insert(0, str(src / sub))
    module = importlib.import_module("spatialmamba")
    return module.SpatialMamba(in_chans=3, patch_size=4, num_classes=1000, d_state=1, dt_init="random",
                               mlp_ratio=4.0, drop_rate=0.0, **CONFIGS[variant])


def check_scan(device: torch.device) -> None:
    g = torch.Generator().manual_seed(0)
    batch, channels, length = 2, 96, 3136
    inputs = dict(u=torch.randn(batch, channels, length, generator=g),
                  delta=torch.randn(batch, channels, length, generator=g),
                  A=-torch.rand(channels, 1, generator=g) * 3, B=torch.randn(batch, 2, 1, length, generator=g),
                  C=torch.randn(batch, 2, 1, length, generator=g), D=torch.randn(channels, generator=g),
                  delta_bias=torch.randn(channels, generator=g))
    inputs = {k: v.to(device).requires_grad_() for k, v in inputs.items()}
    results = {}
    for backend in ("reference", "fast"):
        y, h = selective_scan(**inputs, delta_softplus=True, return_hidden=True, backend=backend)
        grads = torch.autograd.grad(y.sin().sum() + h.sum(), [inputs["u"], inputs["delta"], inputs["B"]])
        results[backend] = (y, h, *grads)
    errs = [rel_err(f, r) for f, r in zip(results["fast"], results["reference"])]
    _emit(check="selective_scan fast vs reference", device=str(device),
          rel_err=dict(zip(("y", "h", "grad_u", "grad_delta", "grad_B"), errs)))


def check_model(device: torch.device) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    try:  # needs ../shared/golden beside the repository
        from golden import det_fill_, golden_input, load_golden
    except OSError as err:
        _emit(check="golden spatialmamba_t float64, fast scan", skipped=f"no golden files: {err}")
        model = timm.create_model("spatialmamba_t", scan_backend="fast").eval().to(device)
        x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0)).to(device)
    else:
        golden = load_golden("spatialmamba_t")
        model = det_fill_(timm.create_model("spatialmamba_t", scan_backend="fast").eval(), 0)
        with torch.inference_mode():
            out = model.double().to(device)(golden_input(golden).to(device))
        expected = torch.tensor(golden["output"], dtype=torch.float64)
        _emit(check="golden spatialmamba_t float64, fast scan", rel_err=rel_err(out.cpu(), expected))
        x = golden_input(golden).float().to(device)
    model = model.float()
    with torch.inference_mode():
        fast = model(x)
        with torch.autocast(device.type, dtype=torch.bfloat16):
            bf16 = model(x)
        for module in model.modules():
            if hasattr(module, "backend"):
                module.backend = "reference"
        ref = model(x)
    _emit(check="spatialmamba_t float32 fast vs reference scan", rel_err=rel_err(fast, ref),
          same_argmax=bool((fast.argmax(-1) == ref.argmax(-1)).all()))
    _emit(check="spatialmamba_t bf16 autocast vs float32", rel_err=rel_err(bf16.float(), fast),
          same_argmax=bool((bf16.argmax(-1) == fast.argmax(-1)).all()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official-src", type=Path, help="checkout of the official repo with built kernels")
    parser.add_argument("--variants", nargs="+", default=["t", "s", "b"], choices=list(CONFIGS))
    parser.add_argument("--batch", type=int, nargs="+", default=[128])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--dtype", nargs="+", default=["float32", "bf16"], choices=["float32", "bf16"])
    parser.add_argument("--compile", action="store_true", help="also time torch.compile(ours)")
    parser.add_argument("--iters", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--device", default="cuda", help="cpu only for a smoke test of this script")
    args = parser.parse_args()
    device = torch.device(args.device)

    check_scan(device)
    check_model(device)
    for variant in args.variants:
        ours = timm.create_model(f"spatialmamba_{variant}", scan_backend="fast").eval()
        generator = torch.Generator().manual_seed(0)
        fill_weights(ours, generator)
        ours = ours.to(device)
        models = {"ours": ours}
        if args.compile:
            models["ours_compiled"] = torch.compile(ours)
        if args.official_src:
            official = official_model(args.official_src, variant).eval()
            official.load_state_dict(ours.state_dict(), strict=True)  # before its first (caching) forward
            models["official"] = official.to(device)
            check = torch.randn(2, 3, args.size, args.size, generator=generator).to(device)
            with torch.inference_mode():
                _emit(check=f"spatialmamba_{variant} ours vs official float32",
                      rel_err=rel_err(ours(check), models["official"](check)))
        for dtype in args.dtype:
            for batch in args.batch:
                x = torch.randn(batch, 3, args.size, args.size, device=device)
                speed = {name: round(images_per_second(m, x, dtype, args.iters, args.warmup), 1)
                         for name, m in models.items()}
                record = dict(variant=variant, device=device_name(device), dtype=dtype,
                              size=args.size, batch=batch, img_s=speed)
                if "official" in speed:
                    record["ratio_ours_official"] = round(speed["ours"] / speed["official"], 3)
                _emit(**record)


if __name__ == "__main__":
    main()
