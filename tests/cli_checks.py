"""What every CLI test needs: run a command in-process, and check that a failed run left no output."""
from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from freqlens.cli import app

_RUNNER = CliRunner()


def invoke(*args: str):
    """``freqlens ARGS...`` in-process; the typer result (exit_code, stdout, output)."""
    return _RUNNER.invoke(app, list(args))


def no_output_left(out: Path) -> bool:
    """Neither ``out`` nor a temporary sibling of it (the atomic writer's ``.<name>.*``) exists."""
    return not out.exists() and not any(p.name.startswith(f".{out.name}.") for p in out.parent.iterdir())
