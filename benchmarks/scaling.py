"""Multi-process scaling of the spectrum measure and the interaction engine, through freqlens' own torchrun path.

    torchrun --nproc-per-node 1 benchmarks/scaling.py spectrum
    torchrun --nproc-per-node 2 benchmarks/scaling.py spectrum
    torchrun --nproc-per-node 1 benchmarks/scaling.py interactions
    torchrun --nproc-per-node 2 benchmarks/scaling.py interactions

The scaling is images_per_s at N=2 divided by images_per_s at N=1 (issue #8 asks for >= 1.8). Each rank
joins the process group through ``resolve_device``, takes every world-th of ``--images`` synthetic images
from its rank (as ``make_loader`` shards), already on its device so decoding is not timed, and runs them
through the API's own loops: ``runner.stream`` (lens, ``SpectralEnergy.update``) or
``runner.feed`` (``InteractionOrder.update`` per image, a reduced pair/context count of the preset), then
``measure.sync()``. The timed region lies between two barriers (after a device synchronize) and excludes a
warm-up batch per rank on a throwaway measure. Rank 0 prints one JSON line. Plain ``python`` runs one process.
Defaults: spectrum 16384 images at batch 128 in bf16 (~10 GB of inputs, ~1.5 s at N=1 on an H200 going by the
spectrum overhead table); interactions 64 images x 13,312 masked forwards at batch 512 (~45 s at N=1).
CPU check (gloo): ``OMP_NUM_THREADS=1 torchrun --nproc-per-node 2 benchmarks/scaling.py spectrum --device cpu
--model probe_cnn --images 64 --batch-size 8``.
"""
from __future__ import annotations

import argparse
import json
import time
import warnings

import torch
import torch.distributed as dist

from freqlens.api import probe_points
from freqlens.loading import load_model
from freqlens.measures.interaction_order import InteractionOrder
from freqlens.measures.spectral_energy import SpectralEnergy
from freqlens.runner import DTYPES, feed, rank_and_world, resolve_device, stream
from throughput import device_name  # noqa: E402  (benchmarks/ is on sys.path when run)


def _barrier(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    if dist.is_initialized():
        dist.barrier()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bench", choices=["spectrum", "interactions"])
    parser.add_argument("--model", default="deit_small_patch16_224")
    parser.add_argument("--images", type=int, help="images over all ranks (default: 16384 spectrum, 64 interactions)")
    parser.add_argument("--batch-size", type=int, help="images per forward for spectrum (default 128), masked copies "
                        "per forward for interactions (default 512)")
    parser.add_argument("--dtype", choices=list(DTYPES), default="bfloat16")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--size", type=int, help="input side (default: the model's own)")
    parser.add_argument("--preset", help="the measure's preset (default: parkkim2022 / moganet2024)")
    parser.add_argument("--pairs", type=int, default=16, help="interactions: pairs per image (16 x 16 x 4 x 13 = 26 x 512)")
    parser.add_argument("--contexts", type=int, default=16, help="interactions: contexts per pair and order")
    args = parser.parse_args()
    spectrum = args.bench == "spectrum"
    total = args.images or (16384 if spectrum else 64)
    batch = args.batch_size or (128 if spectrum else 512)
    preset = args.preset or ("parkkim2022" if spectrum else "moganet2024")
    torch.backends.cudnn.benchmark = True

    device, dtype = resolve_device(args.device), DTYPES[args.dtype]  # joins torchrun's process group
    rank, world = rank_and_world()
    if total < world:
        raise SystemExit(f"--images {total} leaves a rank without images (world size {world})")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random weights: the cost is the same
        loaded = load_model(args.model, device=device)
    model, size = loaded.model, tuple(loaded.data_config()["input_size"])
    if args.size:
        size = (size[0], args.size, args.size)
    generator = torch.Generator(device).manual_seed(rank)
    images = torch.randn(len(range(rank, total, world)), *size, generator=generator, device=device)  # make_loader's share
    labels = torch.zeros(len(images), dtype=torch.long, device=device)
    per_call = batch if spectrum else 1  # the API feeds the interaction engine one image at a time
    batches = list(zip(images.split(per_call), labels.split(per_call), strict=True))

    if spectrum:
        points = probe_points(model, size)

        def run(part: list) -> SpectralEnergy:
            measure = SpectralEnergy.from_preset(preset)
            stream(model, points, part, lambda point, feats: measure.update({point.name: feats}), device=device,
                   dtype=dtype, progress=False)
            return measure
    else:
        def run(part: list) -> InteractionOrder:
            measure = InteractionOrder.from_preset(preset, pairs=args.pairs, contexts=args.contexts, target="predicted",
                                                   batch_size=batch)
            feed(model, part, lambda x, _labels, indices: measure.update(model, x, None, indices), device=device,
                 dtype=dtype, labelled=False, progress=False)
            return measure

    run(batches[:1]).sync()  # warm-up: kernels, autotuning, the process group's first collectives
    _barrier(device)
    start = time.perf_counter()
    measure = run(batches)
    measure.sync()
    _barrier(device)
    seconds = time.perf_counter() - start

    seen = torch.tensor(float(len(images)), dtype=torch.float64, device=device)
    if dist.is_initialized():
        dist.all_reduce(seen)
    result = {"bench": args.bench, "model": args.model, "world_size": world, "images": int(seen), "size": size[-1],
              "batch": batch, "dtype": args.dtype, "preset": preset, "seconds": round(seconds, 3),
              "images_per_s": round(total / seconds, 2)}
    if spectrum:
        result["probe_points"] = len(points)
    else:
        forwards = 4 * args.pairs * args.contexts * len(measure.orders)  # masked copies per image
        result.update(pairs=args.pairs, contexts=args.contexts, masked_forwards_per_image=forwards,
                      masked_forwards_per_s=round(total * forwards / seconds), measured_images=int(measure.images))
    result["device"] = device_name(device)
    if rank == 0:
        print(json.dumps(result), flush=True)
    if dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
