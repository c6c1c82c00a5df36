"""Optimizers that write demos from the labeled set's gold labels: `labeled` and
`labeled-search`. Demos are paid for in every prompt, so both prefer the shorter runs."""

from __future__ import annotations

import random
import statistics

import dspy

from agenther_dspy.eval import evaluate
from agenther_dspy.modules.program import HindsightRelabeler, judge_required
from agenther_dspy.modules.render import render_trajectory
from agenther_dspy.optimizers.registry import (
    CompileJob,
    Optimizer,
    calls_per_run,
    register,
)
from agenther_dspy.schema import Trajectory


@register("labeled", budget=2, means="demos per stage, built from the gold labels (no LM calls)")
class Labeled(Optimizer):
    def expected_calls(self, budget, program, n_train, n_dev) -> tuple[int, str]:
        return 0, "demos are copied from gold labels"

    def compile(self, program: HindsightRelabeler, job: CompileJob) -> HindsightRelabeler:
        return compile_with_gold_demos(program, job.trainset, job.budget, job.seed)


@register(
    "labeled-search",
    budget=3,
    means="candidate gold-demo sets (judge only, or every stage), each scored on dev with and"
    " without the single-judge fallback; the best, uncompiled included, wins",
)
class LabeledSearch(Optimizer):
    def expected_calls(self, budget, program, n_train, n_dev) -> tuple[int, str]:
        c = calls_per_run(program)
        how = f"({budget} candidates + the uncompiled program) × {n_dev} dev × {c}"
        return (budget + 1) * n_dev * c, how

    def compile(self, program: HindsightRelabeler, job: CompileJob) -> HindsightRelabeler:
        return search_gold_demos(program, job)


def gold_demos(example: dspy.Example) -> dict[str, list[dspy.Example]]:
    """Demos for each of the program's predictors, written from one example's gold labels."""
    trajectory = Trajectory.model_validate(example.trajectory)
    gold = example.gold
    rendered = render_trajectory(trajectory)
    reference = (gold["reference_hindsight_prompts"] or [""])[0]
    missed = "; ".join(gold["must_not_require"]) or "nothing"
    demos: dict[str, list[dspy.Example]] = {
        "detector.predict": [
            dspy.Example(
                trajectory=rendered,
                original_prompt=trajectory.original_prompt,
                failure_reason=trajectory.failure_reason or "(not given)",
                failure_type=gold["failure_type"],
                severity_weight=gold["severity_weight"],
                recoverable=gold["recoverable"],
            )
        ],
        "extractor.predict": [
            dspy.Example(
                trajectory=rendered,
                original_prompt=trajectory.original_prompt,
                achievements=gold["achievements"],
                key_observations=gold["key_facts"],
                limitations=missed,
            )
        ],
        "relabeler.relabel": [
            dspy.Example(
                trajectory=rendered,
                achievements=gold["achievements"],
                key_observations=gold["key_facts"],
                not_achieved=missed,
                hindsight_prompt=reference or "none: nothing in the run is a usable result",
                is_valid_replay=gold["recoverable"],
                confidence=0.9 if gold["recoverable"] else 0.1,
            )
        ],
        "relabeler.judge": [
            dspy.Example(
                trajectory=rendered,
                hindsight_prompt=trajectory.original_prompt,
                is_valid=False,
                confidence=0.9,
            )
        ],
    }
    if reference:
        demos["relabeler.judge"].insert(
            0,
            dspy.Example(
                trajectory=rendered,
                hindsight_prompt=reference,
                is_valid=True,
                confidence=0.9,
            ),
        )
    return demos


