"""`freqlens models` and `freqlens probes`: what can be analysed, and where the lens looks."""
from __future__ import annotations

from typing import Annotated, Optional

import typer

from freqlens.cli.app import CkptOpt, ModelOpt, app, user_errors


@app.command("models")
def list_models(
    pattern: Annotated[Optional[str], typer.Argument(
        help="Filter: a glob ('fdam*', '*deit*'), or a plain word matched anywhere in the name.")] = None,
    zoo: Annotated[bool, typer.Option("--zoo", help="Only freqlens zoo models.")] = False,
) -> None:
    """List model names (freqlens zoo and every timm model), one per line."""
    import timm

    if pattern and not any(ch in pattern for ch in "*?["):
        pattern = f"*{pattern}*"
    names = timm.list_models(pattern or "*")
    zoo_names = {n for n in names if timm.models.model_entrypoint(n).__module__.startswith("freqlens.")}
    shown = [name for name in names if name in zoo_names or not zoo]
    if not shown:
        typer.echo(f"no {'zoo ' if zoo else ''}model name matches {pattern!r}", err=True)
        raise typer.Exit(code=1)
    for name in shown:
        typer.echo(f"{name}\t{'zoo' if name in zoo_names else 'timm'}")


@app.command("probes")
def list_probes(model: ModelOpt, ckpt: CkptOpt = None) -> None:
    """List a model's probe points (name, layout, reduction, prefix tokens, kind)."""
    from freqlens import api
    from freqlens.loading import load_model

    with user_errors():
        loaded = load_model(model, ckpt) if ckpt else load_model(model)
        points = api.probe_points(loaded.model)
    typer.echo("name\tlayout\treduction\tprefix_tokens\tkind")
    for p in points:
        typer.echo(f"{p.name}\t{p.layout}\t{p.reduction}\t{p.prefix_tokens}\t{p.kind}")
