"""The three failure detectors on one labeled split: rules, the LM, and the hybrid.

Each labeled run is classified by the keyword rules (`RuleFailureDetector`), by the LM
(`LMFailureDetector`, the embedded default unless `--model` says otherwise) and by the
hybrid (`HybridFailureDetector`: `clear_cut` rules, the LM for the rest). The hybrid's LM
answers are the LM detector's own, so the LM runs once per run. Reported against the gold
labels: failure-type accuracy, and precision and recall of `recoverable` (the gate that
lets a run through to relabeling), with how many runs the clear-cut rules settled and how
often they were right. For the LM's `recoverable`, also the AUROC against the annotation of
its written answer (1 or 0: its balanced accuracy) and of its P(true) where it wrote the
answer (`modules.calibration`), on every run and on the runs the clear-cut rules leave to
the LM.

    python benchmarks/detector_variants.py [--split dev] [--model local] [--out FILE]

LM answers go through DSPy's response cache, so a second run of the same split is fast.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import dspy  # noqa: E402
from dspy.utils.exceptions import ContextWindowExceededError  # noqa: E402

from agenther_dspy.eval.dataset import load_labeled  # noqa: E402
from agenther_dspy.modules.adapter import default_adapter  # noqa: E402
from agenther_dspy.modules.detector import (  # noqa: E402
    LMFailureDetector,
    RuleFailureDetector,
    clear_cut,
)
from agenther_dspy.modules.render import render_trajectory  # noqa: E402
from agenther_dspy.modules.stages import ANSWER_ERRORS  # noqa: E402
from agenther_dspy.schema import Trajectory  # noqa: E402
from agenther_dspy.settings import LMSettings  # noqa: E402


def scores(rows: list[dict], variant: str) -> dict:
    """Failure-type accuracy and the recoverable gate's precision and recall."""
    typed = sum(r[variant]["failure_type"] == r["gold_type"] for r in rows)
    passed = [r for r in rows if r[variant]["recoverable"]]
    positives = [r for r in rows if r["gold_recoverable"]]
    hits = sum(r["gold_recoverable"] for r in passed)
    return {
        "failure_type_accuracy": round(typed / len(rows), 3),
        "let_through": len(passed),
        "recoverable_precision": round(hits / len(passed), 3) if passed else None,
        "recoverable_recall": round(hits / len(positives), 3) if positives else None,
    }


def auroc(positives: list[float], negatives: list[float]) -> float | None:
    """The chance a random recoverable run outscores a random other one (ties count half)."""
    if not positives or not negatives:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return round(wins / (len(positives) * len(negatives)), 3)


def recoverable_auroc(rows: list[dict]) -> dict:
    """The LM's `recoverable` scored as written and as P(true), on the runs that have both."""
    kept = [r for r in rows if r["lm"].get("recoverable_p") is not None]
    scored = {
        "written": [float(r["lm"]["recoverable"]) for r in kept],
        "p_true": [r["lm"]["recoverable_p"] for r in kept],
    }
    gold = [r["gold_recoverable"] for r in kept]

    def split(values: list[float], kind: bool) -> list[float]:
        return [s for s, g in zip(values, gold, strict=True) if g is kind]

    return {
        "runs": len(kept),
        "recoverable": sum(gold),
        **{name: auroc(split(v, True), split(v, False)) for name, v in scored.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="dev", choices=("train", "dev", "test"))
    parser.add_argument("--model", default="local")
    parser.add_argument("--out", type=Path, default=None, help="per-run answers as JSON")
    args = parser.parse_args()

    labeled = load_labeled(ROOT / f"agenther_dspy/data/labeled/{args.split}.jsonl")
    lm_settings = LMSettings(model=args.model)
    lm_settings.configure_cache()
    dspy.configure(lm=lm_settings.build(), adapter=default_adapter())
    rules, lm = RuleFailureDetector(), LMFailureDetector()
    rows, started = [], time.perf_counter()
    for number, example in enumerate(labeled.examples, 1):
        trajectory = Trajectory.model_validate(example.trajectory)
        rendered = render_trajectory(trajectory)
        row = {
            "trajectory_id": trajectory.trajectory_id,
            "gold_type": example.gold["failure_type"],
            "gold_recoverable": example.gold["recoverable"],
            "rules": rules(trajectory=trajectory, rendered=rendered).analysis.model_dump(),
        }
        try:
            row["lm"] = lm(trajectory=trajectory, rendered=rendered).analysis.model_dump()
        except (*ANSWER_ERRORS, ContextWindowExceededError) as error:  # lets nothing through
            row["lm"] = {"failure_type": "", "recoverable": False, "error": str(error)[:200]}
        settled = clear_cut(trajectory)
        row["clear_cut"] = settled is not None
        row["hybrid"] = settled.model_dump() if settled else row["lm"]
        rows.append(row)
        elapsed = time.perf_counter() - started
        print(f"\r{number}/{len(labeled.examples)} runs, {elapsed:.0f} s", end="", file=sys.stderr)
    print(file=sys.stderr)

    settled = [r for r in rows if r["clear_cut"]]
    report = {
        "split": args.split,
        "runs": len(rows),
        "recoverable": sum(r["gold_recoverable"] for r in rows),
        "seconds_per_run": round((time.perf_counter() - started) / len(rows), 1),
        "clear_cut": {
            "runs": len(settled),
            "gold_not_recoverable": sum(not r["gold_recoverable"] for r in settled),
            "failure_type_right": sum(
                r["hybrid"]["failure_type"] == r["gold_type"] for r in settled
            ),
        },
        **{variant: scores(rows, variant) for variant in ("rules", "lm", "hybrid")},
        "lm_recoverable_auroc": {
            "all": recoverable_auroc(rows),
            "left_to_lm": recoverable_auroc([r for r in rows if not r["clear_cut"]]),
        },
    }
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.write_text(json.dumps({"report": report, "runs": rows}, indent=1))


if __name__ == "__main__":
    main()
