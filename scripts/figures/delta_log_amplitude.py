"""Park & Kim (ICLR 2022, Fig. 2b) style: Δ log amplitude of the feature maps vs normalised depth, one
series per model.

Δ log amplitude is the log amplitude at the highest diagonal frequency minus that at zero frequency,
averaged over channels and images (``freqlens.measures.spectral_energy``); higher means the layer keeps
more high-frequency content. Each probe point is one marker.

Example:
    python scripts/figures/delta_log_amplitude.py --model probe_cnn probe_cnn \\
        --ckpt freqlens/data/checkpoints/probe_cnn_hf.safetensors freqlens/data/checkpoints/probe_cnn_lf.safetensors \\
        --limit 8 --out docs/figures
"""
from __future__ import annotations

import sys

import matplotlib.pyplot as plt

import _common
import freqlens.api as fl
from freqlens.reports.figures import MARKERS, paper_style


def figure(series: list[tuple[str, list[float], list[float]]], images: int) -> plt.Figure:
    """``series``: (label, normalised depths, Δ log amplitudes) per model."""
    with paper_style():
        fig, ax = plt.subplots(figsize=(3.4, 2.6), layout="constrained")
        for i, (label, depth, delta) in enumerate(series):
            ax.plot(depth, delta, marker=MARKERS[i % len(MARKERS)], ms=3.5, lw=1.2, label=label)
        ax.set_xlim(-0.03, 1.03)
        ax.set_xlabel("normalised depth")
        ax.set_ylabel("Δ log amplitude")
        ax.set_title(f"High-frequency content of features ({images} images)")
        ax.legend(frameon=False)
    return fig


def main(argv: list[str] | None = None) -> None:
    p = _common.parser(__doc__)
    p.add_argument("--batch-size", type=int, default=32)
    args = p.parse_args(argv)
    images = _common.image_set(args)
    series = []
    for subject in _common.subjects(args):
        result = fl.spectrum(subject.loaded, images, batch_size=args.batch_size, device=args.device, seed=args.seed,
                             progress=False).result
        series.append((subject.label, result.normalized_depth(), [pt.delta_log_amplitude for pt in result.points]))
    _common.save(figure(series, len(images)), args, "delta_log_amplitude")


if __name__ == "__main__":
    main(sys.argv[1:])
