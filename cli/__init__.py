"""The `freqlens` command line (imported as ``freqlens.cli``): one typer app, one module per command group."""
from freqlens.cli import erf, gradcam, interactions, models, rank, report, response, rotation, spectrum  # noqa: F401  (registers the commands)
from freqlens.cli.app import app


def main() -> None:
    """Console-script entry point."""
    app()


__all__ = ["app", "main"]
