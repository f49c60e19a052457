"""`freqlens spectrum`: spectral energy per layer (Park & Kim 2022) of a model over images."""
from __future__ import annotations

import typer

from freqlens.cli.app import BatchOpt, CkptOpt, ImagesOpt, ModelOpt, OutOpt, PresetOpt, ProbeOpt, analysis_command


@analysis_command
def spectrum(model: ModelOpt, out: OutOpt, run: dict, ckpt: CkptOpt = None, images: ImagesOpt = None,
             probe: ProbeOpt = None, preset: PresetOpt = "parkkim2022", batch_size: BatchOpt = 32) -> None:
    """Per-layer spectral energy: relative log-amplitude curves, Δ log amplitude vs depth, HF fraction."""
    from freqlens import api

    report = api.spectrum(model, images, ckpt=ckpt, probes=probe or (), preset=preset, batch_size=batch_size, out=out,
                          **run)
    typer.echo("point\tlayout\tshape\tdelta_log_amplitude\thf_fraction")
    for point, spec in zip(report.points, report.result.points, strict=True):
        typer.echo(f"{spec.name}\t{point.layout}\t{spec.shape[0]}x{spec.shape[1]}\t{spec.delta_log_amplitude:.4f}\t{spec.hf_fraction:.4f}")
    typer.echo(f"wrote {out}", err=True)
