"""Inference throughput of freqlens' SPANetV2 against the official implementation (zoo contract §7).

Needs the official model file at the pinned commit (not part of freqlens), e.g.::

    git --git-dir=<mirror of DoranLyong/SPANetV2-official> show \\
        8a490a6b3e70d166d8566e4227daa04752945b43:image_classification/models/spanetv2.py > .official/spanetv2_official.py
    python benchmarks/spanetv2.py --official-file .official/spanetv2_official.py --device cuda

The official file imports ``timm.models.layers.helpers`` (timm 0.6); it is pointed at ``timm.layers.helpers``.
Its ``@register_model`` entrypoints re-register our variant names in timm, so both models are built by calling
the entrypoint functions of each module directly. Both get the same weights (ours, loaded strictly into the
official model); the script checks that their logits agree, then times eval-mode forwards (CUDA events, warm-up
excluded) and prints one JSON line per setting with images/s of each and the ratio ours / official.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import timm.layers.helpers
import torch

from freqlens.models import spanetv2 as ours_module
from throughput import AUTOCAST, compare_throughput, rel_err  # noqa: E402  (benchmarks/ is on sys.path when run)



def official_module(path: Path):
    """Import the official ``image_classification/models/spanetv2.py`` from a file."""
    sys.modules.setdefault("timm.models.layers.helpers", timm.layers.helpers)
    spec = importlib.util.spec_from_file_location("spanetv2_official", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # timm's register_model looks the module up
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official-file", type=Path, required=True, help="the official models/spanetv2.py")
    parser.add_argument("--variant", nargs="+", default=["spanetv2_s18_pure", "spanetv2_s18_hybrid",
                                                          "spanetv2_b36_pure", "spanetv2_b36_hybrid"])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 64, 128])
    parser.add_argument("--dtype", nargs="+", default=["float32", "bf16", "fp16"], choices=["float32", *AUTOCAST])
    parser.add_argument("--iters", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args()

    device = torch.device(args.device)
    official_code = official_module(args.official_file)
    for variant in args.variant:
        ours = getattr(ours_module, variant)().eval()
        official = getattr(official_code, variant)().eval()
        official.load_state_dict(ours.state_dict(), strict=True)
        ours, official = ours.to(device), official.to(device)
        check = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0)).to(device)
        with torch.inference_mode():
            a, b = ours(check), official(check)
        rel = rel_err(a, b)
        print(json.dumps({"variant": variant, "check": "logits ours vs official", "rel_err": rel}), flush=True)
        compare_throughput(ours, official, device, args.dtype, [224], args.batch, args.iters, args.warmup,
                           variant=variant)


if __name__ == "__main__":
    main()
