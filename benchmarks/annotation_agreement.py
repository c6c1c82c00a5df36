"""Agreement between the first annotation of the labeled set and an independent second one.

The first annotation is the `gold` in benchmarks/labeled_sources/*.jsonl. The second is a JSONL
file (default benchmarks/labeled_sources/second_annotation.jsonl) with one line per run:
{"trajectory_id", "failure_type", "recoverable", "reason"}. Reports raw agreement and Cohen's
kappa on `recoverable` and on `failure_type`, the confusion tables, and every disagreement with
both annotators' reasoning.

    .venv/bin/python benchmarks/annotation_agreement.py [--second FILE] [--markdown]
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

from agenther_dspy.schema import FAILURE_TYPES

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ROOT / "benchmarks" / "labeled_sources"
SECOND = SOURCES / "second_annotation.jsonl"


def jsonl(path: Path) -> tuple[list[tuple[int, dict]], list[str]]:
    rows, problems = [], []
    for number, line in enumerate(path.read_text(encoding="utf-8").split("\n"), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            if not isinstance(obj, dict):
                raise ValueError("not a JSON object")
        except ValueError as error:
            problems.append(f"{path.name}:{number}: skipped ({error})")
            continue
        rows.append((number, obj))
    return rows, problems


def first_annotation() -> dict[str, dict]:
    """trajectory_id -> {failure_type, recoverable, reason} from the sources (first occurrence)."""
    first: dict[str, dict] = {}
    for path in sorted(SOURCES.glob("*.jsonl")):
        if path.name.startswith("second_"):
            continue
        for _, obj in jsonl(path)[0]:
            gold = obj.get("gold")
            if isinstance(gold, dict) and obj.get("trajectory_id") not in first:
                first[obj["trajectory_id"]] = {
                    "failure_type": gold.get("failure_type"),
                    "recoverable": gold.get("recoverable"),
                    "reason": gold.get("notes", ""),
                }
    return first


def second_annotation(path: Path) -> tuple[dict[str, dict], list[str]]:
    rows, problems = jsonl(path)
    second: dict[str, dict] = {}
    for number, obj in rows:
        tid = obj.get("trajectory_id")
        bad = []
        if not isinstance(tid, str):
            bad.append("no trajectory_id")
        if obj.get("failure_type") not in FAILURE_TYPES:
            bad.append(f"failure_type {obj.get('failure_type')!r}")
        if not isinstance(obj.get("recoverable"), bool):
            bad.append(f"recoverable {obj.get('recoverable')!r}")
        if tid in second:
            bad.append("duplicate trajectory_id")
        if bad:
            problems.append(f"{path.name}:{number}: skipped ({'; '.join(bad)})")
            continue
        second[tid] = {k: obj[k] for k in ("failure_type", "recoverable")}
        second[tid]["reason"] = str(obj.get("reason", ""))
    return second, problems


def kappa(pairs: list[tuple]) -> tuple[float, float | None]:
    """Raw agreement and Cohen's kappa (None when chance agreement is 1: one category only)."""
    n = len(pairs)
    observed = sum(a == b for a, b in pairs) / n
    left = collections.Counter(a for a, _ in pairs)
    right = collections.Counter(b for _, b in pairs)
    chance = sum(left[k] * right[k] for k in left) / n**2
    return observed, None if chance >= 1 else (observed - chance) / (1 - chance)


def compare(first: dict[str, dict], second: dict[str, dict]) -> dict:
    common = [tid for tid in second if tid in first]
    result = {
        "n": len(common),
        "unknown": [tid for tid in second if tid not in first],
        "fields": {},
        "disagreements": [],
    }
    for key, labels in (("recoverable", (True, False)), ("failure_type", FAILURE_TYPES)):
        pairs = [(first[t][key], second[t][key]) for t in common]
        table = collections.Counter(pairs)
        raw, k = kappa(pairs) if pairs else (0.0, None)
        result["fields"][key] = {"raw": raw, "kappa": k, "labels": labels, "table": table}
    for tid in common:
        differ = [k for k in ("recoverable", "failure_type") if first[tid][k] != second[tid][k]]
        if differ:
            result["disagreements"].append((tid, differ, first[tid], second[tid]))
    return result


