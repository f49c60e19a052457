"""Grad-CAM grid (Selvaraju et al., ICCV 2017, Fig. 1 style): one row per image, the input in the first
column and each model's class-activation map over it in the next ones, for the class the model predicts.

Maps are taken at each model's default Grad-CAM layer (``model.gradcam_target``, see
``freqlens.reports.gradcam``) or at ``--target``, upsampled to the input and min-max scaled per image.
A class-token ViT's last block reaches the logits only through the class token, so its patch tokens get
no gradient and the map is empty: pass ``--target blocks.<last>.norm1`` for such a model.

Example:
    python scripts/figures/gradcam_grid.py --model probe_cnn probe_cnn \\
        --ckpt freqlens/data/checkpoints/probe_cnn_hf.safetensors freqlens/data/checkpoints/probe_cnn_lf.safetensors \\
        --limit 4 --out docs/figures
"""
from __future__ import annotations

import sys

import matplotlib.pyplot as plt
import numpy as np

import _common
from freqlens.reports.figures import paper_style
from freqlens.reports.gradcam import CamResult, gradcam
from freqlens.reports.gradcam_outputs import MAP_CMAP

DEFAULT = "default"  # a --target value meaning the model's own default layer


def figure(inputs: np.ndarray, columns: list[tuple[str, np.ndarray, CamResult]], method: str) -> plt.Figure:
    """``inputs``: (B, H, W, 3) shown pixels; ``columns``: (label, (B, H, W, 3) pixels, CAM result) per model."""
    rows, cols = inputs.shape[0], len(columns) + 1
    with paper_style():
        fig, axes = plt.subplots(rows, cols, figsize=(1.5 * cols + 0.4, 1.5 * rows + 0.4), layout="constrained",
                                 squeeze=False)
        image = None
        for row in range(rows):
            axes[row][0].imshow(inputs[row], interpolation="nearest")
            for col, (label, pixels, cam) in enumerate(columns, start=1):
                ax = axes[row][col]
                ax.imshow(pixels[row].mean(axis=-1), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
                image = ax.imshow(cam.maps[row].numpy(), cmap=MAP_CMAP, vmin=0, vmax=1, alpha=0.6,
                                  interpolation="bilinear")
                ax.set_xlabel(f"class {int(cam.classes[row])}", fontsize=7, labelpad=1)
                if row == 0:
                    ax.set_title(f"{label}\n{cam.target.name}", fontsize=8)
        axes[0][0].set_title("input", fontsize=8)
        for ax in axes.flat:
            ax.set_xticks([])
            ax.set_yticks([])
            ax.spines[:].set_visible(False)
        fig.colorbar(image, ax=axes, shrink=0.6, label=f"{method} (scaled per image)")
    return fig


def main(argv: list[str] | None = None) -> None:
    p = _common.parser(__doc__)
    p.add_argument("--method", default="gradcam", help="gradcam, gradcam++, xgradcam, layercam, eigencam, scorecam")
    p.add_argument("--target", nargs="+", default=None,
                   help=f"Grad-CAM layer (module path) per model; '{DEFAULT}' keeps the model's default")
    args = p.parse_args(argv)
    images = _common.image_set(args)
    targets = args.target or [DEFAULT] * len(args.model)
    if len(targets) != len(args.model):
        raise SystemExit(f"error: {len(targets)} --target values for {len(args.model)} models")
    columns, inputs = [], None
    for subject, target in zip(_common.subjects(args), targets, strict=True):
        x, _labels = _common.image_batch(subject, images)
        pixels = _common.to_display(subject, x)
        inputs = pixels if inputs is None else inputs
        cam = gradcam(subject.loaded.model, x, target=None if target == DEFAULT else target, method=args.method)
        columns.append((subject.label, pixels, cam))
    _common.save(figure(inputs, columns, args.method), args, "gradcam_grid")


if __name__ == "__main__":
    main(sys.argv[1:])
