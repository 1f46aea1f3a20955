"""Errors raised for problems with the user's input, with messages meant for people."""

from __future__ import annotations

from pathlib import Path


class RealanonError(Exception):
    """Base of the errors realanon raises for user-facing problems."""


class InputError(RealanonError):
    """A file that cannot be used as input (or output), and why.

    ``str(err)`` reads ``"<path>: <problem>"``.
    """

    def __init__(self, path: str | Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = str(path)
        self.problem = problem


class ConfigError(RealanonError):
    """A configuration value that does not make sense."""
