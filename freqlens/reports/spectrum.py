"""Spectrum outputs: Park & Kim-style figures, CSV tables, the maps as npz, all from a SpectrumResult."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import matplotlib.pyplot as plt
import numpy as np

from freqlens.io.results import save_figure, write_csv
from freqlens.lens import ProbePoint
from freqlens.measures.spectral_energy import SpectrumResult
from freqlens.reports.figures import DEPTH_CMAP, paper_style


def relative_log_amplitude_figure(result: SpectrumResult, title: str) -> plt.Figure:
    """Relative log amplitude along the half-diagonal, one curve per probe point coloured by depth."""
    with paper_style():
        fig, ax = plt.subplots(figsize=(3.6, 2.8), layout="constrained")
        cmap = plt.get_cmap(DEPTH_CMAP)
        for point, depth in zip(result.points, result.normalized_depth(), strict=True):
            ax.plot(point.diag_freq.numpy(), point.relative_log_amplitude.numpy(), color=cmap(depth), lw=1.0)
        ax.set_xlim(0, max((round(float(f), 3) for p in result.points for f in p.diag_freq), default=1))
        ax.set_xlabel("diagonal frequency (×π rad/px)")
        ax.set_ylabel("Δ log amplitude (rel. to DC)")
        ax.set_title(title)
        mappable = plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(0, 1))
        fig.colorbar(mappable, ax=ax, label="normalised depth")
    return fig


def delta_vs_depth_figure(result: SpectrumResult, kinds: Sequence[str], title: str) -> plt.Figure:
    """Δ log amplitude at the highest diagonal frequency vs normalised depth, one series per point kind."""
    with paper_style():
        fig, ax = plt.subplots(figsize=(3.6, 2.6), layout="constrained")
        depth = np.array(result.normalized_depth())
        delta = np.array([p.delta_log_amplitude for p in result.points])
        kind_arr = np.array(kinds)
        for kind in dict.fromkeys(kinds):
            mask = kind_arr == kind
            ax.plot(depth[mask], delta[mask], marker="o", ms=3, lw=1.0, label=kind)
        ax.set_xlabel("normalised depth")
        ax.set_ylabel("Δ log amplitude at highest freq.")
        ax.set_title(title)
        if len(set(kinds)) > 1:
            ax.legend(frameon=False)
    return fig


def hf_fraction_figure(result: SpectrumResult, title: str) -> plt.Figure:
    """Share of feature power above half the Nyquist radius, per probe point."""
    with paper_style():
        fig, ax = plt.subplots(figsize=(3.6, 2.6), layout="constrained")
        ax.plot(result.normalized_depth(), [p.hf_fraction for p in result.points], marker="o", ms=3, lw=1.0)
        ax.set_ylim(0, 1)
        ax.set_xlabel("normalised depth")
        ax.set_ylabel(f"HF power fraction (r > {result.settings['hf_cutoff']})")
        ax.set_title(title)
    return fig


def write_spectrum_outputs(directory: Path, result: SpectrumResult, points: Sequence[ProbePoint], title: str) -> dict[str, Any]:
    """Write CSVs, the npz of maps and the figures into ``directory``; returns the per-point JSON records."""
    by_name = {p.name: p for p in points}
    kinds = [by_name[p.name].kind for p in result.points]
    write_csv(directory / "spectrum_summary.csv",
              ["point", "layout", "kind", "height", "width", "normalized_depth", "delta_log_amplitude", "hf_fraction", "count"],
              [(p.name, by_name[p.name].layout, by_name[p.name].kind, p.shape[0], p.shape[1], d, p.delta_log_amplitude,
                p.hf_fraction, p.count) for p, d in zip(result.points, result.normalized_depth(), strict=True)])
    write_csv(directory / "spectrum_curves.csv", ["point", "k", "frequency_pi", "relative_log_amplitude"],
              [(p.name, k, float(f), float(v)) for p in result.points
               for k, (f, v) in enumerate(zip(p.diag_freq, p.relative_log_amplitude, strict=True))])
    write_csv(directory / "spectrum_radial.csv", ["point", "radius_low", "radius_high", "mean_power"],
              [(p.name, float(p.radial_edges[i]), float(p.radial_edges[i + 1]), float(v)) for p in result.points
               for i, v in enumerate(p.radial_power)])
    np.savez_compressed(directory / "spectrum_maps.npz",
                        **{f"{p.name}/log_amplitude": p.log_amplitude.numpy() for p in result.points},
                        **{f"{p.name}/power": p.power.numpy() for p in result.points})
    save_figure(relative_log_amplitude_figure(result, title), directory, "spectrum_relative_log_amplitude")
    save_figure(delta_vs_depth_figure(result, kinds, title), directory, "spectrum_delta_vs_depth")
    save_figure(hf_fraction_figure(result, title), directory, "spectrum_hf_fraction")
    return [
        {"name": p.name, "layout": by_name[p.name].layout, "kind": by_name[p.name].kind, "shape": list(p.shape),
         "count": p.count, "normalized_depth": d, "delta_log_amplitude": p.delta_log_amplitude, "hf_fraction": p.hf_fraction,
         "diag_frequency_pi": p.diag_freq, "relative_log_amplitude": p.relative_log_amplitude,
         "radial_edges": p.radial_edges, "radial_power": p.radial_power, "profile_y": p.profile_y, "profile_x": p.profile_x}
        for p, d in zip(result.points, result.normalized_depth(), strict=True)
    ]
