"""Compiling the program with DSPy optimizers, and saving and loading compiled programs."""

from agenther_dspy.optimizers.saving import (
    ProgramError,
    load_program,
    save_program,
    shipped_program,
)

__all__ = ["ProgramError", "load_program", "save_program", "shipped_program"]
