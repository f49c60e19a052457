"""Interaction-order outputs: the strength curve over the order ratio m/n (Deng et al. Fig. 1) and its CSV."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from freqlens.io.results import save_figure, write_csv
from freqlens.reports.figures import paper_style


def interaction_curve_figure(result: dict[str, Any], title: str) -> plt.Figure:
    """J^(m) / mean_m J^(m) (``draw_figures.py``) against r = m / (n - 2), with ±1 s.d. of |I| scaled alike."""
    ratios = np.array(result["ratios"])
    mean_abs = np.array(result["mean_abs"])
    scale = mean_abs.mean() if mean_abs.mean() > 0 else 1.0
    spread = np.array(result["std_abs"]) / scale
    strength = mean_abs / scale
    with paper_style():
        fig, ax = plt.subplots(figsize=(3.6, 2.6), layout="constrained")
        ax.fill_between(ratios, np.maximum(strength - spread, 0), strength + spread, alpha=0.2, lw=0)
        ax.plot(ratios, strength, marker="o", ms=3, lw=1.2)
        ax.set_xlim(0, 1)
        ax.set_ylim(bottom=0)
        ax.set_xticks(np.arange(0, 1.01, 0.2), [f"{r:.1f}n" for r in np.arange(0, 1.01, 0.2)])
        ax.set_xlabel("order m")
        ax.set_ylabel("interaction strength J(m) / mean")
        s = result["settings"]
        ax.set_title(f"{title}\n{result['images']} images, {s['grid']}x{s['grid']} players, "
                     f"{s['pairs']} pairs x {s['contexts']} contexts", fontsize=8)
    return fig


def write_interaction_outputs(directory: Path, result: dict[str, Any], title: str) -> dict[str, Any]:
    """Write ``interactions.csv`` and the curve figure; returns the JSON record."""
    keys = ("ratios", "orders", "mean_abs", "std_abs", "mean", "strength", "strength_max")
    write_csv(directory / "interactions.csv", ["ratio", "order", "mean_abs", "std_abs", "mean", "strength", "strength_max"],
              zip(*(result[k] for k in keys), strict=True))
    save_figure(interaction_curve_figure(result, title), directory, "interaction_strength")
    return {k: result[k] for k in (*keys, "images")}
