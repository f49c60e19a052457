"""`freqlens response`: Fourier sensitivity heat map, per-layer transfer functions, band-limited accuracy."""
from __future__ import annotations

from typing import Annotated, Optional

import typer

from freqlens.cli.app import CkptOpt, ImagesOpt, ModelOpt, OutOpt, ProbeOpt, analysis_command

MaxFreqOpt = Annotated[int, typer.Option(
    "--max-freq", min=-1, help="Heat map over |u|, |v| <= this (cycles/image; -1: full grid).")]
TransferFreqOpt = Annotated[int, typer.Option(
    "--transfer-max-freq", min=-1, help="Transfer function over |u|, |v| <= this (-1: full grid).")]
ResponsePresetOpt = Annotated[str, typer.Option(
    "--preset", help="Fourier heat-map protocol (yin2019_imagenet, yin2019_cifar10).")]
CutoffOpt = Annotated[Optional[list[float]], typer.Option("--cutoff", help="Band-limit cut-off radius (1 = Nyquist); repeatable.")]


def full_grid(value: int) -> int | None:
    """-1 means every frequency of the image."""
    return None if value == -1 else value


EpsOpt = Annotated[Optional[float], typer.Option("--eps", help="Perturbation norm in pixel units (default: the preset's).")]
NoTransferOpt = Annotated[bool, typer.Option("--no-transfer", help="Skip the transfer functions.")]
StepBatchOpt = Annotated[int, typer.Option("--batch-size", "-b", min=1, help="Images per step.")]
ForwardBatchOpt = Annotated[int, typer.Option("--forward-batch", min=1, help="Perturbed images per forward pass.")]


@analysis_command
def response(model: ModelOpt, out: OutOpt, run: dict, ckpt: CkptOpt = None, images: ImagesOpt = None,
             probe: ProbeOpt = None, preset: ResponsePresetOpt = "yin2019_imagenet", eps: EpsOpt = None,
             max_freq: MaxFreqOpt = 16, transfer_max_freq: TransferFreqOpt = 4, no_transfer: NoTransferOpt = False,
             cutoff: CutoffOpt = None, batch_size: StepBatchOpt = 8, forward_batch: ForwardBatchOpt = 256) -> None:
    """Frequency response: Fourier heat map (errors with labels, else flips), transfer functions, band-limited curves."""
    from freqlens import api

    report = api.response(model, images, ckpt=ckpt, probes=probe or (), preset=preset, eps=eps,
                          max_freq=full_grid(max_freq), transfer=not no_transfer,
                          transfer_max_freq=full_grid(transfer_max_freq), cutoffs=cutoff, batch_size=batch_size,
                          forward_batch=forward_batch, out=out, **run)
    heat, band = report.result["fourier"], report.result["band"]
    typer.echo(f"fourier\tmean_flip_rate\t{float(heat.flip_rate.mean()):.4f}")
    if heat.error_rate is not None:
        typer.echo(f"fourier\tmean_error_rate\t{float(heat.error_rate.mean()):.4f}")
    typer.echo("cutoff\tlow_agreement\thigh_agreement")
    for c, low, high in zip(band.cutoffs.tolist(), band.low_agreement.tolist(), band.high_agreement.tolist(), strict=True):
        typer.echo(f"{c:g}\t{low:.4f}\t{high:.4f}")
    typer.echo(f"wrote {out}", err=True)
