"""`freqlens rotation`: rotation consistency of a model's predictions and probe points over images."""
from __future__ import annotations

from typing import Annotated, Optional

import typer

from freqlens.cli.app import BatchOpt, CkptOpt, ImagesOpt, ModelOpt, OutOpt, PresetOpt, ProbeOpt, analysis_command

AngleOpt = Annotated[Optional[list[float]], typer.Option(
    "--angle", help="Rotation angle in degrees; repeatable (default 90, 180, 270).")]
InterpolationOpt = Annotated[Optional[str], typer.Option(
    "--interpolation", help="exact (rot90) or bilinear (any angle, disc mask).")]


@analysis_command
def rotation(model: ModelOpt, out: OutOpt, run: dict, ckpt: CkptOpt = None, images: ImagesOpt = None,
             probe: ProbeOpt = None, preset: PresetOpt = "rot90", angle: AngleOpt = None,
             interpolation: InterpolationOpt = None, batch_size: BatchOpt = 32) -> None:
    """Top-1 agreement, accuracy, logit cosine and KL under rotation; per-layer invariance and equivariance."""
    from freqlens import api
    from freqlens.measures.rotation_consistency import OUTPUT_QUANTITIES

    report = api.rotation(model, images, ckpt=ckpt, probes=probe or (), preset=preset, angles=angle or None,
                          interpolation=interpolation, batch_size=batch_size, out=out, **run)
    result = report.result
    typer.echo("angle\tagreement\taccuracy\tlogit_cosine\tkl")
    for i, angle_deg in enumerate(result["angles"]):
        row = [result["outputs"][q][i] for q in OUTPUT_QUANTITIES]
        typer.echo(f"{angle_deg:g}\t" + "\t".join(f"{v:.4f}" for v in row))
    typer.echo(f"wrote {out}", err=True)
