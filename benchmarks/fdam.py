"""Inference throughput of freqlens' FDAM backbone against the official implementation (zoo contract §7).

Needs the official file at the pinned commit (not part of freqlens), e.g.::

    mkdir -p .official/fdam
    git --git-dir=<mirror of Linwei-Chen/FDAM> show \\
        210232fc807bcaf55bfe799f848fcac20fbb5427:FDAM_mmseg/mmcv_custom/deit_fdam.py > .official/fdam/deit_fdam.py
    python benchmarks/fdam.py --official-src .official/fdam --device cuda

The official module imports mmcv, mmseg and einops at module level; where they are missing this script
installs inert stand-ins (a plain ``nn.Module`` base class, no-op registries, a logger; ``einops`` is only
used by the unused flash-attention class). Both models get the same weights; the script first checks that
their four feature maps agree, then times eval-mode forwards of the backbone (official ``forward`` vs our
``forward_intermediates`` at (2, 5, 8, 11); CUDA events, warm-up excluded) and prints one JSON line per
setting with images/s of each and the ratio ours / official.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import logging
import sys
import types
from pathlib import Path

import timm
import torch
from torch import nn

import freqlens  # noqa: F401  (registers the fdam_* variants)
from throughput import compare_throughput, fill_weights, rel_err  # noqa: E402  (benchmarks/ is on sys.path when run)

OUT_INDICES = (2, 5, 8, 11)
# vit_models_freq kwargs per variant (the released ADE20K config for fdam_deit3_b)
OFFICIAL_KWARGS = {
    "fdam_deit_s": dict(img_size=224, embed_dim=384, num_heads=6),
    "fdam_deit_b": dict(img_size=224, embed_dim=768, num_heads=12),
    "fdam_deit3_b": dict(img_size=512, embed_dim=768, num_heads=12),
}


def _install_standins() -> None:
    """Module stand-ins for the official file's mmcv / mmseg / einops imports (only where absent)."""

    class BaseModule(nn.Module):
        def __init__(self, init_cfg=None):
            super().__init__()
            self.init_cfg = init_cfg

    class Registry:
        def register_module(self, *args, **kwargs):
            return lambda cls: cls

    modules = {
        "mmcv": {}, "mmcv.runner": {"BaseModule": BaseModule}, "mmcv.cnn": {}, "mmcv.cnn.utils": {},
        "mmcv.cnn.utils.weight_init": {"constant_init": None, "normal_init": None, "trunc_normal_init": None},
        "mmseg": {}, "mmseg.models": {}, "mmseg.models.builder": {"BACKBONES": Registry()},
        "mmseg.utils": {"get_root_logger": lambda: logging.getLogger("mmseg")},
        "einops": {"rearrange": None},
    }
    absent = {top for top in ("mmcv", "mmseg", "einops") if importlib.util.find_spec(top) is None}
    for name, attrs in modules.items():
        if name.split(".")[0] not in absent:
            continue
        module = types.ModuleType(name)
        module.__dict__.update(attrs)
        sys.modules[name] = module


def official_model(src: Path, variant: str) -> nn.Module:
    _install_standins()
    sys.path.insert(0, str(src))
    module = importlib.import_module("deit_fdam")
    return module.vit_models_freq(
        pretrain_img_size=224, patch_size=16, depth=12, mlp_ratio=4.0, qkv_bias=True, out_indices=list(OUT_INDICES),
        use_simple_fpn=False, with_fpn=False, output_dtype="float32", **OFFICIAL_KWARGS[variant],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official-src", type=Path, required=True, help="folder holding the official deit_fdam.py")
    parser.add_argument("--variant", default="fdam_deit3_b", choices=sorted(OFFICIAL_KWARGS))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--size", type=int, nargs="+", default=[512])
    parser.add_argument("--dtype", nargs="+", default=["float32", "bf16"], choices=["float32", "bf16"])
    parser.add_argument("--iters", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args()

    device = torch.device(args.device)
    ours = timm.create_model(args.variant, num_classes=0, global_pool="").eval()
    official = official_model(args.official_src, args.variant).eval()
    generator = torch.Generator().manual_seed(0)
    fill_weights(ours, generator)
    official.load_state_dict(ours.state_dict(), strict=True)
    ours, official = ours.to(device), official.to(device)

    def run_ours(x):
        return ours.forward_intermediates(x, indices=OUT_INDICES, intermediates_only=True)

    check = torch.randn(2, 3, args.size[0], args.size[0], generator=generator).to(device)
    with torch.inference_mode():
        errors = [rel_err(a, b) for a, b in zip(run_ours(check), official(check))]
    print(json.dumps({"check": "feature maps ours vs official", "rel_err": errors}), flush=True)
    compare_throughput(run_ours, official, device, args.dtype, args.size, args.batch, args.iters, args.warmup,
                       variant=args.variant)


if __name__ == "__main__":
    main()
