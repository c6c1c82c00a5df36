"""Readers of agent-log formats into `Trajectory`, and writers of results."""

from agenther_dspy.formats.agenther import (
    InputError,
    InvalidRecord,
    Record,
    read_trajectories,
)

__all__ = ["InputError", "InvalidRecord", "Record", "read_trajectories"]
