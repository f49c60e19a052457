"""Frequency-response outputs: the Fourier heat map, per-probe-point transfer functions and band-limited
accuracy curves, as figures (frequencies in cycles/px), CSVs and an npz of the maps."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch

from freqlens.io.results import save_figure, write_csv
from freqlens.measures.freq_response import BandLimitedCurves, FourierHeatMap, TransferMaps
from freqlens.reports.figures import DEPTH_CMAP, paper_style

HEAT_CMAP = "viridis"  # perceptually uniform
RADIAL_BINS = 8


def cycles_per_px(freqs: torch.Tensor, n: int) -> np.ndarray:
    """Integer frequencies (cycles per image side of n pixels) in cycles per pixel."""
    return freqs.numpy() / n


def _extent(heat: FourierHeatMap | TransferMaps) -> list[float]:
    """imshow extent in cycles/px (with ``origin="lower"``), each cell centred on its frequency."""
    h, w = heat.settings["image_size"]
    fx, fy = cycles_per_px(heat.freq_x, w), cycles_per_px(heat.freq_y, h)
    dx, dy = 0.5 / w, 0.5 / h
    return [fx[0] - dx, fx[-1] + dx, fy[0] - dy, fy[-1] + dy]


def _label_frequency_axes(ax: plt.Axes) -> None:
    ax.set_xlabel("horizontal frequency (cycles/px)")
    ax.set_ylabel("vertical frequency (cycles/px)")


def fourier_heatmap_figure(heat: FourierHeatMap, title: str) -> plt.Figure:
    """Error rate per Fourier basis (with labels) and prediction-flip rate, on the centred grid."""
    panels = [("prediction-flip rate", heat.flip_rate)]
    if heat.error_rate is not None:
        panels.insert(0, (f"error rate (clean: {heat.clean_error:.2f})", heat.error_rate))
    with paper_style():
        fig, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels), 3.2), layout="constrained", squeeze=False)
        for ax, (label, values) in zip(axes[0], panels, strict=True):
            image = ax.imshow(values.numpy(), cmap=HEAT_CMAP, vmin=0, vmax=1, extent=_extent(heat), origin="lower",
                              interpolation="nearest")
            _label_frequency_axes(ax)
            ax.set_title(label)
            fig.colorbar(image, ax=ax, shrink=0.85, label="fraction of images")
        eps = heat.settings["eps"]
        fig.suptitle(f"{title}: Fourier sensitivity (ε = {eps:g}, {heat.count} images)")
    return fig


def transfer_maps_figure(maps: TransferMaps, title: str) -> plt.Figure:
    """log10 gain of each probe point's linearisation per input frequency, one panel per point."""
    names = list(maps.gain)
    cols = min(len(names), 4)
    rows = -(-len(names) // cols)
    logs = {n: np.log10(np.maximum(g.numpy(), 1e-12)) for n, g in maps.gain.items()}
    with paper_style():
        fig, axes = plt.subplots(rows, cols, figsize=(2.5 * cols + 0.6, 2.4 * rows + 0.4), layout="constrained",
                                 squeeze=False)
        for ax in axes.flat[len(names):]:
            ax.set_axis_off()
        for ax, name in zip(axes.flat, names):
            image = ax.imshow(logs[name], cmap=HEAT_CMAP, extent=_extent(maps), origin="lower", interpolation="nearest")
            ax.set_title(name or "output", fontsize=7)
            ax.set_xlabel("cycles/px (horizontal)", fontsize=7)
            ax.set_ylabel("cycles/px (vertical)", fontsize=7)
            ax.tick_params(labelsize=6)
            fig.colorbar(image, ax=ax, shrink=0.8).set_label("log10 gain", fontsize=7)
        fig.suptitle(f"{title}: transfer function ‖J·U‖ per input frequency ({maps.count} images)")
    return fig


def radial_gain(maps: TransferMaps) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Mean gain per radial bin (normalised radius, 1 = Nyquist) of each probe point: (bin centres, gains)."""
    radius = maps.radius.numpy()
    edges = np.linspace(0, radius.max() + 1e-9, RADIAL_BINS + 1)
    which = np.digitize(radius, edges) - 1
    centres = (edges[:-1] + edges[1:]) / 2
    keep = np.array([(which == b).any() for b in range(RADIAL_BINS)])
    gains = {n: np.array([g.numpy()[which == b].mean() for b in range(RADIAL_BINS) if keep[b]])
             for n, g in maps.gain.items()}
    return centres[keep], gains


def transfer_radial_figure(radial: tuple[np.ndarray, dict[str, np.ndarray]], image_size: tuple[int, int],
                           title: str) -> plt.Figure:
    """Mean gain against radial frequency (``radial_gain(maps)``), one curve per probe point coloured by depth."""
    h, w = image_size
    centres, gains = radial
    cmap = plt.get_cmap(DEPTH_CMAP)
    with paper_style():
        fig, ax = plt.subplots(figsize=(3.8, 2.8), layout="constrained")
        for i, (name, gain) in enumerate(gains.items()):
            ax.plot(centres * 0.5, gain, color=cmap(i / max(1, len(gains) - 1)), lw=1.0, marker="o", ms=2, label=name)
        ax.set_yscale("log")
        ax.set_xlabel("radial frequency (cycles/px)")
        ax.set_ylabel("mean gain ‖J·U‖")
        ax.set_title(f"{title}: gain vs frequency ({h}×{w} input)")
        mappable = plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(0, 1))
        fig.colorbar(mappable, ax=ax, label="normalised depth")
    return fig


def band_limited_figure(curves: BandLimitedCurves, title: str) -> plt.Figure:
    """Agreement with the clean prediction (and accuracy, with labels) on low-/high-pass inputs."""
    cut = curves.cutoffs.numpy() * 0.5  # normalised radius (1 = Nyquist = 0.5 cycles/px) to cycles/px
    with paper_style():
        fig, ax = plt.subplots(figsize=(3.8, 2.8), layout="constrained")
        ax.plot(cut, curves.low_agreement.numpy(), marker="o", ms=3, lw=1.0, label="low-pass: agreement")
        ax.plot(cut, curves.high_agreement.numpy(), marker="s", ms=3, lw=1.0, label="high-pass: agreement")
        if curves.low_accuracy is not None:
            ax.plot(cut, curves.low_accuracy.numpy(), marker="o", ms=3, lw=1.0, ls="--", label="low-pass: accuracy")
            ax.plot(cut, curves.high_accuracy.numpy(), marker="s", ms=3, lw=1.0, ls="--", label="high-pass: accuracy")
            ax.axhline(curves.clean_accuracy, color="0.4", lw=0.6, ls=":", label="clean accuracy")
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("cut-off radius (cycles/px)")
        ax.set_ylabel("fraction of images")
        ax.set_title(f"{title}: band-limited inputs ({curves.count} images)")
        ax.legend(frameon=False, fontsize=6)
    return fig


def write_response_outputs(directory: Path, result: dict[str, Any], title: str) -> dict[str, Any]:
    """Write the CSVs, ``response_maps.npz`` and the figures into ``directory``; returns the JSON records."""
    heat, transfer, band = result["fourier"], result["transfer"], result["band"]
    h, w = heat.settings["image_size"]
    fy, fx = np.meshgrid(heat.freq_y.numpy(), heat.freq_x.numpy(), indexing="ij")
    error = heat.error_rate.numpy() if heat.error_rate is not None else np.full(fy.shape, np.nan)
    write_csv(directory / "response_fourier.csv",
              ["freq_y", "freq_x", "cycles_per_px_y", "cycles_per_px_x", "radius", "flip_rate", "error_rate"],
              zip(fy.ravel().tolist(), fx.ravel().tolist(), (fy / h).ravel().tolist(), (fx / w).ravel().tolist(),
                  heat.radius.numpy().ravel().tolist(), heat.flip_rate.numpy().ravel().tolist(), error.ravel().tolist()))
    write_csv(directory / "response_band_limited.csv",
              ["cutoff_radius", "cutoff_cycles_per_px", "low_agreement", "high_agreement", "low_accuracy", "high_accuracy"],
              [(c, c * 0.5, la, ha, lc, hc) for c, la, ha, lc, hc in zip(
                  band.cutoffs.tolist(), band.low_agreement.tolist(), band.high_agreement.tolist(),
                  *(x.tolist() if x is not None else [float("nan")] * len(band.cutoffs)
                    for x in (band.low_accuracy, band.high_accuracy)))])
    arrays = {"fourier/flip_rate": heat.flip_rate.numpy(), "fourier/freq_y": heat.freq_y.numpy(),
              "fourier/freq_x": heat.freq_x.numpy()}
    if heat.error_rate is not None:
        arrays["fourier/error_rate"] = heat.error_rate.numpy()
    save_figure(fourier_heatmap_figure(heat, title), directory, "response_fourier_heatmap")
    save_figure(band_limited_figure(band, title), directory, "response_band_limited")
    records: dict[str, Any] = {
        "fourier": {"settings": heat.settings, "count": heat.count, "labelled": heat.error_rate is not None,
                    "clean_error": heat.clean_error, "freq_y": heat.freq_y, "freq_x": heat.freq_x,
                    "flip_rate": heat.flip_rate, "error_rate": heat.error_rate},
        "band_limited": {"settings": band.settings, "count": band.count, "cutoffs": band.cutoffs,
                         "low_agreement": band.low_agreement, "high_agreement": band.high_agreement,
                         "low_accuracy": band.low_accuracy, "high_accuracy": band.high_accuracy,
                         "clean_accuracy": band.clean_accuracy},
        "transfer": None,
    }
    if transfer is not None:
        centres, gains = radial = radial_gain(transfer)
        write_csv(directory / "response_transfer_radial.csv", ["point", "radius", "cycles_per_px", "mean_gain"],
                  [(n, float(r), float(r) * 0.5, float(g)) for n, gs in gains.items() for r, g in zip(centres, gs)])
        arrays.update({f"transfer/{n}": g.numpy() for n, g in transfer.gain.items()})
        save_figure(transfer_maps_figure(transfer, title), directory, "response_transfer_maps")
        save_figure(transfer_radial_figure(radial, transfer.settings["image_size"], title), directory, "response_transfer_radial")
        records["transfer"] = {"settings": transfer.settings, "count": transfer.count, "freq_y": transfer.freq_y,
                               "freq_x": transfer.freq_x, "gain": transfer.gain}
    np.savez_compressed(directory / "response_maps.npz", **arrays)
    return records
