"""Does relabel_fidelity agree with a reviewer, and rank a gold prompt above its corruptions?

Part 1, reviewer agreement: every (run, request) pair in agenther_dspy/data/pairs/ has a
blind reviewer verdict ("train" or "reject"). Each pair is scored as an accepted relabel of
its labeled run, and the script prints, per split, the AUROC of the score against the
verdicts (ties count half), how many rejected pairs score above 0.30 (the target is none),
and the worst disagreements both ways.

Part 2, corruption ranking: for every reference prompt of every recoverable labeled
example, five corruptions are built: the original prompt copied back, a `must_not_require`
item re-inserted, an invented number, a meta word, and a report of what happened instead of
a request. Each pair (gold, corrupted) is scored with the metric, leaving the reference
itself out of the closeness check for both (otherwise gold would trivially win on
closeness), and counted as ranked right when the gold prompt scores strictly higher.

    python benchmarks/validate_metric.py [LABELED.jsonl ...]   (default: the shipped splits)
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import Path

import dspy

from agenther_dspy.eval import load_labeled, relabel_fidelity
from agenther_dspy.eval.dataset import SPLITS, shipped_dir
from agenther_dspy.eval.metric import evidence_text, score_prompt
from agenther_dspy.schema import Relabel, Trajectory
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


PAIRS = Path(__file__).resolve().parents[1] / "agenther_dspy" / "data" / "pairs"
REJECT_CEILING = 0.30


def auroc(positives: list[float], negatives: list[float]) -> float:
    """P(a random positive scores above a random negative), ties counting half."""
    if not positives or not negatives:
        return float("nan")
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return wins / (len(positives) * len(negatives))


def reviewer_agreement() -> None:
    examples = {}
    for split in SPLITS:
        for example in load_labeled(shipped_dir() / f"{split}.jsonl").examples:
            examples[example.trajectory["trajectory_id"]] = example
    print("reviewer agreement (pairs: agenther_dspy/data/pairs/)")
    print(f"{'split':<7}{'pairs':>6}{'train':>7}{'reject':>8}{'AUROC':>8}{'reject>0.30':>13}")
    for split in SPLITS:
        path = PAIRS / f"{split}.jsonl"
        if not path.exists():
            continue
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        scored = []
        for row in rows:
            example = examples.get(row["trajectory_id"])
            if example is None:
                continue
            result = relabel_fidelity(example, accepted(row["request"]))
            scored.append((result.score, row, result.feedback))
        good = [s for s, row, _ in scored if row["verdict"] == "train"]
        bad = [s for s, row, _ in scored if row["verdict"] == "reject"]
        above = [
            (s, row) for s, row, _ in scored if row["verdict"] == "reject" and s > REJECT_CEILING
        ]
        print(
            f"{split:<7}{len(scored):>6}{len(good):>7}{len(bad):>8}"
            f"{auroc(good, bad):>8.3f}{len(above):>13}"
        )
        for score, row in sorted(above, key=lambda x: -x[0])[:5]:
            print(f"    rejected but {score:.2f}: {row['request'][:110]!r} ({row['reason'][:80]})")
        missed = sorted(
            [(row, f) for s, row, f in scored if row["verdict"] == "train" and s == 0],
            key=lambda x: x[0]["pair_id"],
        )
        for row, feedback in missed[:3]:
            print(f"    signed but 0: {row['request'][:110]!r}: {feedback[:120]}")
    print()


def accepted(prompt: str) -> dspy.Prediction:
    relabel = Relabel(hindsight_prompt=prompt, is_valid_replay=True, confidence=1.0)
    return dspy.Prediction(status="accepted", relabel=relabel, reason="")


def main(paths: list[Path]) -> None:
    reviewer_agreement()
    print("corruption ranking (gold reference vs a corrupted copy)")
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
