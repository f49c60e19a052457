"""Cost of the ERF and interaction-order measures against the bare model work they stand on.

    python benchmarks/measures.py erf --model resnet50 --images 50 --size 1024 --batch-sizes 5 10 25
    python benchmarks/measures.py interactions --models convnext_tiny deit_small_patch16_224 --dtype bfloat16

``erf``: the measure over N images at each batch size against a bare forward + backward of the same
objective (relu of the last-stage centre, summed) over the same images; the ratio compares each side at
its best batch size. ``interactions``: masked forwards per second of the engine (one image, a reduced
pair/context count of the preset, so it finishes quickly) against plain forwards per second at the same
batch, and the images per hour the full preset would take. Inputs are random tensors on the device.
Prints one JSON line per measurement.
"""
from __future__ import annotations

import argparse
import json
import time

import timm
import torch

import freqlens  # noqa: F401  (registers the zoo)
from freqlens.measures.erf import EffectiveReceptiveField
from freqlens.measures.interaction_order import InteractionOrder
from freqlens.runner import DTYPES, precision
from throughput import device_name  # noqa: E402  (benchmarks/ is on sys.path when run)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _seconds(fn, device: torch.device, repeats: int = 2) -> float:
    """Best wall time of ``fn`` over ``repeats`` runs, after one warm-up."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return best


def bench_erf(args: argparse.Namespace, device: torch.device) -> None:
    model = timm.create_model(args.model).eval().to(device)
    for p in model.parameters():
        p.requires_grad_(False)
    images = torch.randn(args.images, 3, args.size, args.size, device=device)

    def bare(batch: int) -> None:
        for x in images.split(batch):
            x = x.clone().requires_grad_(True)
            feats = model.forward_features(x)
            h, w = feats.shape[-2:]
            torch.autograd.grad(feats[:, :, h // 2, w // 2].relu().sum(), x)

    def measure(batch: int) -> None:
        erf = EffectiveReceptiveField(input_size=args.size)
        for x in images.split(batch):
            erf.update(model, x)
        erf.compute()

    rows = []
    for batch in args.batch_sizes:
        rows.append({"batch": batch, "bare_s": _seconds(lambda: bare(batch), device), "erf_s": _seconds(lambda: measure(batch), device)})
        print(json.dumps({"bench": "erf", "model": args.model, "images": args.images, "size": args.size, **rows[-1]}), flush=True)
    best_bare, best_erf = min(r["bare_s"] for r in rows), min(r["erf_s"] for r in rows)
    print(json.dumps({"bench": "erf", "model": args.model, "best_bare_s": round(best_bare, 3), "best_erf_s": round(best_erf, 3),
                      "ratio": round(best_erf / best_bare, 3), "device": device_name(device)}), flush=True)


def bench_interactions(args: argparse.Namespace, device: torch.device) -> None:
    dtype = DTYPES[args.dtype]
    for name in args.models:
        model = timm.create_model(name).eval().to(device)
        size = timm.data.resolve_data_config({}, model=model)["input_size"]
        image = torch.randn(1, *size, device=device)
        batch = torch.randn(args.batch_size, *size, device=device)

        def plain() -> None:
            with torch.no_grad(), precision(model, device, dtype):
                for _ in range(args.plain_batches):
                    model(batch)

        measure = InteractionOrder.from_preset(args.preset, pairs=args.pairs, contexts=args.contexts, target="predicted",
                                               batch_size=args.batch_size)
        forwards = 4 * args.pairs * args.contexts * len(measure.orders)

        def engine() -> None:
            with precision(model, device, dtype):
                measure.update(model, image)

        fps_plain = args.plain_batches * args.batch_size / _seconds(plain, device)
        fps_engine = forwards / _seconds(engine, device)
        full = InteractionOrder.presets[args.preset]
        per_image = 4 * full["pairs"] * full["contexts"] * len(measure.orders)
        print(json.dumps({"bench": "interactions", "model": name, "dtype": args.dtype, "batch": args.batch_size,
                          "forwards_per_s_plain": round(fps_plain), "forwards_per_s_engine": round(fps_engine),
                          "engine_vs_plain": round(fps_engine / fps_plain, 3), "preset": args.preset,
                          "forwards_per_image": per_image, "images_per_hour": round(3600 * fps_engine / per_image, 1),
                          "device": device_name(device)}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    sub = parser.add_subparsers(dest="bench", required=True)
    erf = sub.add_parser("erf")
    erf.add_argument("--model", default="resnet50")
    erf.add_argument("--images", type=int, default=50)
    erf.add_argument("--size", type=int, default=1024)
    erf.add_argument("--batch-sizes", type=int, nargs="+", default=[5, 10, 25])
    inter = sub.add_parser("interactions")
    inter.add_argument("--models", nargs="+", default=["convnext_tiny", "deit_small_patch16_224"])
    inter.add_argument("--preset", default="moganet2024")
    inter.add_argument("--pairs", type=int, default=10)
    inter.add_argument("--contexts", type=int, default=10)
    inter.add_argument("--batch-size", type=int, default=512)
    inter.add_argument("--plain-batches", type=int, default=10)
    inter.add_argument("--dtype", choices=list(DTYPES), default="bfloat16")
    args = parser.parse_args()
    torch.backends.cudnn.benchmark = True
    device = torch.device(args.device)
    bench_erf(args, device) if args.bench == "erf" else bench_interactions(args, device)


if __name__ == "__main__":
    main()
