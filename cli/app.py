"""The typer app, its global options, shared option aliases and the error boundary of every command."""
from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import os
import sys
import typing
import warnings
from pathlib import Path
from typing import Annotated, Any, Callable, Iterator, Optional

import typer

from freqlens import __version__
from freqlens.errors import FreqlensError

app = typer.Typer(name="freqlens", help="How vision backbones treat frequency.", no_args_is_help=True,
                  add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)
_DEBUG = {"on": False}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"freqlens {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks for errors.")] = False,
) -> None:
    """freqlens: spectra, receptive fields, interactions, rank and rotation of vision backbones."""
    _DEBUG["on"] = debug
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, stream=sys.stderr, format="%(message)s")


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn FreqlensError into a one-line message and its exit code (2 usage, 1 other); no traceback."""
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = lambda message, *_args, **_kwargs: typer.echo(f"warning: {message}", err=True)
        try:
            yield
        except FreqlensError as exc:
            if _DEBUG["on"]:
                raise
            typer.echo(f"error: {exc.message}", err=True)
            if exc.hint:
                typer.echo(f"  hint: {exc.hint}", err=True)
            raise typer.Exit(code=exc.exit_code) from None
        except KeyboardInterrupt:
            typer.echo("interrupted: no output was written", err=True)
            raise typer.Exit(code=130) from None


# Shared options: one declaration, used by every command that takes them.
ModelOpt = Annotated[str, typer.Option("--model", "-m", help="timm/zoo name, module:factory or file.py:factory.")]
CkptOpt = Annotated[Optional[Path], typer.Option("--ckpt", help="Checkpoint (.pth/.pt/.bin/.safetensors). Without it: random weights.")]
ImagesOpt = Annotated[Optional[str], typer.Option("--images", "-i", help="Folder, ImageFolder tree, glob or .txt list. Default: bundled samples.")]
OutOpt = Annotated[Path, typer.Option("--out", "-o", help="Output folder (written atomically).")]
ProbeOpt = Annotated[Optional[list[str]], typer.Option("--probe", "-p", help="Glob over probe points or module paths; repeatable.")]
WeightsOpt = Annotated[str, typer.Option("--weights", help="Which weights of the checkpoint: auto, model or ema.")]
TrustOpt = Annotated[bool, typer.Option("--trust-checkpoint", help="Allow pickled code in the checkpoint (only for files you trust).")]
LimitOpt = Annotated[Optional[int], typer.Option("--limit", min=1, help="Use a seeded random subset of this many images.")]
BatchOpt = Annotated[int, typer.Option("--batch-size", "-b", min=1, help="Images per forward pass.")]
WorkersOpt = Annotated[int, typer.Option("--num-workers", min=0, help="Data-loading worker processes.")]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto, cpu, cuda or cuda:N.")]
DtypeOpt = Annotated[str, typer.Option("--dtype", help="float32, bfloat16 (autocast), float16 (autocast) or float64.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed for image subsets and any sampling.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace an existing --out folder.")]
PresetOpt = Annotated[str, typer.Option("--preset", help="Published protocol.")]
PassBatchOpt = Annotated[int, typer.Option("--batch-size", "-b", min=1, help="Images per forward/backward pass.")]

# The run options every analysis command takes after its own, as (name, annotation, default).
_RUN_OPTIONS = (
    ("weights", WeightsOpt, "auto"), ("trust_checkpoint", TrustOpt, False), ("limit", LimitOpt, None),
    ("num_workers", WorkersOpt, 0), ("device", DeviceOpt, "auto"), ("dtype", DtypeOpt, "float32"),
    ("seed", SeedOpt, 0), ("quiet", QuietOpt, False), ("overwrite", OverwriteOpt, False),
)


def analysis_command(fn: Callable[..., None]) -> Callable[..., None]:
    """Register ``fn`` as a command that also takes the run options every analysis shares.

    ``fn`` declares its own options and a ``run`` parameter; the command line offers its options followed
    by ``_RUN_OPTIONS``, and ``fn`` receives those as ``run``: keyword arguments for its ``freqlens.api``
    call (``--quiet`` as ``progress``). The call runs inside :func:`user_errors`. typer reads options off
    a signature, so the shared ones are written into the command's signature once, here. Under torchrun,
    the first process speaks for all: the others print no table, progress bar or warning (errors still).
    """
    hints = typing.get_type_hints(fn, include_extras=True)
    own = [p.replace(annotation=hints[p.name]) for p in inspect.signature(fn).parameters.values() if p.name != "run"]
    shared = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default)
              for name, annotation, default in _RUN_OPTIONS]

    @functools.wraps(fn)
    def command(**options: Any) -> None:
        run = {name: options.pop(name) for name, _, _ in _RUN_OPTIONS}
        secondary = int(os.environ.get("RANK", "0")) > 0
        run["progress"] = not run.pop("quiet") and not secondary
        with user_errors(), _silenced() if secondary else contextlib.nullcontext():
            fn(run=run, **options)

    command.__signature__ = inspect.Signature(own + shared)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in own + shared}
    return app.command()(command)


@contextlib.contextmanager
def _silenced() -> Iterator[None]:
    """No output and no warnings inside; what propagates out (errors) is still reported."""
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
