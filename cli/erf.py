"""`freqlens erf`: effective receptive field (RepLKNet 2022) of a model over images."""
from __future__ import annotations

from typing import Annotated, Optional

import typer

from freqlens.cli.app import (CkptOpt, DeviceOpt, DtypeOpt, ImagesOpt, LimitOpt, ModelOpt, OutOpt, OverwriteOpt, ProbeOpt,
                              QuietOpt, SeedOpt, TrustOpt, WeightsOpt, WorkersOpt, app, user_errors)


@app.command()
def erf(
    model: ModelOpt,
    out: OutOpt,
    ckpt: CkptOpt = None,
    images: ImagesOpt = None,
    probe: ProbeOpt = None,
    preset: Annotated[str, typer.Option("--preset", help="Published protocol.")] = "replknet2022",
    input_size: Annotated[Optional[int], typer.Option("--input-size", min=8, help="Square input side (default: the preset's, 1024).")] = None,
    on_coupling: Annotated[str, typer.Option("--on-coupling", help="If images of a batch are coupled: per_sample or error.")] = "per_sample",
    weights: WeightsOpt = "auto",
    trust_checkpoint: TrustOpt = False,
    limit: LimitOpt = None,
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", min=1, help="Images per forward/backward pass.")] = 8,
    num_workers: WorkersOpt = 0,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "float32",
    seed: SeedOpt = 0,
    quiet: QuietOpt = False,
    overwrite: OverwriteOpt = False,
) -> None:
    """Effective receptive field: mean input-gradient heat map of the centre pixel and its area ratios."""
    from freqlens import api
    from freqlens.measures.erf import THRESHOLDS

    with user_errors():
        report = api.erf(model, images, ckpt=ckpt, weights=weights, trust_checkpoint=trust_checkpoint, probes=probe or (),
                         preset=preset, input_size=input_size, on_coupling=on_coupling, batch_size=batch_size, limit=limit,
                         num_workers=num_workers, device=device, dtype=dtype, seed=seed, progress=not quiet, out=out,
                         overwrite=overwrite)
    typer.echo("point\timages\t" + "\t".join(f"area@{t}" for t in THRESHOLDS))
    for point in report.result["points"]:
        ratios = "\t".join("n/a" if r is None else f"{r:.4f}" for r in point["area_ratios"].values())
        typer.echo(f"{point['name']}\t{point['images']}\t{ratios}")
    typer.echo(f"wrote {out}", err=True)