def compile_with_gold_demos(
    program: HindsightRelabeler, trainset: list[dspy.Example], k: int, seed: int
) -> HindsightRelabeler:
    """Labeled few-shot for a multi-stage program: k demos per stage from gold labels.

    DSPy's LabeledFewShot copies raw examples into every predictor, which only works when the
    examples carry each predictor's fields; here each stage gets demos written for its own
    signature. Shorter runs are preferred (demos are paid for in every prompt), and
    recoverable and unrecoverable examples alternate so the relabeler sees both answers.
    """
    compiled = program.deepcopy()
    rng = random.Random(seed)
    by_length = sorted(
        trainset, key=lambda e: len(render_trajectory(Trajectory.model_validate(e.trajectory)))
    )
    pool = by_length[: max(2 * k, len(by_length) // 2)]
    rng.shuffle(pool)
    good = [e for e in pool if e.gold["recoverable"]]
    bad = [e for e in pool if not e.gold["recoverable"]]
    chosen = [e for pair in zip(good, bad, strict=False) for e in pair] + good[len(bad) :]
    chosen = (chosen or pool)[:k]
    # The relabeler runs only on runs the gate found recoverable, and a small model copies a
    # demo's "nothing usable" answer: its demos are recoverable runs only.
    relabelable = [e for e in chosen if e.gold["recoverable"]]
    relabelable += [e for e in good if e not in relabelable][: k - len(relabelable)]
    for name, predictor in compiled.named_predictors():
        sources = relabelable if name == "relabeler.relabel" else chosen
        predictor.demos = [demo for e in sources for demo in gold_demos(e).get(name, [])][
            : max(k, 2)
        ]
    return compiled


def gold_judge_demos(trainset: list[dspy.Example], seed: int) -> list[dspy.Example]:
    """Two demos for the second judge from the shorter train runs: a reference request that a
    recoverable run satisfies, and the original prompt an unrecoverable run failed.

    Once the judge decides (no single-judge fallback), its one job the relabeler does badly
    is to turn down runs with nothing usable in them; the second demo shows such a run.
    """
    pool = shorter_half(trainset, seed)
    good = [e for e in pool if e.gold["recoverable"] and e.gold["reference_hindsight_prompts"]]
    bad = [e for e in pool if not e.gold["recoverable"]]
    demos = [gold_demos(good[0])["relabeler.judge"][0]] if good else []
    if bad:
        demos += gold_demos(bad[0])["relabeler.judge"]  # only the failed prompt: invalid
    return demos


def search_gold_demos(
    program: HindsightRelabeler, job: CompileJob, demos_per_stage: int = 2
) -> HindsightRelabeler:
    """Random search over gold-demo sets and the acceptance rule: the best mean dev fidelity.

    The search tries `job.budget` candidates. Odd ones give gold demos to the second judge
    only (`gold_judge_demos`), even ones to every stage (`compile_with_gold_demos`), each
    with another seed so other train runs become the demos. Each candidate, the uncompiled
    program among them, is scored under both acceptance rules, with and without the
    single-judge fallback, from one evaluation (`judge_required`). The uncompiled program
    with the fallback comes first and wins ties: demos are paid for in every prompt, and on
    small models they can do harm (the model copies a demo's answer into an unrelated run),
    so they are kept only when dev says they help.
    """

    def scores(candidate: HindsightRelabeler) -> tuple[float, float]:
        """Mean dev fidelity with the fallback, and with the second judge required, from one
        evaluation: the fallback is decided after every attempt ran."""
        required: dict[int, float] = {}

        def both_rules(example: dspy.Example, pred: dspy.Prediction) -> dspy.Prediction:
            required[id(example)] = float(job.metric(example, judge_required(pred)).score)
            return job.metric(example, pred)

        report = evaluate(candidate, job.devset, metric=both_rules, threads=job.threads)
        with_fallback = statistics.fmean(row.score for row in report.rows)
        return with_fallback, statistics.fmean(required.values())

    best, best_score = program, -1.0
    for offset in range(job.budget + 1):
        seed = job.seed + offset
        if offset == 0:
            candidate, label = program.deepcopy(), "uncompiled"
        elif offset % 2:
            candidate, label = program.deepcopy(), f"judge demos (seed {seed})"
            candidate.relabeler.judge.demos = gold_judge_demos(job.trainset, seed)
        else:
            candidate = compile_with_gold_demos(program, job.trainset, demos_per_stage, seed)
            label = f"demos on every stage (seed {seed})"
        candidate.relabeler.single_judge_fallback = True
        with_fallback, required = scores(candidate)
        if job.log:
            job.log(f"{label}: dev {with_fallback:.3f} with the fallback, {required:.3f} without")
        for fallback, score in ((True, with_fallback), (False, required)):
            if score > best_score:
                best, best_score = candidate.deepcopy(), score
                best.relabeler.single_judge_fallback = fallback
    return best  # a copy: compiling never changes the caller's program


def shorter_half(trainset: list[dspy.Example], seed: int) -> list[dspy.Example]:
    """The shorter half of the train set, shuffled: bootstrapped demos come from these.

    A demo is paid for in every prompt of its stage. Demos from long runs cost minutes per
    trajectory on a CPU and pushed requests past an 8,192-token context (measured: 3 of 18
    dev runs failed that way with two tau2 runs as demos).
    """
    by_length = sorted(
        trainset, key=lambda e: len(render_trajectory(Trajectory.model_validate(e.trajectory)))
    )
    short = by_length[: max(1, (len(by_length) + 1) // 2)]
    random.Random(seed).shuffle(short)
    return short
