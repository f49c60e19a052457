"""`freqlens gradcam`: class-activation maps of a model on images, with the randomisation sanity check."""
from __future__ import annotations

from typing import Annotated, Optional

import typer

from freqlens.cli.app import (CkptOpt, DeviceOpt, DtypeOpt, ImagesOpt, LimitOpt, ModelOpt, OutOpt, OverwriteOpt, QuietOpt,
                              SeedOpt, TrustOpt, WeightsOpt, WorkersOpt, app, user_errors)
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


@app.command()
def gradcam(
    model: ModelOpt,
    out: OutOpt,
    ckpt: CkptOpt = None,
    images: ImagesOpt = None,
    layer: LayerOpt = None,
    method: MethodOpt = "gradcam",
    classes: ClassesOpt = None,
    sanity: Annotated[bool, typer.Option("--sanity", help="Also run the cascading parameter-randomisation check.")] = False,
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
    """Grad-CAM maps per image: overlays (PNG + PDF), raw maps (npz) and, with --sanity, Spearman per step."""
    from freqlens import api

    with user_errors():
        report = api.gradcam(model, images, ckpt=ckpt, weights=weights, trust_checkpoint=trust_checkpoint, layer=layer,
                             method=method, classes=parse_classes(classes), sanity=sanity, batch_size=batch_size,
                             limit=limit, num_workers=num_workers, device=device, dtype=dtype, seed=seed,
                             progress=not quiet, out=out, overwrite=overwrite)
    result = report.result
    typer.echo("image\tclass\traw_max\traw_mean")
    for path, cls, raw in zip(result["paths"], result["classes"], result["raw"], strict=True):
        typer.echo(f"{path.name}\t{int(cls)}\t{float(raw.max()):.4g}\t{float(raw.mean()):.4g}")
    if result["sanity"] is not None:
        typer.echo("step\tmean_spearman")
        for step, rho in zip(result["sanity"]["steps"], result["sanity"]["spearman"], strict=True):
            typer.echo(f"{step}\t{float(rho.nanmean()):.4f}")
    typer.echo(f"wrote {out} ({result['method']} at {result['target'].name})", err=True)
