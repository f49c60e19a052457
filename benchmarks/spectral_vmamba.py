"""Inference throughput of freqlens' Spectral VMamba, alone or against the official code (zoo contract §7).

Ours alone (no official code needed)::

    python benchmarks/spectral_vmamba.py --device cuda

Against the official implementation at the pinned commit: extract it and build its CUDA scan kernel in
place (``spectral_vmamba_official.sh`` applies the CUDA-13 build shims, none touching the math; the
extension ``selective_scan_cuda_oflex`` is then imported from ``kernels/selective_scan``)::

    benchmarks/spectral_vmamba_official.sh prepare <git dir of Sahardastani/spectral_vmamba> .official/spectral_vmamba
    benchmarks/spectral_vmamba_official.sh build .official/spectral_vmamba          # on the GPU machine
    python benchmarks/spectral_vmamba.py --official-src .official/spectral_vmamba --device cuda

The official ``vmamba.py`` imports ``einops``, ``timm`` and ``triton`` (its Triton cross-scan kernels are
defined, not run, on this path), which must be installed; ``fvcore`` and ``matplotlib`` are replaced by
stubs when not installed (FLOP counter only / imported unused).

Both models get the same weights (ours, copied into the official one; its ResNet-18 comes from torchvision
instead of a ``torch.hub`` download). The official stage-0 order is captured and injected into ours, and the
logits must agree; then eval-mode forwards are timed (CUDA events, warm-up excluded). One JSON line per
setting: images/s of each and the ratio ours / official. Note: importing the official ``vmamba.py`` sets
``torch.backends.cudnn.benchmark = deterministic = True`` for the process; both models are timed after it.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import sys
import types
from pathlib import Path

import timm
import torch
import torchvision

import freqlens  # noqa: F401  (registers spectral_vmamba_*)
from throughput import compare_throughput, rel_err  # noqa: E402  (benchmarks/ is on sys.path when run)

CONFIGS = {"spectral_vmamba_t": (2, 2, 5, 2), "spectral_vmamba_s": (2, 2, 15, 2), "spectral_vmamba_b": (2, 2, 15, 2)}


def official_model(src: Path, depths: tuple[int, ...]) -> torch.nn.Module:
    """The official ``VSSM`` as ``build_model(config)`` makes it (kwargs of ``spectral_vmamba_*_224.yaml``)."""
    torch.hub.load = lambda *args, **kwargs: torchvision.models.resnet18(weights=None)  # no download
    if "fvcore" not in sys.modules and importlib.util.find_spec("fvcore") is None:  # for VSSM.flops() only
        fvcore, nn_mod = types.ModuleType("fvcore"), types.ModuleType("fvcore.nn")
        nn_mod.FlopCountAnalysis = nn_mod.flop_count_str = nn_mod.flop_count = nn_mod.parameter_count = None
        fvcore.nn = nn_mod
        sys.modules.update({"fvcore": fvcore, "fvcore.nn": nn_mod})
    if "matplotlib" not in sys.modules and importlib.util.find_spec("matplotlib") is None:  # imported, never used
        mpl, pyplot = types.ModuleType("matplotlib"), types.ModuleType("matplotlib.pyplot")
        mpl.pyplot = pyplot
        sys.modules.update({"matplotlib": mpl, "matplotlib.pyplot": pyplot})
    for sub in ("kernels/selective_scan", "classification/models"):
        sys.path.insert(0, str(src / sub))
    importlib.import_module("selective_scan_cuda_oflex")  # csms6s.py swallows this ImportError; fail here instead
    vmamba = importlib.import_module("vmamba")
    return vmamba.VSSM(
        patch_size=16, in_chans=3, num_classes=1000, depths=list(depths), dims=256, ssm_d_state=1, ssm_ratio=2.0,
        ssm_dt_rank="auto", ssm_act_layer="silu", ssm_conv=1, ssm_conv_bias=False, ssm_drop_rate=0.0, ssm_init="v0",
        forward_type="v05_noz", top_k=4, knn=5, alpha=100, ambiguity=False, binary=False, k_group=8,
        division_rate=4, mode="RFN", dimension=("INCREASE",), csms6s_mode="NORMAL", mlp_ratio=4.0,
        mlp_act_layer="gelu", mlp_drop_rate=0.0, drop_path_rate=0.0, patch_norm=True, norm_layer="ln2d",
        downsample_version="v3", patchembed_version="v2", gmlp=False, use_checkpoint=False, posembed=False,
        imgsize=224,
    )


def agreement(ours: torch.nn.Module, official: torch.nn.Module, x: torch.Tensor) -> dict[str, float]:
    """Relative logit difference with the official stage-0 order injected into ours (float32)."""
    captured = []
    scan = official.layers[0].blocks[0].op.CrossScan
    handle = scan.register_forward_hook(lambda _m, _a, out: captured.append(out[1]))
    try:
        with torch.no_grad():
            ref = official(x)
            ours.set_scan_order(captured[0])
            out = ours(x)
    finally:
        handle.remove()
        ours.set_scan_order(None)
    return {"rel_err_injected_order": rel_err(out, ref)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="spectral_vmamba_t", choices=sorted(CONFIGS))
    parser.add_argument("--official-src", type=Path, help="root of the official repo at the pinned commit")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 32, 128])
    parser.add_argument("--size", type=int, nargs="+", default=[224, 256])
    parser.add_argument("--dtype", nargs="+", default=["float32", "bf16"], choices=["float32", "bf16"])
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args()

    device = torch.device(args.device)
    ours = timm.create_model(args.variant).eval().to(device)
    official = None
    if args.official_src is not None:
        official = official_model(args.official_src, CONFIGS[args.variant]).eval().to(device)
        official.load_state_dict(ours.state_dict(), strict=True)
        x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0)).to(device)
        print(json.dumps({"variant": args.variant, "device": str(device), **agreement(ours, official, x)}), flush=True)
    compare_throughput(ours, official, device, args.dtype, args.size, args.batch, args.iters, args.warmup,
                       variant=args.variant)


if __name__ == "__main__":
    main()
