"""Deng et al. (ICLR 2022, Fig. 1) / MogaNet (ICLR 2024, Fig. 3) style: relative interaction strength
J(m) / mean_m J(m) against the interaction order m / n, one curve per model.

A model that works on mid-order interactions bulges in the middle; one that only uses very local or
very global context leans to the ends (``freqlens.measures.interaction_order``). ``--grid``, ``--pairs``
and ``--contexts`` shrink the preset's sampling for quick runs.

Example:
    python scripts/figures/interaction_curves.py --model probe_cnn probe_cnn \\
        --ckpt freqlens/data/checkpoints/probe_cnn_hf.safetensors freqlens/data/checkpoints/probe_cnn_lf.safetensors \\
        --limit 4 --grid 8 --pairs 16 --contexts 16 --out docs/figures
"""
from __future__ import annotations

import sys

import matplotlib.pyplot as plt
import numpy as np

import _common
import freqlens.api as fl
from freqlens.reports.figures import MARKERS, paper_style


def figure(curves: list[tuple[str, dict]]) -> plt.Figure:
    """``curves``: (label, interactions result) per model."""
    with paper_style():
        fig, ax = plt.subplots(figsize=(3.4, 2.6), layout="constrained")
        for i, (label, result) in enumerate(curves):
            strength = np.array(result["mean_abs"])
            strength = strength / strength.mean() if strength.mean() > 0 else strength
            ax.plot(result["ratios"], strength, marker=MARKERS[i % len(MARKERS)], ms=3, lw=1.2, label=label)
        ax.set_xlim(0, 1)
        ax.set_ylim(bottom=0)
        ax.set_xticks(np.arange(0, 1.01, 0.2), [f"{r:.1f}n" for r in np.arange(0, 1.01, 0.2)])
        ax.set_xlabel("interaction order m")
        ax.set_ylabel("relative strength J(m)")
        s, n = curves[0][1]["settings"], curves[0][1]["images"]
        ax.set_title(f"{n} images, {s['grid']}x{s['grid']} players, {s['pairs']} pairs x {s['contexts']} contexts",
                     fontsize=8)
        ax.legend(frameon=False)
    return fig


def main(argv: list[str] | None = None) -> None:
    p = _common.parser(__doc__)
    p.add_argument("--preset", default="moganet2024", help="deng2022 or moganet2024")
    p.add_argument("--grid", type=int, default=None, help="players per side (default: the preset's)")
    p.add_argument("--pairs", type=int, default=None, help="player pairs per image (default: the preset's)")
    p.add_argument("--contexts", type=int, default=None, help="contexts per pair and order (default: the preset's)")
    p.add_argument("--batch-size", type=int, default=256, help="masked copies per forward pass")
    args = p.parse_args(argv)
    images = _common.image_set(args)
    curves = []
    for subject in _common.subjects(args):
        result = fl.interactions(subject.loaded, images, preset=args.preset, grid=args.grid, pairs=args.pairs,
                                 contexts=args.contexts, batch_size=args.batch_size, device=args.device,
                                 seed=args.seed, progress=False).result
        curves.append((subject.label, result))
    _common.save(figure(curves), args, "interaction_curves")


if __name__ == "__main__":
    main(sys.argv[1:])
