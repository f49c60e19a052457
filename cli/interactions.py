"""`freqlens interactions`: multi-order interaction strength (Deng et al. 2022) of a model over images."""
from __future__ import annotations

from typing import Annotated, Optional

import typer

from freqlens.cli.app import (CkptOpt, DeviceOpt, DtypeOpt, ImagesOpt, LimitOpt, ModelOpt, OutOpt, OverwriteOpt, QuietOpt,
                              SeedOpt, TrustOpt, WeightsOpt, WorkersOpt, app, user_errors)


@app.command()
def interactions(
    model: ModelOpt,
    out: OutOpt,
    ckpt: CkptOpt = None,
    images: ImagesOpt = None,
    preset: Annotated[str, typer.Option("--preset", help="Published protocol: moganet2024 or deng2022.")] = "moganet2024",
    target: Annotated[str, typer.Option("--target", help="Reward class: auto, label or predicted.")] = "auto",
    grid: Annotated[Optional[int], typer.Option("--grid", min=2, help="Players per side (overrides the preset).")] = None,
    pairs: Annotated[Optional[int], typer.Option("--pairs", min=1, help="Pairs per image (overrides the preset).")] = None,
    contexts: Annotated[Optional[int], typer.Option("--contexts", min=1, help="Contexts per pair and order (overrides the preset).")] = None,
    weights: WeightsOpt = "auto",
    trust_checkpoint: TrustOpt = False,
    limit: LimitOpt = None,
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", min=1, help="Masked copies per forward pass.")] = 256,
    num_workers: WorkersOpt = 0,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "float32",
    seed: SeedOpt = 0,
    quiet: QuietOpt = False,
    overwrite: OverwriteOpt = False,
) -> None:
    """Interaction strength J(m) of patch pairs over context size m (the representation-bottleneck curve)."""
    from freqlens import api

    with user_errors():
        report = api.interactions(model, images, ckpt=ckpt, weights=weights, trust_checkpoint=trust_checkpoint,
                                  preset=preset, target=target, grid=grid, pairs=pairs, contexts=contexts,
                                  batch_size=batch_size, limit=limit, num_workers=num_workers, device=device, dtype=dtype,
                                  seed=seed, progress=not quiet, out=out, overwrite=overwrite)
    result = report.result
    typer.echo("ratio\torder\tmean_abs\tstrength")
    for row in zip(result["ratios"], result["orders"], result["mean_abs"], result["strength"], strict=True):
        typer.echo(f"{row[0]:.2f}\t{row[1]}\t{row[2]:.6g}\t{row[3]:.4f}")
    typer.echo(f"wrote {out}", err=True)
