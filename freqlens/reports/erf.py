"""ERF outputs: the RepLKNet-style heat map with its area-ratio squares, a CSV of ratios, the maps as npz."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle

from freqlens.io.results import save_figure, write_csv
from freqlens.reports.figures import OKABE_ITO, paper_style


def erf_heatmap_figure(point: dict[str, Any], title: str) -> plt.Figure:
    """``log10(map + 1) / max`` (analyze_erf.py) with the centred squares holding 20/30/50/99 % of it."""
    heat = point["heatmap"].numpy()
    h, w = heat.shape
    with paper_style():
        fig, ax = plt.subplots(figsize=(3.4, 3.6), layout="constrained")
        image = ax.imshow(heat, cmap="RdYlGn", vmin=0, vmax=1, interpolation="nearest")
        labels = []
        for colour, (t, side) in zip(OKABE_ITO[4:] + OKABE_ITO, point["sides"].items()):
            if side is None:
                labels.append(f"{t:.0%}: not reached")
                continue
            corner = (w // 2 - side // 2 - 0.5, h // 2 - side // 2 - 0.5)
            ax.add_patch(Rectangle(corner, side, side, fill=False, lw=0.8, ec=colour))
            labels.append(f"{t:.0%}: {point['area_ratios'][t]:.1%}")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{title}\nERF of {point['name'] or 'output'} ({point['images']} images)")
        ax.set_xlabel("area ratio  " + "  ".join(labels[:2]) + "\n" + "  ".join(labels[2:]))
        fig.colorbar(image, ax=ax, orientation="horizontal", location="top", shrink=0.8, label="log10(g + 1) / max")
    return fig


def write_erf_outputs(directory: Path, result: dict[str, Any], title: str) -> list[dict[str, Any]]:
    """Write ``erf_area_ratios.csv``, ``erf_maps.npz`` and one heat map per point; returns JSON records."""
    write_csv(directory / "erf_area_ratios.csv", ["point", "threshold", "side", "area_ratio", "images", "skipped"],
              [(p["name"], t, p["sides"][t], p["area_ratios"][t], p["images"], p["skipped"])
               for p in result["points"] for t in p["area_ratios"]])
    np.savez_compressed(directory / "erf_maps.npz",
                        **{f"{p['name']}/mean_map": p["mean_map"].numpy() for p in result["points"]},
                        **{f"{p['name']}/heatmap": p["heatmap"].numpy() for p in result["points"]})
    for i, point in enumerate(result["points"]):
        save_figure(erf_heatmap_figure(point, title), directory, f"erf_heatmap_{i:02d}")
    return [
        {"name": p["name"], "images": p["images"], "skipped": p["skipped"], "shape": list(p["mean_map"].shape),
         "area_ratios": {str(t): r for t, r in p["area_ratios"].items()}, "sides": {str(t): s for t, s in p["sides"].items()}}
        for p in result["points"]
    ]