def fmt_kappa(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def confusion_md(field: dict, name: str) -> str:
    labels = [lab for lab in field["labels"] if any(lab in pair for pair in field["table"])]
    show = [str(lab).lower() if isinstance(lab, bool) else lab for lab in labels]
    lines = [
        f"| {name}: first \\ second | " + " | ".join(show) + " |",
        "|---|" + "---|" * len(labels),
    ]
    for a, shown in zip(labels, show, strict=True):
        lines.append(
            f"| {shown} | " + " | ".join(str(field["table"][(a, b)]) for b in labels) + " |"
        )
    return "\n".join(lines)


def markdown(result: dict, second_name: str) -> str:
    if not result["n"]:
        return f"`{second_name}` has no run in common with the labeled set."
    rec, ft = result["fields"]["recoverable"], result["fields"]["failure_type"]
    out = [
        f"An independent second annotator labeled {result['n']} runs (`{second_name}`) without "
        "seeing the first annotation. Agreement with the first annotation:",
        "",
        "| field | runs | raw agreement | Cohen's kappa |",
        "|---|---|---|---|",
        f"| `recoverable` | {result['n']} | {rec['raw']:.2f} | {fmt_kappa(rec['kappa'])} |",
        f"| `failure_type` | {result['n']} | {ft['raw']:.2f} | {fmt_kappa(ft['kappa'])} |",
        "",
        confusion_md(rec, "recoverable"),
        "",
        confusion_md(ft, "failure_type"),
        "",
        f"Disagreements ({len(result['disagreements'])}):",
        "",
    ]
    if result["disagreements"]:
        out += [
            "| trajectory_id | first | second | first annotator's notes "
            "| second annotator's reason |",
            "|---|---|---|---|---|",
        ]
        for tid, _, a, b in result["disagreements"]:

            def cell(x):
                return f"{x['failure_type']}, {'' if x['recoverable'] else 'not '}recoverable"

            def esc(text):
                return " ".join(str(text).split()).replace("|", "\\|")

            out.append(
                f"| `{tid}` | {cell(a)} | {cell(b)} | {esc(a['reason'])} | {esc(b['reason'])} |"
            )
    else:
        out.append("none.")
    if result["unknown"]:
        out += [
            "",
            f"{len(result['unknown'])} second-annotation rows name runs not in this build "
            "of the set (not annotated yet, left out as invalid, or over the cap per task group).",
        ]
    return "\n".join(out)


def plain(result: dict, problems: list[str]) -> str:
    out = [f"runs compared: {result['n']}"]
    for key, field in result["fields"].items():
        out.append(
            f"{key}: raw agreement {field['raw']:.3f}, Cohen's kappa {fmt_kappa(field['kappa'])}"
        )
        labels = [lab for lab in field["labels"] if any(lab in pair for pair in field["table"])]
        width = max([len(str(lab)) for lab in labels] + [12])
        out.append(
            " " * (width + 2)
            + " ".join(f"{str(b)[:width]:>{width}}" for b in labels)
            + "   (rows: first, columns: second)"
        )
        for a in labels:
            out.append(
                f"  {a!s:<{width}}" + " ".join(f"{field['table'][(a, b)]:>{width}}" for b in labels)
            )
    out.append(f"disagreements: {len(result['disagreements'])}")
    for tid, differ, a, b in result["disagreements"]:
        out.append(f"- {tid} ({', '.join(differ)})")
        out.append(
            f"    first:  {a['failure_type']}, recoverable={a['recoverable']}: {a['reason']}"
        )
        out.append(
            f"    second: {b['failure_type']}, recoverable={b['recoverable']}: {b['reason']}"
        )
    if result["unknown"]:
        out.append(f"not in the labeled sources: {', '.join(result['unknown'])}")
    out += problems
    return "\n".join(out)


NO_SECOND = (
    "No second annotation is recorded yet. `benchmarks/annotation_agreement.py` compares an "
    "independent second annotation (`benchmarks/labeled_sources/second_annotation.jsonl`, one "
    "line per run: `trajectory_id`, `failure_type`, `recoverable`, `reason`) with this one: raw "
    "agreement and Cohen's kappa on `recoverable` and `failure_type`, the confusion tables and "
    "every disagreement with both annotators' reasoning. This section is filled from it."
)


def agreement_markdown(first: dict[str, dict] | None = None, second_path: Path = SECOND) -> str:
    """The card's Agreement section body (a note when there is no second annotation yet)."""
    if not second_path.is_file():
        return NO_SECOND
    second, _ = second_annotation(second_path)
    return markdown(
        compare(first if first is not None else first_annotation(), second), second_path.name
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--second", type=Path, default=SECOND, help="the second annotation (JSONL)")
    parser.add_argument("--markdown", action="store_true", help="print the card's section instead")
    args = parser.parse_args()
    if not args.second.is_file():
        print(f"{args.second}: no such file", file=sys.stderr)
        return 2
    second, problems = second_annotation(args.second)
    result = compare(first_annotation(), second)
    print(markdown(result, args.second.name) if args.markdown else plain(result, problems))
    return 0 if result["n"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
