"""`freqlens report` (several measures of one model, one HTML page) and `freqlens compare` (models side by side)."""
from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from freqlens.cli.app import CkptOpt, ImagesOpt, ModelOpt, OutOpt, ProbeOpt, analysis_command
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


ReportSanityOpt = Annotated[bool, typer.Option("--sanity", help="Grad-CAM: also run the parameter-randomisation check.")]
EachBatchOpt = Annotated[Optional[int], typer.Option(
    "--batch-size", "-b", min=1, help="Images per pass (default: each measure's).")]
ModelsArg = Annotated[list[str], typer.Argument(help="Two or more models, each NAME or NAME=CHECKPOINT.", show_default=False)]
CompareBatchOpt = Annotated[int, typer.Option("--batch-size", "-b", min=1, help="Images per pass.")]


@analysis_command
def report(model: ModelOpt, out: OutOpt, run: dict, measures: MeasuresOpt = "spectrum,response,gradcam",
           ckpt: CkptOpt = None, images: ImagesOpt = None, probe: ProbeOpt = None, layer: LayerOpt = None,
           method: MethodOpt = "gradcam", classes: ClassesOpt = None, sanity: ReportSanityOpt = False,
           max_freq: MaxFreqOpt = 16, transfer_max_freq: TransferFreqOpt = 4, batch_size: EachBatchOpt = None) -> None:
    """Run several measures and write one self-contained report.html, results.json, CSVs and figures."""
    from freqlens import api

    names = [m.strip() for m in measures.split(",") if m.strip()]
    given: dict[str, Any] = {"probes": probe or (), "layer": layer, "method": method, "classes": parse_classes(classes),
                             "sanity": sanity, "max_freq": full_grid(max_freq),
                             "transfer_max_freq": full_grid(transfer_max_freq), "batch_size": batch_size}
    options = {name: {k: given[k] for k in MEASURE_OPTIONS.get(name, ()) if given[k] is not None} for name in names}
    result = api.report(model, images, measures=names, ckpt=ckpt,
                        options={k: v for k, v in options.items() if k in api.REPORT_MEASURES}, out=out, **run)
    for folder in result.reports:
        typer.echo(f"{folder}\t{out / folder}")
    typer.echo(f"wrote {out / 'report.html'}", err=True)


@analysis_command
def compare(models: ModelsArg, out: OutOpt, run: dict, images: ImagesOpt = None, probe: ProbeOpt = None,
            method: MethodOpt = "gradcam", classes: ClassesOpt = None, batch_size: CompareBatchOpt = 8) -> None:
    """Models on the same images and settings: overlaid spectrum curves, Grad-CAM side by side, one report.html."""
    from freqlens import api

    result = api.compare(models, images, probes=probe or (), method=method, classes=parse_classes(classes),
                         batch_size=batch_size, out=out, **run)
    typer.echo("model\tpoint\tnormalized_depth\tdelta_log_amplitude")
    for row in result.results["comparison"]["spectrum"]:
        typer.echo(f"{row['model']}\t{row['point']}\t{row['normalized_depth']:.3f}\t{row['delta_log_amplitude']:.4f}")
    typer.echo(f"wrote {out / 'report.html'}", err=True)
