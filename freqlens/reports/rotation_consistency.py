"""Rotation outputs: output agreement bars per angle, per-point invariance/equivariance vs depth, CSVs."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from freqlens.io.results import save_figure, write_csv
from freqlens.measures.rotation_consistency import OUTPUT_QUANTITIES
from freqlens.reports.figures import paper_style

_LABELS = {"agreement": "top-1 agreement", "correct": "top-1 accuracy", "logit_cosine": "logit cosine", "kl": "KL(p ‖ p_rot)"}


def rotation_bars_figure(result: dict[str, Any], title: str) -> plt.Figure:
    """One panel per output quantity, one bar per rotation angle (accuracy also at 0°, when labelled)."""
    angles = result["angles"]
    shown = [q for q in OUTPUT_QUANTITIES if not all(math.isnan(v) for v in result["outputs"][q])]
    with paper_style():
        fig, axes = plt.subplots(1, len(shown), figsize=(1.8 * len(shown) + 0.6, 2.4), layout="constrained", squeeze=False)
        for ax, quantity in zip(axes[0], shown, strict=True):
            values = result["outputs"][quantity]
            first = 0 if quantity == "correct" else 1  # the unrotated pass agrees with itself by definition
            ax.bar([f"{a:g}°" for a in angles[first:]], values[first:], color=[f"C{i}" for i in range(first, len(angles))])
            ax.set_title(_LABELS[quantity])
            if quantity != "kl":
                ax.set_ylim(0, 1.05)
        fig.suptitle(f"{title} ({result['settings']['interpolation']} rotations, {result['images']} images)")
    return fig


def rotation_points_figure(result: dict[str, Any], title: str) -> plt.Figure:
    """Invariance (cosine of pooled features) and equivariance (cosine of f(rot x), rot f(x)) vs depth."""
    points = result["points"]
    depth = np.linspace(0, 1, len(points)) if len(points) > 1 else np.zeros(len(points))
    with paper_style():
        fig, axes = plt.subplots(1, 2, figsize=(6.4, 2.6), layout="constrained", sharey=True)
        for ax, key in zip(axes, ("invariance", "equivariance"), strict=True):
            for slot, angle in enumerate(result["angles"][1:]):
                ax.plot(depth, [p[key][slot] for p in points], marker="o", ms=2.5, lw=1.0, label=f"{angle:g}°")
            ax.set_xlabel("normalised depth")
            ax.set_ylabel(f"{key} (cosine)")
            ax.legend(frameon=False)
        fig.suptitle(title)
    return fig


def write_rotation_outputs(directory: Path, result: dict[str, Any], title: str) -> dict[str, Any]:
    """Write ``rotation_outputs.csv``, ``rotation_points.csv`` and the figures; returns the JSON record."""
    angles = result["angles"]
    write_csv(directory / "rotation_outputs.csv", ["angle", *OUTPUT_QUANTITIES],
              [(a, *(result["outputs"][q][i] for q in OUTPUT_QUANTITIES)) for i, a in enumerate(angles)])
    write_csv(directory / "rotation_points.csv", ["point", "angle", "invariance", "equivariance"],
              [(p["name"], a, p["invariance"][i], p["equivariance"][i]) for p in result["points"]
               for i, a in enumerate(angles[1:])])
    save_figure(rotation_bars_figure(result, title), directory, "rotation_outputs")
    if result["points"]:
        save_figure(rotation_points_figure(result, title), directory, "rotation_points")
    return {k: result[k] for k in ("angles", "outputs", "points", "images", "labelled")}
