"""`freqlens rank`: rank collapse (Dong et al. 2021) at every probe point of a model over images."""
from __future__ import annotations

import typer

from freqlens.cli.app import BatchOpt, CkptOpt, ImagesOpt, ModelOpt, OutOpt, PresetOpt, ProbeOpt, analysis_command


@analysis_command
def rank(model: ModelOpt, out: OutOpt, run: dict, ckpt: CkptOpt = None, images: ImagesOpt = None,
         probe: ProbeOpt = None, preset: PresetOpt = "dong2021", batch_size: BatchOpt = 32) -> None:
    """Per-layer relative residual (l1,inf and Frobenius) and effective rank of the token matrices."""
    from freqlens import api

    report = api.rank(model, images, ckpt=ckpt, probes=probe or (), preset=preset, batch_size=batch_size, out=out, **run)
    typer.echo("point\ttokens\tchannels\tresidual_l1inf\tresidual_fro\teffective_rank\teffective_rank_centred")
    for p in report.result["points"]:
        typer.echo(f"{p['name']}\t{p['tokens']}\t{p['channels']}\t{p['residual_l1inf']:.4f}\t{p['residual_fro']:.4f}\t"
                   f"{p['effective_rank']:.2f}\t{p['effective_rank_centred']:.2f}")
    typer.echo(f"wrote {out}", err=True)
