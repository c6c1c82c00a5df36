"""The optimizers that compile the program, one class each, in one registry.

Every optimizer is bounded by one number, `budget`, whose meaning depends on the optimizer
(demos, candidates, trials, steps or metric calls); `expected_calls` turns it into the
number of LM calls it should cost, so the cost is known before anything runs. A new
optimizer is a subclass of `Optimizer` decorated with `@register(name, ...)`, in a module
that `optimizers/compile.py` imports.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import dspy

from agenther_dspy.modules.program import HindsightRelabeler


@dataclass(frozen=True)
class Plan:
    optimizer: str
    budget: int
    expected_lm_calls: int
    explanation: str


@dataclass(frozen=True)
class CompileJob:
    """Everything an optimizer may use; the LM is whatever `dspy.context` holds."""

    trainset: list[dspy.Example]
    devset: list[dspy.Example]
    budget: int
    seed: int
    threads: int
    metric: Callable
    prompt_lm: dspy.LM | None = None
    reflection_lm: dspy.LM | None = None
    log: Callable[[str], None] | None = None


class Optimizer(ABC):
    name: ClassVar[str]
    budget_means: ClassVar[str]  # what one unit of budget buys, as the user is told
    default_budget: ClassVar[int]
    needs_reflection_lm: ClassVar[bool] = False

    @abstractmethod
    def expected_calls(
        self, budget: int, program: HindsightRelabeler, n_train: int, n_dev: int
    ) -> tuple[int, str]:
        """The LM calls of the compile itself, and how that number is made up."""

    @abstractmethod
    def compile(self, program: HindsightRelabeler, job: CompileJob) -> HindsightRelabeler:
        """A compiled copy of `program`; the caller's program is left as it was."""


OPTIMIZERS: dict[str, Optimizer] = {}


def register(name: str, *, budget: int, means: str) -> Callable[[type[Optimizer]], type[Optimizer]]:
    """A class decorator that names an optimizer, gives its default budget and what one
    unit of it buys, and puts it in `OPTIMIZERS`."""

    def add(cls: type[Optimizer]) -> type[Optimizer]:
        cls.name, cls.default_budget, cls.budget_means = name, budget, means
        OPTIMIZERS[name] = cls()
        return cls

    return add


def calls_per_run(program: HindsightRelabeler) -> int:
    """LM calls of one typical program run: the LM stages, one relabel and one judge."""
    return int(program.uses_llm_detector) + int(program.uses_llm_extractor) + 2
