"""Rank-collapse outputs: relative residual and effective rank against depth, and their CSV."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import matplotlib.pyplot as plt
import numpy as np

from freqlens.io.results import save_figure, write_csv
from freqlens.measures.rank_collapse import QUANTITIES
from freqlens.reports.figures import paper_style


def rank_depth_figure(result: dict[str, Any], kinds: Sequence[str], title: str) -> plt.Figure:
    """Left: relative residual (composite l1,inf and Frobenius); right: effective rank of X and centred X."""
    points = result["points"]
    depth = np.array([p["depth"] for p in points])
    kind_arr = np.array(kinds)
    panels = (
        ("relative residual ‖res(X)‖ / ‖X‖", (("residual_l1inf", "l1,∞", "-"), ("residual_fro", "Frobenius", "--"))),
        ("effective rank", (("effective_rank", "X", "-"), ("effective_rank_centred", "centred X", "--"))),
    )
    with paper_style():
        fig, axes = plt.subplots(1, 2, figsize=(6.4, 2.6), layout="constrained")
        for ax, (label, series) in zip(axes, panels, strict=True):
            for kind in dict.fromkeys(kinds):
                mask = kind_arr == kind
                for key, name, style in series:
                    values = np.array([p[key] for p in points])
                    suffix = f" ({kind})" if len(set(kinds)) > 1 else ""
                    ax.plot(depth[mask], values[mask], style, marker="o", ms=2.5, lw=1.0, label=name + suffix)
            ax.set_xlabel("normalised depth")
            ax.set_ylabel(label)
            ax.legend(frameon=False)
        axes[0].set_ylim(bottom=0)
        axes[1].set_yscale("log")
        fig.suptitle(title)
    return fig


def write_rank_outputs(directory: Path, result: dict[str, Any], kinds: Sequence[str], title: str) -> list[dict[str, Any]]:
    """Write ``rank_collapse.csv`` and the depth figure; returns the per-point JSON records."""
    columns = ["name", "depth", "tokens", "channels", "images"] + [c for q in QUANTITIES for c in (q, f"{q}_std")]
    write_csv(directory / "rank_collapse.csv", ["point", *columns[1:], "kind"],
              [[p[c] for c in columns] + [kind] for p, kind in zip(result["points"], kinds, strict=True)])
    save_figure(rank_depth_figure(result, kinds, title), directory, "rank_collapse")
    return [{**p, "kind": kind} for p, kind in zip(result["points"], kinds, strict=True)]
