"""Compiling the relabeler: the registry of DSPy optimizers, each with an explicit budget.

Every optimizer is bounded by one number, `budget`, whose meaning depends on the optimizer
(demos, candidates, trials, steps or metric calls); `plan()` turns it into the expected number
of LM calls so the cost is known before anything runs. The metric is `relabel_fidelity`, and
every LM stage of the program (the predictors it has) is optimized.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

import dspy

from agenther_dspy.eval.metric import relabel_fidelity
from agenther_dspy.modules.program import HindsightRelabeler, judge_required
from agenther_dspy.modules.render import render_trajectory
from agenther_dspy.schema import Trajectory

# A bootstrapped trace becomes a demo only when the whole program scored at least this.
# At 0.7, vague requests such as "Find your speed, nothing less." became demos.
DEMO_THRESHOLD = 0.8


@dataclass(frozen=True)
class Optimizer:
    name: str
    budget_means: str
    default_budget: int
    needs: str | None = None  # "reflection_lm" for GEPA


OPTIMIZERS: dict[str, Optimizer] = {
    o.name: o
    for o in (
        Optimizer("labeled", "demos per stage, built from the gold labels (no LM calls)", 2),
        Optimizer(
            "labeled-search",
            "candidate gold-demo sets (judge only, or every stage), each scored on dev with and"
            " without the single-judge fallback; the best, uncompiled included, wins",
            3,
        ),
        Optimizer("bootstrap", "bootstrapped demos per stage (BootstrapFewShot)", 2),
        Optimizer("random-search", "candidate programs (BootstrapFewShotWithRandomSearch)", 3),
        Optimizer("mipro", "search trials (MIPROv2, light-sized: 3 instruction candidates)", 6),
        Optimizer("simba", "optimization steps (SIMBA, 3 candidates, mini-batches of ≤ 8)", 2),
        Optimizer("gepa", "metric calls (GEPA; needs --reflection-model)", 40, "reflection_lm"),
    )
}


@dataclass(frozen=True)
class Plan:
    optimizer: str
    budget: int
    expected_lm_calls: int
    explanation: str


def calls_per_run(program: HindsightRelabeler) -> int:
    """LM calls of one typical program run: the LM stages, one relabel and one judge."""
    return int(program.uses_llm_detector) + int(program.uses_llm_extractor) + 2


def plan(
    name: str, budget: int | None, program: HindsightRelabeler, n_train: int, n_dev: int
) -> Plan:
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose from {', '.join(OPTIMIZERS)}")
    spec = OPTIMIZERS[name]
    budget = spec.default_budget if budget is None else budget
    if budget < 1:
        raise ValueError("--budget must be at least 1")
    c = calls_per_run(program)
    evals = 2 * n_dev * c  # the dev evaluations before and after
    if name == "labeled":
        calls, how = 0, "demos are copied from gold labels"
    elif name == "labeled-search":
        calls = (budget + 1) * n_dev * c
        how = f"({budget} candidates + the uncompiled program) × {n_dev} dev × {c}"
    elif name == "bootstrap":
        calls, how = n_train * c, f"at most {n_train} train runs × {c} calls"
    elif name == "random-search":
        calls = (budget + 3) * (n_train + n_dev) * c
        how = f"({budget} candidates + 3 baselines) × ({n_train} train + {n_dev} dev) × {c}"
    elif name == "mipro":
        minibatch = min(35, n_dev)
        predictors = len(program.predictors())
        calls = 3 * n_train * c + 3 * predictors + 2 + budget * minibatch * c
        how = (
            f"3 bootstrap sets × {n_train} × {c} + {3 * predictors + 2} proposals"
            f" + {budget} trials × {minibatch} × {c}"
        )
    elif name == "simba":
        batch = min(8, n_train)
        # each step samples 3 candidates on a batch and scores 3 new programs on it; the
        # best programs of every step are scored on the whole train set at the end
        calls = (2 * 3 * batch * budget + (budget + 1) * n_train) * c
        how = f"(2 × 3 candidates × {batch} × {budget} steps + {budget + 1} × {n_train}) × {c}"
    else:  # gepa
        calls = budget * c + budget // 3 + 1
        how = f"{budget} metric calls × {c} + about {budget // 3 + 1} reflection calls"
    return Plan(name, budget, calls + evals, f"{how}, plus {evals} for the dev scores before/after")


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
    program: HindsightRelabeler,
    trainset: list[dspy.Example],
    devset: list[dspy.Example],
    *,
    candidates: int,
    seed: int,
    metric: Callable,
    threads: int = 1,
    demos_per_stage: int = 2,
    log: Callable[[str], None] | None = None,
) -> HindsightRelabeler:
    """Random search over gold-demo sets and the acceptance rule: the best mean dev fidelity.

    Odd candidates give gold demos to the second judge only (`gold_judge_demos`), even ones to
    every stage (`compile_with_gold_demos`), each with another seed so other train runs
    become the demos. Each candidate, the uncompiled program among them, is scored under
    both acceptance rules, with and without the single-judge fallback, from one evaluation
    (`judge_required`). The uncompiled program with the fallback comes first and wins ties:
    demos are paid for in every prompt, and on small models they can do harm (the model
    copies a demo's answer into an unrelated run), so they are kept only when dev says they
    help.
    """
    evaluate = dspy.Evaluate(
        devset=devset,
        metric=lambda example, pred, trace=None: float(metric(example, pred).score),
        num_threads=threads,
        display_progress=False,
        display_table=False,
        failure_score=0.0,
        provide_traceback=False,
    )

    def scores(candidate: HindsightRelabeler) -> tuple[float, float]:
        """Mean dev fidelity with the fallback, and with the second judge required."""
        results = evaluate(candidate).results
        required = [float(metric(ex, judge_required(pred)).score) for ex, pred, _ in results]
        return sum(s for _, _, s in results) / len(results), sum(required) / len(required)

    best, best_score = program, -1.0
    for offset in range(candidates + 1):
        if offset == 0:
            candidate, label = program.deepcopy(), "uncompiled"
        elif offset % 2:
            candidate, label = program.deepcopy(), f"judge demos (seed {seed + offset})"
            candidate.relabeler.judge.demos = gold_judge_demos(trainset, seed + offset)
        else:
            candidate = compile_with_gold_demos(program, trainset, demos_per_stage, seed + offset)
            label = f"demos on every stage (seed {seed + offset})"
        candidate.relabeler.single_judge_fallback = True
        with_fallback, required = scores(candidate)
        if log:
            log(f"{label}: dev {with_fallback:.3f} with the fallback, {required:.3f} without")
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


def keep_valid_relabel_demos(program: HindsightRelabeler) -> HindsightRelabeler:
    """Drop the relabeler demos that say "not a valid replay".

    A trace that scored well still holds the attempts the acceptance loop rejected before
    the one it accepted; as demos they teach the relabeler to give up (measured: with them,
    the compiled program accepted none of the 18 dev runs).
    """
    predictor = program.relabeler.relabel
    predictor.demos = [d for d in predictor.demos if d.get("is_valid_replay", True) is True]
    return program


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
    if optimizer == "labeled":
        return compile_with_gold_demos(program, trainset, budget, seed)
    if optimizer == "labeled-search":
        return search_gold_demos(
            program,
            trainset,
            devset,
            candidates=budget,
            seed=seed,
            metric=metric,
            threads=threads,
            log=log,
        )
    if optimizer == "bootstrap":
        teleprompter = dspy.BootstrapFewShot(
            metric=metric,
            metric_threshold=DEMO_THRESHOLD,
            max_bootstrapped_demos=budget,
            max_labeled_demos=0,
            max_rounds=1,
        )
        compiled = teleprompter.compile(program, trainset=shorter_half(trainset, seed))
        return keep_valid_relabel_demos(compiled)
    if optimizer == "random-search":
        teleprompter = dspy.BootstrapFewShotWithRandomSearch(
            metric=metric,
            metric_threshold=DEMO_THRESHOLD,
            max_bootstrapped_demos=2,
            max_labeled_demos=0,
            num_candidate_programs=budget,
            num_threads=threads,
        )
        random.seed(seed)
        return teleprompter.compile(program, trainset=trainset, valset=devset)
    if optimizer == "mipro":
        teleprompter = dspy.MIPROv2(
            metric=metric,
            prompt_model=prompt_lm,
            auto=None,
            num_candidates=3,
            max_bootstrapped_demos=1,
            max_labeled_demos=0,
            num_threads=threads,
            seed=seed,
            metric_threshold=DEMO_THRESHOLD,
            verbose=False,
        )
        return teleprompter.compile(
            program,
            trainset=trainset,
            valset=devset,
            num_trials=budget,
            minibatch_size=min(35, len(devset)),
            minibatch=len(devset) > 35,
        )
    if optimizer == "simba":
        teleprompter = dspy.SIMBA(
            metric=lambda example, pred: float(metric(example, pred).score),
            bsize=min(8, len(trainset)),
            num_candidates=3,
            max_steps=budget,
            max_demos=2,
            prompt_model=prompt_lm,
            num_threads=threads,
        )
        return teleprompter.compile(program, trainset=trainset, seed=seed)
    if optimizer == "gepa":
        if reflection_lm is None:
            raise ValueError("gepa needs a reflection model: pass --reflection-model")
        teleprompter = dspy.GEPA(
            metric=metric,
            reflection_lm=reflection_lm,
            max_metric_calls=budget,
            # Two runs per reflection, not three: a rendered run is up to ~6,000 characters, and
            # three of them with their outputs and feedback near a local model's 8,192 tokens.
            reflection_minibatch_size=2,
            num_threads=threads,
            seed=seed,
            track_stats=False,
        )
        return teleprompter.compile(program, trainset=trainset, valset=devset)
    raise ValueError(f"unknown optimizer {optimizer!r}; choose from {', '.join(OPTIMIZERS)}")
