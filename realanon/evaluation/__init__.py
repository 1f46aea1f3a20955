"""Privacy and utility of every anonymization method, side by side.

Import is light: the metrics and models load their heavy dependencies on first use.
The entry point is :func:`run_evaluation`; ``python -m eval CONFIG`` and ``realanon eval`` call it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

__all__ = ["run_evaluation"]


def run_evaluation(
    config_path: str | Path, output_dir: str | Path | None = None, resume: bool = True,
    methods: Sequence[str] | None = None,
) -> Path:
    """Runs the evaluation protocol in ``config_path`` and writes its report.

    Args:
        config_path: Protocol TOML (e.g. ``eval/small.toml``).
        output_dir: Where units, examples and the report go; defaults to ``eval_runs/<name>``.
        resume: Reuse finished units (task, method, seed) whose options have not changed.
        methods: Evaluate only these of the protocol's methods (report included); None for all.

    Returns:
        The report directory (holding ``report.md``, ``report.html``, ``results.json``).
    """
    from realanon.evaluation.runner import run_evaluation as run

    return run(config_path, output_dir, resume, methods)
