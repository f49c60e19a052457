"""Comparison outputs: every model's Δ log amplitude against depth in one figure, and the Grad-CAM maps of
the same images side by side, with a CSV of the curves."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import matplotlib.pyplot as plt
import numpy as np

from freqlens.io.results import save_figure, write_csv
from freqlens.reports.figures import MARKERS, paper_style
from freqlens.reports.gradcam_outputs import GRID_IMAGES, overlay

COLUMNS = ("model", "point", "normalized_depth", "delta_log_amplitude", "hf_fraction")


def spectrum_comparison_figure(curves: dict[str, tuple[Sequence[float], Sequence[float]]],
                               title: str = "spectrum: Δ log amplitude vs depth",
                               size: tuple[float, float] = (4.2, 3.0)) -> plt.Figure:
    """Δ log amplitude at the highest diagonal frequency vs normalised depth, one line per model (Park & Kim
    2022, Fig. 2b); the figure script for the paper draws it too, at a column's width."""
    with paper_style():
        fig, ax = plt.subplots(figsize=size, layout="constrained")
        for i, (label, (depth, delta)) in enumerate(curves.items()):
            # colours from paper_style's Okabe-Ito cycle
            ax.plot(depth, delta, marker=MARKERS[i % len(MARKERS)], ms=3, lw=1.0, label=label)
        ax.set_xlim(-0.03, 1.03)
        ax.set_xlabel("normalised depth")
        ax.set_ylabel("Δ log amplitude at highest freq.")
        ax.set_title(title)
        ax.legend(frameon=False)
    return fig


def gradcam_comparison_figure(cams: dict[str, dict[str, Any]]) -> plt.Figure:
    """One row per image, one column per model: each model's map over its own input."""
    labels = list(cams)
    first = cams[labels[0]]
    n = min(GRID_IMAGES, len(first["paths"]))
    with paper_style():
        fig, axes = plt.subplots(n, len(labels), figsize=(1.9 * len(labels) + 0.4, 1.9 * n + 0.5), layout="constrained",
                                 squeeze=False)
        for col, label in enumerate(labels):
            cam = cams[label]
            for row in range(n):
                ax = axes[row, col]
                ax.imshow(overlay(cam["images"][row].numpy(), cam["maps"][row].numpy()))
                ax.set_xticks([])
                ax.set_yticks([])
                ax.set_title(f"class {int(cam['classes'][row])}", fontsize=6)
                if row == 0:
                    ax.set_title(f"{label}\n{cam['method']} at {cam['target'].name}\nclass {int(cam['classes'][row])}",
                                 fontsize=6)
                if col == 0:
                    ax.set_ylabel(Path(first["paths"][row]).name[:20], fontsize=6)
        fig.suptitle("Grad-CAM, same images")
    return fig


def write_comparison_outputs(directory: Path, runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Write ``compare_spectrum.csv`` and the two comparison figures; ``runs[label]`` holds that model's
    ``spectrum`` and ``gradcam`` (MeasureReports). Returns the JSON records."""
    curves = {}
    rows = []
    for label, run in runs.items():
        result = run["spectrum"].result
        depth = np.array(result.normalized_depth())
        delta = np.array([p.delta_log_amplitude for p in result.points])
        curves[label] = (depth, delta)
        rows += [(label, p.name, float(d), p.delta_log_amplitude, p.hf_fraction)
                 for p, d in zip(result.points, depth, strict=True)]
    write_csv(directory / "compare_spectrum.csv", list(COLUMNS), rows)
    save_figure(spectrum_comparison_figure(curves), directory, "compare_spectrum_delta_vs_depth")
    save_figure(gradcam_comparison_figure({label: run["gradcam"].result for label, run in runs.items()}), directory,
                "compare_gradcam")
    return {"models": list(runs), "spectrum": [dict(zip(COLUMNS, r)) for r in rows]}
