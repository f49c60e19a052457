"""Frequency-response panels: Yin et al. (NeurIPS 2019, Fig. 2) Fourier heat maps, one per model, and
the band-limited agreement curves of all models.

* Heat map: the share of images whose prediction flips when one Fourier basis image U_{u,v} of ℓ2 norm
  ``--eps`` (in pixel units, per channel) is added, at each frequency (u, v); centre = zero frequency.
* Curves: agreement with the clean prediction after an ideal low-pass (solid) or high-pass (dashed)
  filter of the input, against the cut-off radius (1 = Nyquist along an axis).

Both come from ``freqlens.measures.freq_response``. ``--max-freq`` crops the heat map's grid for quick runs.

Example:
    python scripts/figures/frequency_response.py --model probe_cnn probe_cnn \\
        --ckpt freqlens/data/checkpoints/probe_cnn_hf.safetensors freqlens/data/checkpoints/probe_cnn_lf.safetensors \\
        --limit 8 --out docs/figures
"""
from __future__ import annotations

import sys

import matplotlib.pyplot as plt

import _common
from freqlens.measures.freq_response import BandLimitedAccuracy, BandLimitedCurves, FourierHeatMap, FourierSensitivity
from freqlens.reports.figures import DEPTH_CMAP, paper_style


def figure(panels: list[tuple[str, FourierHeatMap, BandLimitedCurves]], eps: float) -> plt.Figure:
    """``panels``: (label, heat map, band-limited curves) per model."""
    n = len(panels)
    with paper_style():
        fig, axes = plt.subplots(1, n + 1, figsize=(2.2 * n + 3.0, 2.6), layout="constrained",
                                 gridspec_kw={"width_ratios": [1] * n + [1.3]})
        image = None
        for ax, (label, heat, _) in zip(axes[:-1], panels, strict=True):
            fy, fx = heat.freq_y.numpy(), heat.freq_x.numpy()
            extent = (fx[0] - 0.5, fx[-1] + 0.5, fy[-1] + 0.5, fy[0] - 0.5)
            image = ax.imshow(heat.flip_rate.numpy(), cmap=DEPTH_CMAP, vmin=0, vmax=1, extent=extent,
                              interpolation="nearest")
            ax.set_title(f"{label}\n({heat.count} images)", fontsize=8)
            ax.set_xlabel("u (cycles/image)")
        axes[0].set_ylabel("v (cycles/image)")
        fig.colorbar(image, ax=list(axes[:-1]), shrink=0.8, label=f"flip rate (ε = {eps:g})")
        curve_ax = axes[-1]
        for i, (label, _, curves) in enumerate(panels):
            colour = f"C{i}"
            cut = curves.cutoffs.numpy()
            curve_ax.plot(cut, curves.low_agreement.numpy(), "-", marker="o", ms=2.5, lw=1.2, color=colour,
                          label=f"{label} low-pass")
            curve_ax.plot(cut, curves.high_agreement.numpy(), "--", marker="s", ms=2.5, lw=1.2, color=colour,
                          label=f"{label} high-pass")
        curve_ax.set_ylim(0, 1.05)
        curve_ax.set_xlabel("cut-off radius (× Nyquist)")
        curve_ax.set_ylabel("agreement with clean prediction")
        curve_ax.legend(frameon=False, fontsize=6, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def main(argv: list[str] | None = None) -> None:
    p = _common.parser(__doc__)
    p.add_argument("--eps", type=float, default=4.0, help="ℓ2 norm of each Fourier perturbation, pixel units")
    p.add_argument("--max-freq", type=int, default=None, help="only |u|, |v| <= this (default: the full grid)")
    p.add_argument("--cutoffs", type=float, nargs="+", default=(0.125, 0.25, 0.375, 0.5, 0.75, 1.0, 1.25),
                   help="band-limit cut-off radii, increasing, in (0, sqrt(2)]")
    p.add_argument("--batch-size", type=int, default=256, help="perturbed images per forward pass")
    args = p.parse_args(argv)
    images = _common.image_set(args)
    panels = []
    for subject in _common.subjects(args):
        x, labels = _common.image_batch(subject, images)
        model = subject.loaded.model
        sensitivity = FourierSensitivity(tuple(x.shape[-2:]), eps=args.eps, max_freq=args.max_freq,
                                         pixel_std=subject.loaded.data_config()["std"], seed=args.seed,
                                         batch_size=args.batch_size)
        band = BandLimitedAccuracy(args.cutoffs, batch_size=args.batch_size)
        sensitivity.update(model, x, labels)
        band.update(model, x, labels)
        panels.append((subject.label, sensitivity.compute(), band.compute()))
    _common.save(figure(panels, args.eps), args, "frequency_response")


if __name__ == "__main__":
    main(sys.argv[1:])
