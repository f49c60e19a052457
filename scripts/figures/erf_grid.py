"""RepLKNet (CVPR 2022, Fig. 1) style: a grid of effective-receptive-field heat maps, one column per model
and one row per probe point, each titled with the area ratio that holds 99 % of the contribution.

Each map is ``log10(g + 1) / max`` of the mean input gradient of the probe point's centre
(``freqlens.measures.erf``, RepLKNet's ``visualize_erf.py`` / ``analyze_erf.py`` protocol), at
``--input-size`` px (default: each model's own input size).

Example:
    python scripts/figures/erf_grid.py --model probe_cnn probe_vit \\
        --ckpt freqlens/data/checkpoints/probe_cnn_hf.safetensors freqlens/data/checkpoints/probe_vit_hf.safetensors \\
        --limit 8 --out docs/figures
"""
from __future__ import annotations

import sys

import matplotlib.pyplot as plt

import _common
import freqlens.api as fl
from freqlens.reports.figures import paper_style

THRESHOLD = 0.99  # the area ratio printed under each map (RepLKNet Table 3 reports t = 20 % ... 99 %)


def figure(columns: list[tuple[str, list[dict]]], images: int) -> plt.Figure:
    """``columns``: (label, ERF result points) per model; rows are the points' positions."""
    rows = max(len(points) for _, points in columns)
    with paper_style():
        fig, axes = plt.subplots(rows, len(columns), figsize=(1.9 * len(columns) + 0.5, 2.0 * rows + 0.5),
                                 layout="constrained", squeeze=False)
        image = None
        for col, (label, points) in enumerate(columns):
            for row in range(rows):
                ax = axes[row][col]
                ax.set_xticks([])
                ax.set_yticks([])
                ax.spines[:].set_visible(False)
                if row >= len(points):
                    ax.set_axis_off()
                    continue
                point = points[row]
                image = ax.imshow(point["heatmap"].numpy(), cmap="RdYlGn", vmin=0, vmax=1, interpolation="nearest")
                ratio = point["area_ratios"].get(THRESHOLD)
                ax.set_title(f"{label}\n{point['name']}" if row == 0 else point["name"], fontsize=8)
                ax.set_xlabel(f"{THRESHOLD:.0%} area: " + ("not reached" if ratio is None else f"{ratio:.1%}"),
                              fontsize=8)
        fig.colorbar(image, ax=axes, shrink=0.8, label="log10(g + 1) / max")
        fig.suptitle(f"Effective receptive fields ({images} images)")
    return fig


def main(argv: list[str] | None = None) -> None:
    p = _common.parser(__doc__)
    p.add_argument("--input-size", type=int, default=None, help="square input size in px (default: the model's)")
    p.add_argument("--probes", nargs="+", default=(), help="probe-point globs (default: the last stage)")
    p.add_argument("--batch-size", type=int, default=8)
    args = p.parse_args(argv)
    images = _common.image_set(args)
    columns = []
    for subject in _common.subjects(args):
        size = args.input_size or subject.loaded.data_config()["input_size"][-1]
        result = fl.erf(subject.loaded, images, probes=args.probes, input_size=size, batch_size=args.batch_size,
                        device=args.device, seed=args.seed, progress=False).result
        columns.append((subject.label, result["points"]))
    _common.save(figure(columns, len(images)), args, "erf_grid")


if __name__ == "__main__":
    main(sys.argv[1:])
