"""DSPy's own optimizers, each bounded by one budget: bootstrap, random-search, mipro, simba
and gepa. On a CPU-only local model only the first three are practical at small budgets."""

from __future__ import annotations

import random

import dspy

from agenther_dspy.modules.program import HindsightRelabeler
from agenther_dspy.optimizers.gold import shorter_half
from agenther_dspy.optimizers.registry import CompileJob, Optimizer, calls_per_run, register

# A bootstrapped trace becomes a demo only when the whole program scored at least this.
# At 0.7, vague requests such as "Find your speed, nothing less." became demos.
DEMO_THRESHOLD = 0.8


def demo_rule(job: CompileJob) -> dict:
    """How the bootstrapping optimizers keep demos: scored by the job's metric, only traces
    that reached `DEMO_THRESHOLD`, and never a raw labeled example (its fields are not the
    stages' fields)."""
    return {"metric": job.metric, "metric_threshold": DEMO_THRESHOLD, "max_labeled_demos": 0}


@register("bootstrap", budget=2, means="bootstrapped demos per stage (BootstrapFewShot)")
class Bootstrap(Optimizer):
    def expected_calls(self, budget, program, n_train, n_dev) -> tuple[int, str]:
        c = calls_per_run(program)
        return n_train * c, f"at most {n_train} train runs × {c} calls"

    def compile(self, program: HindsightRelabeler, job: CompileJob) -> HindsightRelabeler:
        teleprompter = dspy.BootstrapFewShot(
            **demo_rule(job), max_bootstrapped_demos=job.budget, max_rounds=1
        )
        compiled = teleprompter.compile(program, trainset=shorter_half(job.trainset, job.seed))
        return keep_valid_relabel_demos(compiled)


@register("random-search", budget=3, means="candidate programs (BootstrapFewShotWithRandomSearch)")
class RandomSearch(Optimizer):
    def expected_calls(self, budget, program, n_train, n_dev) -> tuple[int, str]:
        c = calls_per_run(program)
        how = f"({budget} candidates + 3 baselines) × ({n_train} train + {n_dev} dev) × {c}"
        return (budget + 3) * (n_train + n_dev) * c, how

    def compile(self, program: HindsightRelabeler, job: CompileJob) -> HindsightRelabeler:
        teleprompter = dspy.BootstrapFewShotWithRandomSearch(
            **demo_rule(job),
            max_bootstrapped_demos=2,
            num_candidate_programs=job.budget,
            num_threads=job.threads,
        )
        random.seed(job.seed)
        return teleprompter.compile(program, trainset=job.trainset, valset=job.devset)


@register("mipro", budget=6, means="search trials (MIPROv2, light-sized: 3 instruction candidates)")
class Mipro(Optimizer):
    def expected_calls(self, budget, program, n_train, n_dev) -> tuple[int, str]:
        c = calls_per_run(program)
        minibatch = min(35, n_dev)
        predictors = len(program.predictors())
        calls = 3 * n_train * c + 3 * predictors + 2 + budget * minibatch * c
        how = (
            f"3 bootstrap sets × {n_train} × {c} + {3 * predictors + 2} proposals"
            f" + {budget} trials × {minibatch} × {c}"
        )
        return calls, how

    def compile(self, program: HindsightRelabeler, job: CompileJob) -> HindsightRelabeler:
        teleprompter = dspy.MIPROv2(
            **demo_rule(job),
            prompt_model=job.prompt_lm,
            auto=None,
            num_candidates=3,
            max_bootstrapped_demos=1,
            num_threads=job.threads,
            seed=job.seed,
            verbose=False,
        )
        return teleprompter.compile(
            program,
            trainset=job.trainset,
            valset=job.devset,
            num_trials=job.budget,
            minibatch_size=min(35, len(job.devset)),
            minibatch=len(job.devset) > 35,
        )


@register("simba", budget=2, means="optimization steps (SIMBA, 3 candidates, mini-batches of ≤ 8)")
class Simba(Optimizer):
    def expected_calls(self, budget, program, n_train, n_dev) -> tuple[int, str]:
        c = calls_per_run(program)
        batch = min(8, n_train)
        # each step samples 3 candidates on a batch and scores 3 new programs on it; the
        # best programs of every step are scored on the whole train set at the end
        calls = (2 * 3 * batch * budget + (budget + 1) * n_train) * c
        how = f"(2 × 3 candidates × {batch} × {budget} steps + {budget + 1} × {n_train}) × {c}"
        return calls, how

    def compile(self, program: HindsightRelabeler, job: CompileJob) -> HindsightRelabeler:
        metric = job.metric
        teleprompter = dspy.SIMBA(
            metric=lambda example, pred: float(metric(example, pred).score),
            bsize=min(8, len(job.trainset)),
            num_candidates=3,
            max_steps=job.budget,
            max_demos=2,
            prompt_model=job.prompt_lm,
            num_threads=job.threads,
        )
        return teleprompter.compile(program, trainset=job.trainset, seed=job.seed)


@register("gepa", budget=40, means="metric calls (GEPA; needs --reflection-model)")
class Gepa(Optimizer):
    needs_reflection_lm = True

    def expected_calls(self, budget, program, n_train, n_dev) -> tuple[int, str]:
        c = calls_per_run(program)
        calls = budget * c + budget // 3 + 1
        return calls, f"{budget} metric calls × {c} + about {budget // 3 + 1} reflection calls"

    def compile(self, program: HindsightRelabeler, job: CompileJob) -> HindsightRelabeler:
        if job.reflection_lm is None:
            raise ValueError("gepa needs a reflection model: pass --reflection-model")
        teleprompter = dspy.GEPA(
            metric=job.metric,
            reflection_lm=job.reflection_lm,
            max_metric_calls=job.budget,
            # Two runs per reflection, not three: a rendered run is up to ~6,000 characters, and
            # three of them with their outputs and feedback near a local model's 8,192 tokens.
            reflection_minibatch_size=2,
            num_threads=job.threads,
            seed=job.seed,
            track_stats=False,
        )
        return teleprompter.compile(program, trainset=job.trainset, valset=job.devset)


def keep_valid_relabel_demos(program: HindsightRelabeler) -> HindsightRelabeler:
    """Drop the relabeler demos that say "not a valid replay".

    A trace that scored well still holds the attempts the acceptance loop rejected before
    the one it accepted; as demos they teach the relabeler to give up (measured: with them,
    the compiled program accepted none of the 18 dev runs).
    """
    predictor = program.relabeler.relabel
    predictor.demos = [d for d in predictor.demos if d.get("is_valid_replay", True) is True]
    return program
