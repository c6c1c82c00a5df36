"""Score an old `evaluate --report` again with today's metric and labeled set, without a call.

A program's decisions and requests do not depend on the metric or the gold annotation, so
an evaluation made before either changed can be compared with today's by re-scoring its
rows: each row's status and request are scored again against the current split. Rows whose
run is no longer in the split are left out, and said so.

    python benchmarks/rescore_report.py old.json --split test -o old-now.json
    python benchmarks/compare_reports.py old-now.json new.json
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, replace
from pathlib import Path

import dspy

from agenther_dspy.eval.dataset import load_labeled, resolve_dataset
from agenther_dspy.eval.evaluate import EvalRow, summarize
from agenther_dspy.eval.metric import relabel_fidelity


def rescore(rows: list[EvalRow], examples: dict[str, dspy.Example]) -> list[EvalRow]:
    """The rows whose run is in `examples`, scored again against its gold."""
    scored = []
    for row in rows:
        if (example := examples.get(row.trajectory_id)) is None:
            continue
        relabel = dspy.Prediction(hindsight_prompt=row.hindsight_prompt)
        pred = dspy.Prediction(status=row.status, relabel=relabel, reason=row.reason)
        result = relabel_fidelity(example, pred)
        gold = example.gold
        scored.append(
            replace(
                row,
                score=float(result.score),
                components=dict(result.get("components") or {}),
                feedback=str(result.get("feedback") or ""),
                gold=dict(gold),
                gold_recoverable=bool(gold["recoverable"]),
                gold_failure_type=gold["failure_type"],
            )
        )
    return scored


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("report", type=Path)
    parser.add_argument("--split", default="test", help="split of the shipped labeled set")
    parser.add_argument("--dataset", default=None, help="a labeled file or folder instead")
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args()
    old = json.loads(args.report.read_text())
    rows = [EvalRow(**row) for row in old["rows"]]
    labeled = load_labeled(resolve_dataset(args.dataset, args.split))
    examples = {ex.trajectory["trajectory_id"]: ex for ex in labeled.examples}
    scored = rescore(rows, examples)
    if gone := len(rows) - len(scored):
        print(f"{gone} of {len(rows)} runs are no longer in {labeled.path}: left out")
    summary = summarize(scored)
    report = {"params": old.get("params", {}), "summary": summary}
    report["rows"] = [asdict(row) for row in scored]
    args.output.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    before = old["summary"]["fidelity"]
    print(f"{len(scored)} runs: fidelity {before} then, {summary['fidelity']} now -> {args.output}")


if __name__ == "__main__":
    main()
