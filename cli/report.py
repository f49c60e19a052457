"""`freqlens report` (several measures of one model, one HTML page) and `freqlens compare` (models side by side)."""
from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from freqlens.cli.app import (CkptOpt, DeviceOpt, DtypeOpt, ImagesOpt, LimitOpt, ModelOpt, OutOpt, OverwriteOpt, ProbeOpt,
                              QuietOpt, SeedOpt, TrustOpt, WeightsOpt, WorkersOpt, app, user_errors)
from freqlens.cli.gradcam import ClassesOpt, LayerOpt, MethodOpt, parse_classes
from freqlens.cli.response import MaxFreqOpt, TransferFreqOpt, full_grid

MeasuresOpt = Annotated[str, typer.Option(
    "--measures", help="Comma-separated: spectrum, response, gradcam, erf, rank, rotation, interactions.")]
MEASURE_OPTIONS = {  # which CLI options reach which measure
    "spectrum": ("probes", "batch_size"),
    "response": ("probes", "batch_size", "max_freq", "transfer_max_freq"),
    "gradcam": ("layer", "method", "classes", "sanity", "batch_size"),
    "erf": ("probes",),
    "rank": ("probes", "batch_size"),
    "rotation": ("probes", "batch_size"),
    "interactions": (),
}


@app.command()
def report(
    model: ModelOpt,
    out: OutOpt,
    measures: MeasuresOpt = "spectrum,response,gradcam",
    ckpt: CkptOpt = None,
    images: ImagesOpt = None,
    probe: ProbeOpt = None,
    layer: LayerOpt = None,
    method: MethodOpt = "gradcam",
    classes: ClassesOpt = None,
    sanity: Annotated[bool, typer.Option("--sanity", help="Grad-CAM: also run the parameter-randomisation check.")] = False,
    max_freq: MaxFreqOpt = 16,
    transfer_max_freq: TransferFreqOpt = 4,
    weights: WeightsOpt = "auto",
    trust_checkpoint: TrustOpt = False,
    limit: LimitOpt = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", "-b", min=1, help="Images per pass (default: each measure's).")] = None,
    num_workers: WorkersOpt = 0,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "float32",
    seed: SeedOpt = 0,
    quiet: QuietOpt = False,
    overwrite: OverwriteOpt = False,
) -> None:
    """Run several measures and write one self-contained report.html, results.json, CSVs and figures."""
    from freqlens import api

    with user_errors():
        names = [m.strip() for m in measures.split(",") if m.strip()]
        given: dict[str, Any] = {"probes": probe or (), "layer": layer, "method": method, "classes": parse_classes(classes),
                                 "sanity": sanity, "max_freq": full_grid(max_freq),
                                 "transfer_max_freq": full_grid(transfer_max_freq), "batch_size": batch_size}
        options = {name: {k: given[k] for k in MEASURE_OPTIONS.get(name, ()) if given[k] is not None} for name in names}
        result = api.report(model, images, measures=names, ckpt=ckpt, weights=weights, trust_checkpoint=trust_checkpoint,
                            options={k: v for k, v in options.items() if k in api.REPORT_MEASURES}, limit=limit,
                            num_workers=num_workers, device=device, dtype=dtype, seed=seed, progress=not quiet, out=out,
                            overwrite=overwrite)
    for folder in result.reports:
        typer.echo(f"{folder}\t{out / folder}")
    typer.echo(f"wrote {out / 'report.html'}", err=True)


@app.command()
def compare(
    models: Annotated[list[str], typer.Argument(help="Two or more models, each NAME or NAME=CHECKPOINT.", show_default=False)],
    out: OutOpt,
    images: ImagesOpt = None,
    probe: ProbeOpt = None,
    method: MethodOpt = "gradcam",
    classes: ClassesOpt = None,
    weights: WeightsOpt = "auto",
    trust_checkpoint: TrustOpt = False,
    limit: LimitOpt = None,
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", min=1, help="Images per pass.")] = 8,
    num_workers: WorkersOpt = 0,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "float32",
    seed: SeedOpt = 0,
    quiet: QuietOpt = False,
    overwrite: OverwriteOpt = False,
) -> None:
    """Models on the same images and settings: overlaid spectrum curves, Grad-CAM side by side, one report.html."""
    from freqlens import api

    with user_errors():
        result = api.compare(models, images, weights=weights, trust_checkpoint=trust_checkpoint, probes=probe or (),
                             method=method, classes=parse_classes(classes), batch_size=batch_size, limit=limit,
                             num_workers=num_workers, device=device, dtype=dtype, seed=seed, progress=not quiet, out=out,
                             overwrite=overwrite)
    typer.echo("model\tpoint\tnormalized_depth\tdelta_log_amplitude")
    for row in result.results["comparison"]["spectrum"]:
        typer.echo(f"{row['model']}\t{row['point']}\t{row['normalized_depth']:.3f}\t{row['delta_log_amplitude']:.4f}")
    typer.echo(f"wrote {out / 'report.html'}", err=True)
