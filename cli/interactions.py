"""`freqlens interactions`: multi-order interaction strength (Deng et al. 2022) of a model over images."""
from __future__ import annotations

from typing import Annotated, Optional

import typer

from freqlens.cli.app import CkptOpt, ImagesOpt, ModelOpt, OutOpt, analysis_command


InteractionPresetOpt = Annotated[str, typer.Option("--preset", help="Published protocol: moganet2024 or deng2022.")]
TargetOpt = Annotated[str, typer.Option("--target", help="Reward class: auto, label or predicted.")]
GridOpt = Annotated[Optional[int], typer.Option("--grid", min=2, help="Players per side (overrides the preset).")]
PairsOpt = Annotated[Optional[int], typer.Option("--pairs", min=1, help="Pairs per image (overrides the preset).")]
ContextsOpt = Annotated[Optional[int], typer.Option(
    "--contexts", min=1, help="Contexts per pair and order (overrides the preset).")]
MaskedBatchOpt = Annotated[int, typer.Option("--batch-size", "-b", min=1, help="Masked copies per forward pass.")]


@analysis_command
def interactions(model: ModelOpt, out: OutOpt, run: dict, ckpt: CkptOpt = None, images: ImagesOpt = None,
                 preset: InteractionPresetOpt = "moganet2024", target: TargetOpt = "auto", grid: GridOpt = None,
                 pairs: PairsOpt = None, contexts: ContextsOpt = None, batch_size: MaskedBatchOpt = 256) -> None:
    """Interaction strength J(m) of patch pairs over context size m (the representation-bottleneck curve)."""
    from freqlens import api

    report = api.interactions(model, images, ckpt=ckpt, preset=preset, target=target, grid=grid, pairs=pairs,
                              contexts=contexts, batch_size=batch_size, out=out, **run)
    result = report.result
    typer.echo("ratio\torder\tmean_abs\tstrength")
    for row in zip(result["ratios"], result["orders"], result["mean_abs"], result["strength"], strict=True):
        typer.echo(f"{row[0]:.2f}\t{row[1]}\t{row[2]:.6g}\t{row[3]:.4f}")
    typer.echo(f"wrote {out}", err=True)
