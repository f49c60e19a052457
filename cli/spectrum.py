"""`freqlens spectrum`: spectral energy per layer (Park & Kim 2022) of a model over images."""
from __future__ import annotations

from typing import Annotated

import typer

from freqlens.cli.app import (BatchOpt, CkptOpt, DeviceOpt, DtypeOpt, ImagesOpt, LimitOpt, ModelOpt, OutOpt,
                              OverwriteOpt, ProbeOpt, QuietOpt, SeedOpt, TrustOpt, WeightsOpt, WorkersOpt, app, user_errors)


@app.command()
def spectrum(
    model: ModelOpt,
    out: OutOpt,
    ckpt: CkptOpt = None,
    images: ImagesOpt = None,
    probe: ProbeOpt = None,
    preset: Annotated[str, typer.Option("--preset", help="Published protocol.")] = "parkkim2022",
    weights: WeightsOpt = "auto",
    trust_checkpoint: TrustOpt = False,
    limit: LimitOpt = None,
    batch_size: BatchOpt = 32,
    num_workers: WorkersOpt = 0,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "float32",
    seed: SeedOpt = 0,
    quiet: QuietOpt = False,
    overwrite: OverwriteOpt = False,
) -> None:
    """Per-layer spectral energy: relative log-amplitude curves, Δ log amplitude vs depth, HF fraction."""
    from freqlens import api

    with user_errors():
        report = api.spectrum(model, images, ckpt=ckpt, weights=weights, trust_checkpoint=trust_checkpoint,
                              probes=probe or (), preset=preset, batch_size=batch_size, limit=limit,
                              num_workers=num_workers, device=device, dtype=dtype, seed=seed, progress=not quiet,
                              out=out, overwrite=overwrite)
    typer.echo("point\tlayout\tshape\tdelta_log_amplitude\thf_fraction")
    for point, spec in zip(report.points, report.result.points, strict=True):
        typer.echo(f"{spec.name}\t{point.layout}\t{spec.shape[0]}x{spec.shape[1]}\t{spec.delta_log_amplitude:.4f}\t{spec.hf_fraction:.4f}")
    typer.echo(f"wrote {out}", err=True)
