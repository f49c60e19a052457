"""`freqlens gradcam`: class-activation maps of a model on images, with the randomisation sanity check."""
from __future__ import annotations

from typing import Annotated, Optional

import typer

from freqlens.cli.app import CkptOpt, ImagesOpt, ModelOpt, OutOpt, PassBatchOpt, analysis_command
from freqlens.errors import UsageError

LayerOpt = Annotated[Optional[str], typer.Option("--layer", help="Target module path (default: the model's Grad-CAM layer).")]
MethodOpt = Annotated[str, typer.Option("--method", help="gradcam, gradcam++, scorecam, xgradcam, eigencam or layercam.")]
ClassesOpt = Annotated[Optional[str], typer.Option(
    "--classes", help="Class index to explain: one for all images or a comma-separated list, one per image. Default: predicted.")]


def parse_classes(text: str | None) -> list[int]:
    """``"3"`` or ``"3,5,1"`` to a list of ints; anything else is a usage error."""
    if not text:
        return []
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise UsageError(f"--classes {text!r}: expected integers separated by commas",
                         hint="e.g. --classes 207 or --classes 1,5") from None


SanityOpt = Annotated[bool, typer.Option("--sanity", help="Also run the cascading parameter-randomisation check.")]


@analysis_command
def gradcam(model: ModelOpt, out: OutOpt, run: dict, ckpt: CkptOpt = None, images: ImagesOpt = None,
            layer: LayerOpt = None, method: MethodOpt = "gradcam", classes: ClassesOpt = None, sanity: SanityOpt = False,
            batch_size: PassBatchOpt = 8) -> None:
    """Grad-CAM maps per image: overlays (PNG + PDF), raw maps (npz) and, with --sanity, Spearman per step."""
    from freqlens import api

    report = api.gradcam(model, images, ckpt=ckpt, layer=layer, method=method, classes=parse_classes(classes),
                         sanity=sanity, batch_size=batch_size, out=out, **run)
    result = report.result
    typer.echo("image\tclass\traw_max\traw_mean")
    for path, cls, raw in zip(result["paths"], result["classes"], result["raw"], strict=True):
        typer.echo(f"{path.name}\t{int(cls)}\t{float(raw.max()):.4g}\t{float(raw.mean()):.4g}")
    if result["sanity"] is not None:
        typer.echo("step\tmean_spearman")
        for step, rho in zip(result["sanity"]["steps"], result["sanity"]["spearman"], strict=True):
            typer.echo(f"{step}\t{float(rho.nanmean()):.4f}")
    typer.echo(f"wrote {out} ({result['method']} at {result['target'].name})", err=True)
