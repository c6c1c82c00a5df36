"""Does relabel_fidelity rank a gold hindsight prompt above its corruptions?

For every reference prompt of every recoverable labeled example, five corruptions are built:
the original prompt copied back, a `must_not_require` item re-inserted, an invented number,
a meta word, and a report of what happened instead of a request. Each pair (gold, corrupted)
is scored with the metric, leaving the reference itself out of the closeness check for both
(otherwise gold would trivially win on closeness), and counted as ranked right when the gold
prompt scores strictly higher.

    python benchmarks/validate_metric.py [LABELED.jsonl ...]   (default: the shipped splits)
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

from agenther_dspy.eval import load_labeled
from agenther_dspy.eval.dataset import SPLITS, shipped_dir
from agenther_dspy.eval.metric import evidence_text, score_prompt
from agenther_dspy.schema import Trajectory
from agenther_dspy.text import numbers


def invent_number(prompt: str, evidence: str) -> str:
    seen = numbers(evidence)
    candidate = 7919
    while str(candidate) in seen:
        candidate += 1
    match = re.search(r"\d[\d,]*(?:\.\d+)?", prompt)
    if match:
        return prompt[: match.start()] + str(candidate) + prompt[match.end() :]
    return prompt.rstrip(".?! ") + f", for order number {candidate}."


def corruptions(reference: str, trajectory: Trajectory, gold: dict) -> dict[str, str]:
    out = {"copy_original": trajectory.original_prompt}
    if gold["must_not_require"]:
        out["leak"] = (
            reference.rstrip(".?! ") + f", and make sure it is {gold['must_not_require'][0]}."
        )
    out["invented_number"] = invent_number(reference, evidence_text(trajectory))
    out["meta_word"] = "Based on the agent trajectory, " + reference[0].lower() + reference[1:]
    if gold["achievements"]:
        achievement = gold["achievements"][0].rstrip(".")
        out["report"] = achievement[0].upper() + achievement[1:] + "."
    return out


def main(paths: list[Path]) -> None:
    right, total = Counter(), Counter()
    failures = []
    for path in paths:
        for example in load_labeled(path).examples:
            gold = example.gold
            if not gold["recoverable"]:
                continue
            trajectory = Trajectory.model_validate(example.trajectory)
            for reference in gold["reference_hindsight_prompts"]:
                good, _, _ = score_prompt(reference, trajectory, gold, exclude_reference=reference)
                for kind, bad_prompt in corruptions(reference, trajectory, gold).items():
                    bad, _, _ = score_prompt(
                        bad_prompt, trajectory, gold, exclude_reference=reference
                    )
                    total[kind] += 1
                    if good > bad:
                        right[kind] += 1
                    else:
                        failures.append((kind, round(good, 3), round(bad, 3), bad_prompt[:100]))
    print(f"{'corruption':<18}{'ranked right':>14}{'pairs':>8}{'share':>8}")
    for kind in total:
        print(f"{kind:<18}{right[kind]:>14}{total[kind]:>8}{right[kind] / total[kind]:>8.1%}")
    all_right, all_pairs = sum(right.values()), sum(total.values())
    print(f"{'all':<18}{all_right:>14}{all_pairs:>8}{all_right / max(1, all_pairs):>8.1%}")
    for failure in failures[:15]:
        print("  not ranked right:", failure)


if __name__ == "__main__":
    args = [Path(a) for a in sys.argv[1:]]
    main(args or [shipped_dir() / f"{split}.jsonl" for split in SPLITS])
