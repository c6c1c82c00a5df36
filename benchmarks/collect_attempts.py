"""Collect every relabeling attempt the program makes on some runs, for the reviewer pairs.

The detector's gate is skipped (every run is extracted and relabeled) so that each run gets
requests to judge, accepted or not. One line per run: its attempts as the program recorded
them. Resumable: runs already in OUTPUT are skipped.

    python benchmarks/collect_attempts.py RUNS.jsonl OUTPUT.jsonl [--model local] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import dspy

from agenther_dspy.lm import build_lm
from agenther_dspy.modules.program import HindsightRelabeler
from agenther_dspy.modules.render import render_trajectory
from agenther_dspy.schema import Trajectory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--model", default="local")
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()
    done = set()
    if args.output.exists():
        done = {json.loads(line)["trajectory_id"] for line in args.output.read_text().splitlines()}
    rows = [json.loads(line) for line in args.runs.read_text().splitlines() if line.strip()]
    program = HindsightRelabeler(severity_threshold=0.0)
    with dspy.context(lm=build_lm(args.model)):
        for row in rows[: args.limit]:
            trajectory = Trajectory.model_validate(row)
            if trajectory.trajectory_id in done:
                continue
            started = time.perf_counter()
            rendered = render_trajectory(trajectory)
            outcome = program.extractor(trajectory=trajectory, rendered=rendered).outcome
            decision = program.relabeler(
                rendered=rendered, original_prompt=trajectory.original_prompt, outcome=outcome
            )
            record = {
                "trajectory_id": trajectory.trajectory_id,
                "model": args.model,
                "status": decision.status,
                "attempts": decision.attempts,
                "seconds": round(time.perf_counter() - started, 1),
            }
            with args.output.open("a") as out:
                out.write(json.dumps(record, default=str) + "\n")
            print(args.model, trajectory.trajectory_id, decision.status, record["seconds"])


if __name__ == "__main__":
    main()
