"""The one exception type for user-facing problems: what went wrong, and how to fix it."""
from __future__ import annotations


class FreqlensError(Exception):
    """A problem with the user's input (model name, checkpoint, images, options).

    The CLI prints ``message`` and ``hint`` without a traceback and exits with ``exit_code``
    (1 for runtime problems, 2 for usage problems).
    """

    def __init__(self, message: str, hint: str | None = None, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class UsageError(FreqlensError):
    """A bad option value or combination (exit code 2)."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message, hint, exit_code=2)
