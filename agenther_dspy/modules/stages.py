"""Which stage a failure came from, and which failures are the model's answers.

The program tags an exception with the stage it was raised in (`tagged`), so whoever runs
the program can say where a record stopped without inspecting the traceback. The innermost
tag wins: the relabel-and-verify stage tags its second judge's calls `judge`, and the
program tags the whole stage `relabel` around it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from dspy.utils.exceptions import AdapterParseError
from pydantic import ValidationError

# An answer that does not parse, or whose values break the stage's types, is a property of
# the trajectory and the model, not a transient fault. Inside the relabel-and-verify stage
# it costs one attempt; anywhere else the run is rejected. Anything else (network, auth,
# a timeout after its retries) is not the answer's fault: the run ends in an error.
ANSWER_ERRORS: tuple[type[Exception], ...] = (AdapterParseError, ValidationError)

_STAGE_ATTRIBUTE = "agenther_stage"


@contextlib.contextmanager
def tagged(stage: str) -> Iterator[None]:
    """Tag an exception raised inside with `stage`, unless an inner stage already did."""
    try:
        yield
    except Exception as error:
        if not stage_of(error):
            with contextlib.suppress(AttributeError, TypeError):  # a few built-ins refuse
                setattr(error, _STAGE_ATTRIBUTE, stage)
        raise


def stage_of(error: BaseException) -> str:
    """The stage an exception was raised in, or "" when it came from outside every stage."""
    return str(getattr(error, _STAGE_ATTRIBUTE, "") or "")
