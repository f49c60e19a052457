"""`freqlens erf`: effective receptive field (RepLKNet 2022) of a model over images."""
from __future__ import annotations

from typing import Annotated, Optional

import typer

from freqlens.cli.app import CkptOpt, ImagesOpt, ModelOpt, OutOpt, PassBatchOpt, PresetOpt, ProbeOpt, analysis_command

InputSizeOpt = Annotated[Optional[int], typer.Option(
    "--input-size", min=8, help="Square input side (default: the preset's, 1024).")]
CouplingOpt = Annotated[str, typer.Option(
    "--on-coupling", help="If images of a batch are coupled: per_sample or error.")]


@analysis_command
def erf(model: ModelOpt, out: OutOpt, run: dict, ckpt: CkptOpt = None, images: ImagesOpt = None,
        probe: ProbeOpt = None, preset: PresetOpt = "replknet2022", input_size: InputSizeOpt = None,
        on_coupling: CouplingOpt = "per_sample", batch_size: PassBatchOpt = 8) -> None:
    """Effective receptive field: mean input-gradient heat map of the centre pixel and its area ratios."""
    from freqlens import api
    from freqlens.measures.erf import THRESHOLDS

    report = api.erf(model, images, ckpt=ckpt, probes=probe or (), preset=preset, input_size=input_size,
                     on_coupling=on_coupling, batch_size=batch_size, out=out, **run)
    typer.echo("point\timages\t" + "\t".join(f"area@{t}" for t in THRESHOLDS))
    for point in report.result["points"]:
        ratios = "\t".join("n/a" if r is None else f"{r:.4f}" for r in point["area_ratios"].values())
        typer.echo(f"{point['name']}\t{point['images']}\t{ratios}")
    typer.echo(f"wrote {out}", err=True)
