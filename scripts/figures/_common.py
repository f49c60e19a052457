"""What every paper-figure script shares: paired ``--model``/``--ckpt`` arguments, model and image loading,
and writing a figure as PDF + SVG + PNG in the house style (``freqlens.reports.figures``).

The scripts import this module by name: Python puts a script's own folder first on ``sys.path``.
"""
from __future__ import annotations

import argparse
import dataclasses
import warnings
from pathlib import Path

import numpy as np
import timm
import torch

import freqlens.api as fl
from freqlens.io.images import ImageDataset, ImageSet, find_images, sample_images_dir
from freqlens.io.results import save_figure
from freqlens.loading import LoadedModel
from freqlens.reports.gradcam_outputs import unnormalised
from freqlens.runner import resolve_device

RANDOM = "random"  # a --ckpt value meaning "no checkpoint": random weights, labelled as such


@dataclasses.dataclass
class Subject:
    """One model of a figure: its legend label and the loaded model."""

    label: str
    loaded: LoadedModel


def parser(description: str | None) -> argparse.ArgumentParser:
    """Arguments every figure script takes; scripts add their measure's tiny-setting flags."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", nargs="+", required=True, help="timm registry names (or module:factory), one per series")
    p.add_argument("--ckpt", nargs="+", required=True,
                   help=f"one checkpoint per --model, in the same order ('{RANDOM}' for random weights)")
    p.add_argument("--label", nargs="+", help="legend label per model (default: the checkpoint's file stem)")
    p.add_argument("--images", default=None, help="folder, glob or .txt list (default: the bundled sample images)")
    p.add_argument("--limit", type=int, default=None, help="use at most this many images (seeded subset)")
    p.add_argument("--out", type=Path, required=True, help="output folder (created if missing)")
    p.add_argument("--name", default=None, help="file stem of the figure (default: the script's name)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--seed", type=int, default=0)
    return p


def subjects(args: argparse.Namespace) -> list[Subject]:
    """Load each (model, checkpoint) pair; the two lists must have the same length."""
    if len(args.model) != len(args.ckpt):
        raise SystemExit(f"error: {len(args.model)} --model values but {len(args.ckpt)} --ckpt values; pass one "
                         f"checkpoint per model (or '{RANDOM}')")
    if args.label is not None and len(args.label) != len(args.model):
        raise SystemExit(f"error: {len(args.label)} --label values for {len(args.model)} models")
    device = resolve_device(args.device)
    out = []
    for i, (name, ckpt) in enumerate(zip(args.model, args.ckpt, strict=True)):
        random_weights = ckpt == RANDOM
        with warnings.catch_warnings():
            if random_weights:
                warnings.simplefilter("ignore")  # the label already says "random"
            loaded = fl.load_model(name, None if random_weights else ckpt, device=device)
        label = args.label[i] if args.label else f"{name} (random)" if random_weights else Path(ckpt).stem
        out.append(Subject(label, loaded))
    return out


def image_set(args: argparse.Namespace) -> ImageSet:
    return find_images(args.images or sample_images_dir(), limit=args.limit, seed=args.seed)


def image_batch(subject: Subject, images: ImageSet) -> tuple[torch.Tensor, torch.Tensor | None]:
    """All ``images`` through the model's eval transform, on the model's device, and their labels (or None)."""
    transform = timm.data.create_transform(**subject.loaded.data_config(), is_training=False)
    dataset = ImageDataset(images, transform)
    x = torch.stack([dataset[i][0] for i in range(len(dataset))])
    labels = torch.tensor(images.labels) if images.has_labels else None
    return x.to(next(subject.loaded.model.parameters()).device), labels


def to_display(subject: Subject, x: torch.Tensor) -> np.ndarray:
    """Undo the model's normalisation: (B, C, H, W) inputs -> (B, H, W, C) pixels in [0, 1]."""
    config = subject.loaded.data_config()
    return unnormalised(x, config["mean"], config["std"]).numpy()


def save(fig, args: argparse.Namespace, default_stem: str) -> list[Path]:
    """Write the figure as ``<out>/<stem>.pdf/.svg/.png`` and print the paths."""
    args.out.mkdir(parents=True, exist_ok=True)
    paths = save_figure(fig, args.out, args.name or default_stem)
    for path in paths:
        print(path)
    return paths
