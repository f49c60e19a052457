"""Inference throughput of freqlens' SpaRTAN against the official implementation (zoo contract §7).

Needs the official source at the pinned commit (not part of freqlens), e.g.::

    git --git-dir=<mirror of henry-pay/SpaRTAN> archive 1715a4308cbaac521abafd97c63068158c2716da src \\
        | tar -x -C .official/spartan
    python benchmarks/spartan.py --official-src .official/spartan/src --device cuda

Both models get the same deterministic weights; the script first checks that their logits agree, then
times eval-mode forwards (CUDA events, warm-up excluded) and prints one JSON line per setting with
images/s of each and the ratio ours / official.
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
import types
from pathlib import Path

import timm
import torch

import freqlens  # noqa: F401  (registers spartan_t)
from throughput import compare_throughput, fill_weights, rel_err  # noqa: E402  (benchmarks/ is on sys.path when run)

OFFICIAL_BUILD = dict(num_layer=4, layer_depths=[3, 3, 12, 2], expand_ratios=[4, 4, 2, 2], dims=[64, 128, 256],
                      dropout=0.1, init_dim=32)


def official_model(src: Path) -> torch.nn.Module:
    """``build(1000, config.model.build)`` from the official ``src/model/spartan.py``."""
    if importlib.util.find_spec("omegaconf") is None:  # only imported there for a type annotation
        stub = types.ModuleType("omegaconf")
        stub.DictConfig = dict
        sys.modules["omegaconf"] = stub
    sys.path.insert(0, str(src))
    module = importlib.import_module("model.spartan")
    return module.build(1000, OFFICIAL_BUILD)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official-src", type=Path, required=True, help="the official repo's src/ folder")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 64, 256])
    parser.add_argument("--size", type=int, nargs="+", default=[224, 256])
    parser.add_argument("--dtype", nargs="+", default=["float32", "bf16"], choices=["float32", "bf16"])
    parser.add_argument("--iters", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args()

    device = torch.device(args.device)
    ours = timm.create_model("spartan_t").eval()
    official = official_model(args.official_src).eval()
    generator = torch.Generator().manual_seed(0)
    fill_weights(ours, generator)
    official.load_state_dict(ours.state_dict(), strict=True)
    ours, official = ours.to(device), official.to(device)

    check = torch.randn(2, 3, 224, 224, generator=generator).to(device)
    with torch.inference_mode():
        a, b = ours(check), official(check)
    rel = rel_err(a, b)
    print(json.dumps({"check": "logits ours vs official", "rel_err": rel}), flush=True)
    compare_throughput(ours, official, device, args.dtype, args.size, args.batch, args.iters, args.warmup)


if __name__ == "__main__":
    main()
