"""Choose the acceptance rule from evaluation reports, with no LM call.

    agenther-dspy evaluate --split train --uncompiled --report train.json
    agenther-dspy evaluate --split dev --uncompiled --report dev.json
    python benchmarks/operating_point.py train.json dev.json --apply test.json

An evaluation report keeps, for every run, the decision, its score and the second judge's
verdict on the request that was accepted (`is_valid` and its confidence: P(true) where the
LM gave log probabilities). The acceptance rule can therefore be re-applied offline: the
single-judge fallback (the default: a request that passed every check stands), or the judge
required, with its confidence at least θ. A run the rule turns down scores what declining
earns under the metric: 1 for an unrecoverable run, 0 for a recoverable one.

Prints the mean and balanced fidelity of each rule over the given reports and picks the best
by `--by` (mean, the metric, or balanced, the mean of the recoverable and unrecoverable
means; the default rule comes first, so it wins ties); `--apply` scores every rule on another
report. The mean rewards turning nearly everything down when most runs are unrecoverable,
so read both.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

THRESHOLDS = (0.5, 0.55, 0.6, 0.65, 0.7, 0.8, 0.9)


def rows_of(paths: list[Path]) -> list[dict]:
    return [row for path in paths for row in json.loads(path.read_text())["rows"]]


def last_verdict(row: dict) -> dict:
    judged = [a["verdict"] for a in row.get("attempts") or [] if a.get("verdict")]
    return judged[-1] if judged else {}


def rescore(row: dict, threshold: float | None) -> float:
    """The row's score under the rule: None is the fallback, else the judge at θ."""
    if row["status"] != "accepted" or threshold is None:
        return float(row["score"])
    verdict = last_verdict(row)
    if verdict.get("is_valid") and float(verdict.get("confidence", 0)) >= threshold:
        return float(row["score"])
    return 0.0 if row["gold_recoverable"] else 1.0


def figures(rows: list[dict], threshold: float | None) -> tuple[float, float, int]:
    scores = [rescore(row, threshold) for row in rows]
    kept = sum(
        row["status"] == "accepted" and rescore(row, threshold) == row["score"] for row in rows
    )
    by_kind = [
        [s for s, row in zip(scores, rows, strict=True) if row["gold_recoverable"] is kind]
        for kind in (True, False)
    ]
    balanced = statistics.fmean(statistics.fmean(k) if k else 0.0 for k in by_kind)
    return statistics.fmean(scores), balanced, kept


def label(threshold: float | None) -> str:
    return "single-judge fallback" if threshold is None else f"judge required, θ={threshold}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+", type=Path, help="reports to choose on")
    parser.add_argument("--apply", type=Path, help="a report to score every rule on")
    parser.add_argument("--by", choices=("mean", "balanced"), default="mean")
    args = parser.parse_args()
    rules: list[float | None] = [None, *THRESHOLDS]
    chosen = rows_of(args.reports)
    held = rows_of([args.apply]) if args.apply else []
    print(f"{'rule':32} {'mean':>6} {'balanced':>9} {'kept':>5}", end="")
    print(f" | {'applied':>7} {'balanced':>9} {'kept':>5}" if held else "")
    best, best_score = None, -1.0
    for rule in rules:
        mean, balanced, kept = figures(chosen, rule)
        line = f"{label(rule):32} {mean:6.3f} {balanced:9.3f} {kept:5d}"
        if held:
            h_mean, h_balanced, h_kept = figures(held, rule)
            line += f" | {h_mean:7.3f} {h_balanced:9.3f} {h_kept:5d}"
        print(line)
        score = mean if args.by == "mean" else balanced
        if score > best_score:
            best, best_score = rule, score
    print(f"chosen by {args.by} on {', '.join(p.name for p in args.reports)}: {label(best)}")


if __name__ == "__main__":
    main()
