"""`python -m freqlens` runs the CLI."""
from freqlens.cli import main

main()
