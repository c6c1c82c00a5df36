"""Compare two `agenther-dspy evaluate --report` files on the same labeled set.

Prints, for each report, fidelity with its bootstrap interval, acceptance precision and
recall, failure-type accuracy and cost, then the paired gain of the second over the first
(a bootstrap over examples with both scores kept together) and whether it is beyond noise.

    agenther-dspy evaluate --split test --uncompiled --report before.json
    agenther-dspy evaluate --split test --program relabeler.json --report after.json
    python benchmarks/compare_reports.py before.json after.json [--markdown]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from agenther_dspy.eval import paired_difference
from agenther_dspy.eval.evaluate import EvalRow

COLUMNS = (
    ("fidelity", "fidelity"),
    ("fidelity_ci95", "95% interval"),
    ("accepted", "accepted"),
    ("acceptance_precision", "precision"),
    ("acceptance_recall", "recall"),
    ("failure_type_accuracy", "failure type"),
    ("lm_calls_per_trajectory", "LM calls/run"),
    ("seconds_per_trajectory", "s/run"),
)


def load(path: Path) -> tuple[dict, list[EvalRow]]:
    report = json.loads(path.read_text())
    return report["summary"], [EvalRow(**row) for row in report["rows"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")
    args = parser.parse_args()
    (before, before_rows), (after, after_rows) = load(args.before), load(args.after)
    gain = paired_difference(before_rows, after_rows)
    if args.markdown:
        print("| program | " + " | ".join(title for _, title in COLUMNS) + " |")
        print("|---" * (len(COLUMNS) + 1) + "|")
    for label, summary in ((args.before.stem, before), (args.after.stem, after)):
        values = [str(summary.get(key, "")) for key, _ in COLUMNS]
        if args.markdown:
            print(f"| {label} | " + " | ".join(values) + " |")
        else:
            print(label, ", ".join(f"{t} {v}" for (_, t), v in zip(COLUMNS, values, strict=True)))
    verdict = "beyond noise" if gain["beyond_noise"] else "within noise"
    print(
        f"\npaired gain {gain['gain']:+.4f}, 95% interval {gain['gain_ci95']} ({verdict}); "
        f"{gain['better']} examples better, {gain['worse']} worse, of {gain['examples']}"
    )


if __name__ == "__main__":
    main()
