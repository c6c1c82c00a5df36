"""The second judge's confidence against blind reviewer verdicts: verbalized vs P(true).

For every reviewer-judged (run, request) pair of a split (`agenther_dspy/data/pairs/`), the
judge (`RelabelAndVerify.judge`, the embedded default model unless `--model` says otherwise)
answers once, with token log probabilities. From that one answer come two scores of "the
run satisfies the request":

  verbalized  the number the judge wrote, as P(valid): c when it said valid, 1 - c if not;
  p_true      the model's own probability of `True` where it wrote `is_valid`
              (`modules.calibration.p_true`).

Each is scored by AUROC against the verdicts ("would train on it" vs "would not"): 0.5 is
chance. Pairs on the same run share the run's prompt prefix, so llama.cpp evaluates each run
once. `--limit N` draws N runs with `--seed`, keeping all their pairs.

    python benchmarks/judge_calibration.py [--split dev] [--limit 20] [--seed 0] [--out F]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import dspy  # noqa: E402

from agenther_dspy.modules.adapter import default_adapter  # noqa: E402
from agenther_dspy.modules.calibration import LOGPROBS_CONFIG, p_true  # noqa: E402
from agenther_dspy.modules.relabel import JUDGE_TEMPERATURE, RelabelAndVerify  # noqa: E402
from agenther_dspy.modules.render import render_trajectory  # noqa: E402
from agenther_dspy.modules.stages import ANSWER_ERRORS  # noqa: E402
from agenther_dspy.schema import Trajectory  # noqa: E402
from agenther_dspy.settings import LMSettings  # noqa: E402

PAIRS = ROOT / "agenther_dspy/data/pairs"
LABELED = ROOT / "agenther_dspy/data/labeled"


def auroc(positives: list[float], negatives: list[float]) -> float | None:
    """The chance a random "train" pair outscores a random "reject" pair (ties count half)."""
    if not positives or not negatives:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return wins / (len(positives) * len(negatives))


def runs_by_id() -> dict[str, Trajectory]:
    runs = {}
    for path in sorted(LABELED.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            row.pop("gold", None)
            runs[row["trajectory_id"]] = Trajectory.model_validate(row)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="dev", choices=("train", "dev", "test"))
    parser.add_argument("--limit", type=int, default=None, help="runs to draw (all their pairs)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default="local")
    parser.add_argument("--out", type=Path, default=None, help="per-pair scores as JSON")
    args = parser.parse_args()

    pairs = [json.loads(line) for line in (PAIRS / f"{args.split}.jsonl").open(encoding="utf-8")]
    by_run: dict[str, list[dict]] = defaultdict(list)
    for pair in pairs:
        by_run[pair["trajectory_id"]].append(pair)
    chosen = sorted(by_run)
    if args.limit is not None and args.limit < len(chosen):
        chosen = sorted(random.Random(args.seed).sample(chosen, args.limit))
    runs = runs_by_id()

    lm_settings = LMSettings(model=args.model)
    lm_settings.configure_cache()
    dspy.configure(lm=lm_settings.build(), adapter=default_adapter())
    judge = RelabelAndVerify().judge
    rows, started = [], time.perf_counter()
    todo = [pair for run_id in chosen for pair in by_run[run_id]]
    for number, pair in enumerate(todo, 1):
        rendered = render_trajectory(runs[pair["trajectory_id"]])
        try:
            out = judge(
                trajectory=rendered,
                hindsight_prompt=pair["request"],
                config={"temperature": JUDGE_TEMPERATURE, **LOGPROBS_CONFIG},
            )
        except ANSWER_ERRORS as error:
            print(f"\n{pair['pair_id']}: unparseable answer: {error}"[:200], file=sys.stderr)
            continue
        probability = p_true(getattr(out, "logprobs", None), "is_valid")
        rows.append(
            {
                "pair_id": pair["pair_id"],
                "verdict": pair["verdict"],
                "is_valid": out.is_valid,
                "confidence": out.confidence,
                "verbalized": out.confidence if out.is_valid else 1.0 - out.confidence,
                "p_true": probability,
            }
        )
        elapsed = time.perf_counter() - started
        print(f"\r{number}/{len(todo)} pairs, {elapsed:.0f} s", end="", file=sys.stderr)
    print(file=sys.stderr)

    def score(name: str) -> float | None:
        kept = [r for r in rows if r[name] is not None]
        return auroc(
            [r[name] for r in kept if r["verdict"] == "train"],
            [r[name] for r in kept if r["verdict"] != "train"],
        )

    report = {
        "split": args.split,
        "runs": len(chosen),
        "pairs": len(rows),
        "train_verdicts": sum(r["verdict"] == "train" for r in rows),
        "judged_valid": sum(bool(r["is_valid"]) for r in rows),
        "p_true_found": sum(r["p_true"] is not None for r in rows),
        "distinct_verbalized": len({r["confidence"] for r in rows}),
        "auroc_verbalized": score("verbalized"),
        "auroc_p_true": score("p_true"),
        "seconds_per_pair": round((time.perf_counter() - started) / max(1, len(rows)), 1),
    }
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.write_text(json.dumps({"report": report, "pairs": rows}, indent=1))


if __name__ == "__main__":
    main()
