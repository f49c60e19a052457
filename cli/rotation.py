"""`freqlens rotation`: rotation consistency of a model's predictions and probe points over images."""
from __future__ import annotations

from typing import Annotated, Optional

import typer

from freqlens.cli.app import (BatchOpt, CkptOpt, DeviceOpt, DtypeOpt, ImagesOpt, LimitOpt, ModelOpt, OutOpt, OverwriteOpt,
                              ProbeOpt, QuietOpt, SeedOpt, TrustOpt, WeightsOpt, WorkersOpt, app, user_errors)


@app.command()
def rotation(
    model: ModelOpt,
    out: OutOpt,
    ckpt: CkptOpt = None,
    images: ImagesOpt = None,
    probe: ProbeOpt = None,
    preset: Annotated[str, typer.Option("--preset", help="Published protocol.")] = "rot90",
    angle: Annotated[Optional[list[float]], typer.Option("--angle", help="Rotation angle in degrees; repeatable (default 90, 180, 270).")] = None,
    interpolation: Annotated[Optional[str], typer.Option("--interpolation", help="exact (rot90) or bilinear (any angle, disc mask).")] = None,
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
    """Top-1 agreement, accuracy, logit cosine and KL under rotation; per-layer invariance and equivariance."""
    from freqlens import api
    from freqlens.measures.rotation_consistency import OUTPUT_QUANTITIES

    with user_errors():
        report = api.rotation(model, images, ckpt=ckpt, weights=weights, trust_checkpoint=trust_checkpoint,
                              probes=probe or (), preset=preset, angles=angle or None, interpolation=interpolation,
                              batch_size=batch_size, limit=limit, num_workers=num_workers, device=device, dtype=dtype,
                              seed=seed, progress=not quiet, out=out, overwrite=overwrite)
    result = report.result
    typer.echo("angle\tagreement\taccuracy\tlogit_cosine\tkl")
    for i, angle_deg in enumerate(result["angles"]):
        row = [result["outputs"][q][i] for q in OUTPUT_QUANTITIES]
        typer.echo(f"{angle_deg:g}\t" + "\t".join(f"{v:.4f}" for v in row))
    typer.echo(f"wrote {out}", err=True)
