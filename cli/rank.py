"""`freqlens rank`: rank collapse (Dong et al. 2021) at every probe point of a model over images."""
from __future__ import annotations

from typing import Annotated

import typer

from freqlens.cli.app import (BatchOpt, CkptOpt, DeviceOpt, DtypeOpt, ImagesOpt, LimitOpt, ModelOpt, OutOpt, OverwriteOpt,
                              ProbeOpt, QuietOpt, SeedOpt, TrustOpt, WeightsOpt, WorkersOpt, app, user_errors)


@app.command()
def rank(
    model: ModelOpt,
    out: OutOpt,
    ckpt: CkptOpt = None,
    images: ImagesOpt = None,
    probe: ProbeOpt = None,
    preset: Annotated[str, typer.Option("--preset", help="Published protocol.")] = "dong2021",
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
    """Per-layer relative residual (l1,inf and Frobenius) and effective rank of the token matrices."""
    from freqlens import api

    with user_errors():
        report = api.rank(model, images, ckpt=ckpt, weights=weights, trust_checkpoint=trust_checkpoint, probes=probe or (),
                          preset=preset, batch_size=batch_size, limit=limit, num_workers=num_workers, device=device,
                          dtype=dtype, seed=seed, progress=not quiet, out=out, overwrite=overwrite)
    typer.echo("point\ttokens\tchannels\tresidual_l1inf\tresidual_fro\teffective_rank\teffective_rank_centred")
    for p in report.result["points"]:
        typer.echo(f"{p['name']}\t{p['tokens']}\t{p['channels']}\t{p['residual_l1inf']:.4f}\t{p['residual_fro']:.4f}\t"
                   f"{p['effective_rank']:.2f}\t{p['effective_rank_centred']:.2f}")
    typer.echo(f"wrote {out}", err=True)
