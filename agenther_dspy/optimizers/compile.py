"""Compiling the program: plan the cost of an optimizer's budget, then run it.

The optimizers live in the registry (`registry.OPTIMIZERS`), one class each, registered by
the modules imported here; the metric is `relabel_fidelity`, and every LM stage of the
program (the predictors it has) is optimized.
"""

from __future__ import annotations

from collections.abc import Callable

import dspy

from agenther_dspy.eval.metric import relabel_fidelity
from agenther_dspy.modules.program import HindsightRelabeler
from agenther_dspy.optimizers import gold, nearest, teleprompters
from agenther_dspy.optimizers.gold import gold_demos, gold_judge_demos, shorter_half
from agenther_dspy.optimizers.registry import (
    OPTIMIZERS,
    CompileJob,
    Optimizer,
    Plan,
    calls_per_run,
)
from agenther_dspy.optimizers.teleprompters import keep_valid_relabel_demos

OPTIMIZER_MODULES = (gold, nearest, teleprompters)  # importing them registers their optimizers


def get_optimizer(name: str) -> Optimizer:
    """The registered optimizer called `name`, or a ValueError that lists them."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose from {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[name]


def plan(
    name: str, budget: int | None, program: HindsightRelabeler, n_train: int, n_dev: int
) -> Plan:
    """The budget (the optimizer's default when None) and the LM calls it should cost,
    the dev scores before and after included."""
    spec = get_optimizer(name)
    budget = spec.default_budget if budget is None else budget
    if budget < 1:
        raise ValueError("--budget must be at least 1")
    calls, how = spec.expected_calls(budget, program, n_train, n_dev)
    evals = 2 * n_dev * calls_per_run(program)  # the dev evaluations before and after
    return Plan(name, budget, calls + evals, f"{how}, plus {evals} for the dev scores before/after")


def compile_program(
    program: HindsightRelabeler,
    trainset: list[dspy.Example],
    devset: list[dspy.Example],
    *,
    optimizer: str,
    budget: int,
    seed: int = 0,
    threads: int = 1,
    prompt_lm: dspy.LM | None = None,
    reflection_lm: dspy.LM | None = None,
    metric: Callable = relabel_fidelity,
    log: Callable[[str], None] | None = None,
) -> HindsightRelabeler:
    """The compiled copy of `program`; the LM is whatever `dspy.context` holds; `log` gets a
    line per candidate where the optimizer scores candidates itself."""
    job = CompileJob(trainset, devset, budget, seed, threads, metric, prompt_lm, reflection_lm, log)
    return get_optimizer(optimizer).compile(program, job)


__all__ = [
    "OPTIMIZERS",
    "Plan",
    "compile_program",
    "get_optimizer",
    "gold_demos",
    "gold_judge_demos",
    "keep_valid_relabel_demos",
    "plan",
    "shorter_half",
]
