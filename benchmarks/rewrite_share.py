"""How much of an evaluation's accepted requests the LM wrote, and how much is code's draft.

The structured relabeler's `phrase_request` rewrites a draft built from templates of the
chosen actions. This counts the accepted requests of `evaluate --report` files that are one
of their run's drafts word for word, so a model's share of the wording can be compared: a
model that only copies the draft adds nothing to the request but its cost. The drafts are
today's: a report made before the templates changed counts their old wording as reworded.

    python benchmarks/rewrite_share.py train.json dev.json test.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from agenther_dspy.eval.dataset import load_labeled
from agenther_dspy.modules.facts import agent_words, run_facts
from agenther_dspy.modules.goals import candidate_goals
from agenther_dspy.modules.structured import template_request
from agenther_dspy.schema import Trajectory


def drafts(trajectory: Trajectory) -> set[str]:
    """Every draft the program could have built for the run, one per goal it offers."""
    facts = run_facts(trajectory)
    return {
        template_request(facts, goal) for goal in candidate_goals(facts, agent_words(trajectory))
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("reports", type=Path, nargs="+")
    args = parser.parse_args()
    total = copied = 0
    for path in args.reports:
        report = json.loads(path.read_text())
        labeled = load_labeled(report["params"]["dataset"])
        runs = {ex.trajectory["trajectory_id"]: ex.trajectory for ex in labeled.examples}
        accepted = [row for row in report["rows"] if row["status"] == "accepted"]
        same = [
            row
            for row in accepted
            if row["hindsight_prompt"]
            in drafts(Trajectory.model_validate(runs[row["trajectory_id"]]))
        ]
        print(
            f"{path.name}: {len(same)} of {len(accepted)} accepted requests are a draft, "
            "word for word"
        )
        for row in accepted:
            if row not in same:
                print(f"  reworded: {row['trajectory_id']}: {row['hindsight_prompt'][:160]}")
        total, copied = total + len(accepted), copied + len(same)
    print(f"all: {copied} of {total} are the draft word for word")


if __name__ == "__main__":
    main()
