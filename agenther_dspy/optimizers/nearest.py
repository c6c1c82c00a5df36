"""`nearest`: the request writer's demos, chosen per run from the labeled runs most like it.

A small model copies the demos it is shown into unrelated runs. So this compile stores a
pool of demos in `phrase_request`, each written from one train run's gold reference request
(no LM calls), and the program shows each run only the `NEAREST_SHOWN` whose drafts share
most words with its own (`structured.nearest_demos`): the same kind of action, in the
user's words a reviewer signed.

A demo is the run's own draft (the template of the goal nearest its reference), who the
user is, what failed, and the reference as the answer. A reference that fails the checks
the program itself applies to a request is left out: a demo must be a request the program
would accept.
"""

from __future__ import annotations

import dspy

import agenther_dspy.text as tx
from agenther_dspy.modules.facts import agent_words, run_facts
from agenther_dspy.modules.goals import candidate_goals
from agenther_dspy.modules.program import HindsightRelabeler
from agenther_dspy.modules.structured import (
    avoid_text,
    request_problems,
    template_request,
    who_text,
)
from agenther_dspy.optimizers.registry import CompileJob, Optimizer, register
from agenther_dspy.schema import Trajectory


@register(
    "nearest",
    budget=1,
    means="gold reference requests per train run in the request writer's demo pool (no LM"
    " calls); each run is shown the 3 nearest",
)
class Nearest(Optimizer):
    def expected_calls(self, budget, program, n_train, n_dev) -> tuple[int, str]:
        return 0, "demos are written from gold reference requests"

    def compile(self, program: HindsightRelabeler, job: CompileJob) -> HindsightRelabeler:
        if program.relabeler_kind != "structured":
            raise ValueError("the nearest optimizer needs the structured relabeler")
        compiled = program.deepcopy()
        pool = [demo for example in job.trainset for demo in phrase_demos(example)[: job.budget]]
        compiled.structured.phrase_request.demos = pool
        if job.log:
            job.log(f"nearest: {len(pool)} demos from {len(job.trainset)} train runs")
        return compiled


def phrase_demos(example: dspy.Example) -> list[dspy.Example]:
    """`phrase_request` demos written from one labeled run's reference requests."""
    gold = example.gold
    if not gold.get("recoverable"):
        return []
    trajectory = Trajectory.model_validate(example.trajectory)
    facts = run_facts(trajectory)
    goals = candidate_goals(facts, agent_words(trajectory))
    if not goals:
        return []
    drafts = [(goal, template_request(facts, goal)) for goal in goals]
    demos = []
    for reference in gold.get("reference_hindsight_prompts") or []:
        goal, draft = max(drafts, key=lambda pair: tx.token_f1(pair[1], reference))
        if request_problems(reference, trajectory, facts, goal):
            continue
        demos.append(
            dspy.Example(
                user=who_text(facts) or "not known",
                draft=draft,
                avoid=avoid_text(facts),
                feedback="",
                request=reference,
            ).with_inputs("user", "draft", "avoid", "feedback")
        )
    return demos
