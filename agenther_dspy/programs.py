"""Which program a command runs, and what is logged about it.

A command runs a saved program (a file, or an MLflow URI resolved here, at the edge, so that
saving and loading never depend on tracking), the program compiled for the local model when
one ships with the package, or a fresh program built from the settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agenther_dspy.modules.program import HindsightRelabeler
from agenther_dspy.optimizers.saving import ProgramError, load_program

MLFLOW_SCHEMES = ("models:/", "runs:/")


def open_program(
    source: str | Path, *, tracking_uri: str | None = None, **settings: Any
) -> HindsightRelabeler:
    """A saved program from a file, `models:/NAME/VERSION` or `runs:/ID/PATH`; `settings`
    are θ, δ, K and the judge LM."""
    if str(source).startswith(MLFLOW_SCHEMES):
        from agenther_dspy.tracking import fetch_program

        try:
            source = fetch_program(str(source), tracking_uri)
        except Exception as error:  # MLflow raises many kinds; the user needs one line
            raise ProgramError(f"{source}: {type(error).__name__}: {error}") from None
    return load_program(source, **settings)
