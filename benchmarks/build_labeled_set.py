"""Assemble, validate and split the labeled set in agenther_dspy/data/labeled/ from its sources.

The annotations are data, in benchmarks/labeled_sources/*.jsonl (second_*.jsonl files are
second annotations, read by annotation_agreement.py only):

- real rows: {"source": "real/<file>.jsonl", "line": <1-based>, "trajectory_id", "gold"}; the run
  is copied verbatim from ../shared/data/<source> at that line, adding only metadata.split_task
  and metadata.source_file;
- written rows: the full run (trajectory fields, metadata with its split_task) plus "gold".

A row may carry "split" to keep the split it had in an earlier release. Invalid rows are
reported with file and line and left out (exit status 1). Splits are by task group, never by
row; the card's "Splits" section says how.

    .venv/bin/python benchmarks/build_labeled_set.py           # build, validate, write
    .venv/bin/python benchmarks/build_labeled_set.py --check   # compare with the files only
    .venv/bin/python benchmarks/build_labeled_set.py --strict  # also fail on unmet targets
"""

from __future__ import annotations

import argparse
import collections
import copy
import json
import random
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from agenther_dspy.eval.dataset import Gold, load_labeled  # noqa: E402
from agenther_dspy.eval.metric import evidence_text, score_prompt  # noqa: E402
from agenther_dspy.schema import Trajectory  # noqa: E402

OUT = ROOT / "agenther_dspy" / "data" / "labeled"
SOURCES = ROOT / "benchmarks" / "labeled_sources"
SHARED = ROOT.parent / "shared" / "data"
TAUBENCH_TASKS = SOURCES / "taubench_airline_tasks.json"
CARD_TEMPLATE = SOURCES / "card_template.md"
SPLITS = ("train", "dev", "test")
FAILURE_TYPES = Gold.model_fields["failure_type"].annotation.__args__
FIRST_FILES = ("real_tau2_v1.jsonl", "written.jsonl")  # the first release, first in each split
SOURCE_NAMES = {  # file in shared/data -> the source named in the card
    "real/tau2_grok_failed.jsonl": "tau2 Grok",
    "real/tau2_grok_success.jsonl": "tau2 Grok",
    "real/taubench_gpt4o_airline_pool.jsonl": "tau-bench GPT-4o",
    "real/whoandwhen_pool.jsonl": "Who&When",
    "real/toolbench_dfs_pool.jsonl": "ToolBench",
}
SOURCE_ORDER = ("tau2 Grok", "tau-bench GPT-4o", "Who&When", "ToolBench", "written")
# Split sizes: a share of all rows, at least the minimum, at most the largest share.
SHARE = {"test": (0.40, 100, 0.45), "dev": (0.24, 60, 0.27)}
CAP_PER_GROUP = 5
SEED = 12
REF_WORDS = (8, 80)
END_TOKENS = re.compile(r"###|<\|?(?:end|eot|stop)|\[(?:end|stop)\]", re.I)
USER_ID = re.compile(r"\b[a-z]+_[a-z]+_\d{4}\b")
TOOLBENCH_QUERY = re.compile(r"toolbench-(G\d+)-q(\d+)")
RUN_FIELDS = ("trajectory_id", "original_prompt", "steps", "final_answer", "failure_reason")


@dataclass
class Row:
    file: str
    line: int
    record: dict  # the output row: trajectory fields, metadata, gold
    source: str  # one of SOURCE_ORDER
    group: str  # the task group, metadata.split_task
    user: str | None  # the airline user id: all tasks of one user share a split
    pinned: str | None  # the split kept from an earlier release

    def traits(self) -> list[tuple]:
        g, m = self.record["gold"], self.record["metadata"]
        agent = m.get("agent_model") or m.get("multi_agent_system")
        return [("source", self.source), ("rec", g["recoverable"]), ("type", g["failure_type"]),
                ("agent", agent), ("domain", m.get("domain"))]  # fmt: skip


# -------------------------------------------------------------------------------- assembling
def read_sources() -> tuple[list[tuple[str, int, dict]], list[str], list[str]]:
    """(file, line, object) for every parsable line; problems; notes (a partial last line)."""
    rank = {name: i for i, name in enumerate(FIRST_FILES)}
    paths = [p for p in SOURCES.glob("*.jsonl") if not p.name.startswith("second_")]
    objects, problems, notes = [], [], []
    for path in sorted(paths, key=lambda p: (rank.get(p.name, len(rank)), p.name)):
        text = path.read_text(encoding="utf-8")
        lines = text.split("\n")
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                if not isinstance(obj, dict):
                    raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
            except ValueError as error:
                if number == len(lines) and not text.endswith("\n"):
                    notes.append(f"{path.name}:{number}: partial last line skipped")
                else:
                    problems.append(f"{path.name}:{number}: not a JSON object: {error}")
                continue
            objects.append((path.name, number, obj))
    return objects, problems, notes


_SHARED_LINES: dict[str, list[str]] = {}


def shared_run(source: str, line: int) -> dict:
    if source not in _SHARED_LINES:
        _SHARED_LINES[source] = (SHARED / source).read_text(encoding="utf-8").splitlines()
    lines = _SHARED_LINES[source]
    if not 1 <= line <= len(lines):
        raise ValueError(f"line {line} is outside {source} ({len(lines)} lines)")
    return json.loads(lines[line - 1])


def task_group(source: str, run: dict, taubench: dict[str, int]) -> str:
    meta = run["metadata"]
    if source == "tau2 Grok":
        domain = "telecom" if meta["domain"].startswith("telecom") else meta["domain"]
        return f"{domain}:{meta['task_id']}"
    if source == "tau-bench GPT-4o":  # named by the tau2 task of the same scenario
        task = str(meta["task_id"])
        return f"airline:{taubench[task]}" if task in taubench else f"tau-bench-airline:{task}"
    if source == "ToolBench":
        match = TOOLBENCH_QUERY.search(run["trajectory_id"])
        return f"toolbench:{match[1]}-q{match[2]}" if match else f"toolbench:{run['trajectory_id']}"
    return f"whoandwhen:{meta.get('question_id') or run['original_prompt'][:80]}"


def assemble(file: str, line: int, obj: dict, taubench: dict[str, int]) -> Row:
    pinned = obj.get("split")
    if pinned is not None and pinned not in SPLITS:
        raise ValueError(f"split {pinned!r} is not one of {SPLITS}")
    if "source" not in obj:  # a written run, in full
        if missing := {*RUN_FIELDS, "metadata", "gold"} - set(obj):
            raise ValueError(f"a written row lacks {sorted(missing)}")
        record = {k: obj[k] for k in (*RUN_FIELDS, "metadata", "gold")}
        group = record["metadata"].get("split_task") or ""
        if not group.startswith("w-"):
            raise ValueError("a written run needs metadata.split_task 'w-<domain>-<nn>'")
        return Row(file, line, record, "written", group, None, pinned)
    keys = {"source", "line", "trajectory_id", "gold"}
    if set(obj) - {"split"} != keys:
        raise ValueError(f"keys must be {sorted(keys)} (and optionally split)")
    if obj["source"] not in SOURCE_NAMES:
        raise ValueError(f"unknown source {obj['source']!r}")
    if type(obj["line"]) is not int:
        raise ValueError(f"line must be an integer, got {obj['line']!r}")
    run = shared_run(obj["source"], obj["line"])
    if run.get("trajectory_id") != obj["trajectory_id"]:
        raise ValueError(
            f"{obj['source']} line {obj['line']} holds {run.get('trajectory_id')!r}, "
            f"not {obj['trajectory_id']!r}"
        )
    source = SOURCE_NAMES[obj["source"]]
    group = task_group(source, run, taubench)
    record = copy.deepcopy(run)
    record["metadata"].update(split_task=group, source_file=obj["source"])
    record["gold"] = obj["gold"]
    users = USER_ID.findall(run["original_prompt"]) or [run["metadata"].get("user_id")]
    return Row(file, line, record, source, group, users[0] if "airline" in group else None, pinned)


# -------------------------------------------------------------------------------- validation
def check_row(row: Row) -> list[str]:
    record, g = row.record, row.record["gold"]
    try:
        trajectory = Trajectory.model_validate({k: v for k, v in record.items() if k != "gold"})
    except ValueError as error:  # pydantic's ValidationError names the field
        return [f"input schema: {' '.join(str(error).split())[:300]}"]
    if not isinstance(g, dict) or set(g) != set(Gold.model_fields):
        return [f"gold keys must be exactly {sorted(Gold.model_fields)}"]
    try:
        Gold.model_validate(g, strict=True)
    except ValueError as error:
        return [f"gold schema: {' '.join(str(error).split())[:300]}"]
    problems = []
    refs = g["reference_hindsight_prompts"]
    for key in ("achievements", "key_facts", "must_not_require", "reference_hindsight_prompts"):
        if not all(item.strip() for item in g[key]):
            problems.append(f"gold.{key} holds an empty string")
    if not g["is_failure"]:
        problems.append("is_failure must be true (the set holds failed runs)")
    if g["recoverable"] != bool(refs):
        problems.append("references must be present exactly when recoverable")
    if g["recoverable"] and not (1 <= len(refs) <= 2 and g["achievements"]):
        problems.append("a recoverable run needs achievements and 1-2 references")
    if len(g["key_facts"]) > 7:
        problems.append(f"{len(g['key_facts'])} key facts (at most 7)")
    problems += [
        f"must_not_require item not 2-7 words: {item!r}"
        for item in g["must_not_require"]
        if not 2 <= len(item.split()) <= 7
    ]
    evidence = evidence_text(trajectory).lower()
    problems += [
        f"key fact not verbatim in the run: {fact!r}"
        for fact in g["key_facts"]
        if fact.lower() not in evidence
    ]
    for ref in refs:
        if not REF_WORDS[0] <= len(ref.split()) <= REF_WORDS[1] or END_TOKENS.search(ref):
            problems.append(
                f"reference not {REF_WORDS[0]}-{REF_WORDS[1]} words or has an end token: {ref!r}"
            )
        _, parts, feedback = score_prompt(ref, trajectory, g, exclude_reference=ref)
        # The metric's gate when it has one ("usable"); before it, full anchoring was required.
        gate = "usable" if "usable" in parts else "anchoring"
        for part in ("grounding", "no_leak", "naturalness", gate):
            if parts[part] < 1:
                problems.append(
                    f"reference {part}={parts[part]:.2f}: {ref!r} | {' '.join(feedback)}"
                )
    if row.source == "written" and not 2 <= len(record["steps"]) <= 8:
        problems.append("written runs have 2-8 steps")
    return problems


# ---------------------------------------------------------------------------- cap and split
def cap_groups(rows: list[Row]) -> tuple[list[Row], list[Row]]:
    """At most CAP_PER_GROUP rows per task group: rows with a kept split, then the most varied."""
    by_group: dict[str, list[Row]] = collections.defaultdict(list)
    for row in rows:
        by_group[row.group].append(row)
    dropped = []
    for members in by_group.values():
        chosen = [r for r in members if r.pinned]
        rest = [r for r in members if not r.pinned]
        while rest and len(chosen) < CAP_PER_GROUP:
            seen = {t for c in chosen for t in c.traits()}
            best = max(rest, key=lambda r, seen=seen: sum(t not in seen for t in r.traits()))
            chosen.append(best)  # max keeps the first of equals: file order
            rest.remove(best)
        dropped += rest
    return [r for r in rows if not any(r is d for d in dropped)], dropped


def split_units(rows: list[Row]) -> dict[str, list[Row]]:
    """Task groups joined into the units placed whole: the airline tasks of one user together."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for row in rows:
        if row.user:
            parent[find(row.group)] = find(f"user:{row.user}")
    units: dict[str, list[Row]] = collections.defaultdict(list)
    for row in rows:
        units[find(row.group)].append(row)
    return units


def features(row: Row) -> list[str]:
    return ["rows", *(f"{k}:{v}" for k, v in row.traits()[:3])]


def assign_splits(rows: list[Row]) -> tuple[dict[str, list[Row]], list[str]]:
    """Kept splits first; then each unit, largest first, where it best balances the features."""
    units, problems, placed = split_units(rows), [], {}
    total = len(rows)
    sizes = {
        n: min(max(least, share * total), most * total) for n, (share, least, most) in SHARE.items()
    }
    want = {"train": total - sizes["test"] - sizes["dev"], **sizes}
    totals = collections.Counter(f for r in rows for f in features(r))
    counts = {name: collections.Counter() for name in SPLITS}

    def place(unit: str, name: str) -> None:
        placed[unit] = name
        counts[name].update(f for r in units[unit] for f in features(r))

    def cost(unit: str, name: str) -> float:
        extra = collections.Counter(f for r in units[unit] for f in features(r))
        return sum(
            (3.0 if f == "rows" else 1.0)
            * (counts[s][f] + (extra[f] if s == name else 0) - n * want[s] / total) ** 2
            / n
            for s in SPLITS
            for f, n in totals.items()
        )

    for unit, members in units.items():
        pins = sorted({r.pinned for r in members if r.pinned})
        if len(pins) > 1:
            problems.append(f"task groups {unit}: rows kept in different splits {pins}")
        if pins:
            place(unit, next(r.pinned for r in members if r.pinned))
    free = [u for u in units if u not in placed]
    random.Random(SEED).shuffle(free)
    for unit in sorted(free, key=lambda u: -len(units[u])):  # stable: ties keep the seeded order
        place(unit, min(SPLITS, key=lambda name, unit=unit: cost(unit, name)))
    unit_of = {id(r): unit for unit, members in units.items() for r in members}
    return {name: [r for r in rows if placed[unit_of[id(r)]] == name] for name in SPLITS}, problems


# -------------------------------------------------------------------------------------- card
def md_table(header: list, rows: list[list]) -> str:
    lines = ["| " + " | ".join(map(str, header)) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(map(str, row)) + " |" for row in rows])


def count(rows: list[Row], **want) -> int:
    """Rows matching source=, rec=, type=, domain=."""
    return sum(all(dict(r.traits())[k] == v for k, v in want.items()) for r in rows)


def count_tables(splits: dict[str, list[Row]]) -> list[str]:
    every = [r for rows in splits.values() for r in rows]
    split_of = {id(r): name for name, rows in splits.items() for r in rows}

    def crosstab(title: str, groups: list[tuple[str, list[Row]]], columns: list[tuple]) -> str:
        rows = [[label, *(fn(members) for _, fn in columns)] for label, members in groups]
        return f"{title}:\n\n" + md_table([title.split()[-1], *(h for h, _ in columns)], rows)

    def having(key: str, value) -> list[Row]:
        return [r for r in every if dict(r.traits())[key] == value]

    by_split = [(n, lambda rs, n=n: sum(split_of[id(r)] == n for r in rs)) for n in SPLITS]
    by_source = [(s, lambda rs, s=s: count(rs, source=s)) for s in SOURCE_ORDER]
    recs = [
        ("recoverable", lambda rs: count(rs, rec=True)),
        ("not recoverable", lambda rs: count(rs, rec=False)),
        ("task groups", lambda rs: len({r.group for r in rs})),
    ]
    domains = sorted({r.record["metadata"]["domain"] for r in having("source", "written")})
    return [
        crosstab(
            "Per split", [*splits.items(), ("all", every)], [("rows", len), *by_source, *recs]
        ),
        crosstab(
            "Per source", [(s, having("source", s)) for s in SOURCE_ORDER], [("rows", len), *recs]
        ),
        crosstab(
            "Per failure_type",
            [(t, having("type", t)) for t in FAILURE_TYPES],
            [*by_split, ("all", len), *by_source],
        ),
        crosstab(
            "Written runs per domain",
            [(d, having("domain", d)) for d in domains],
            [*by_split, ("all", len)],
        ),
    ]


def card_text(splits: dict[str, list[Row]], dropped: int) -> str:
    from annotation_agreement import agreement_markdown

    every = [r for rows in splits.values() for r in rows]
    by_source = collections.Counter(r.source for r in every)
    notrec = count(every, rec=False)
    first = {
        r.record["trajectory_id"]: {**r.record["gold"], "reason": r.record["gold"]["notes"]}
        for r in every
    }
    fields = {
        "total": len(every),
        "real": len(every) - by_source["written"],
        "real_by_source": ", ".join(f"{by_source[s]} {s}" for s in SOURCE_ORDER[:-1]),
        "written": by_source["written"],
        "notrec": notrec,
        "notrec_pct": round(100 * notrec / max(1, len(every))),
        "file_rows": "\n".join(f"| `{name}.jsonl` | {len(splits[name])} |" for name in SPLITS),
        "cap": CAP_PER_GROUP,
        "dropped": dropped,
        "pinned": sum(1 for r in every if r.pinned),
        "seed": SEED,
        "test_share": f"{SHARE['test'][0]:.0%}",
        "dev_share": f"{SHARE['dev'][0]:.0%}",
        "count_tables": "\n\n".join(count_tables(splits)),
        "agreement": agreement_markdown(first),
        **{f"n_{i}": by_source[s] for i, s in enumerate(SOURCE_ORDER)},
    }
    text = CARD_TEMPLATE.read_text(encoding="utf-8")
    for key, value in fields.items():
        text = text.replace(f"<<{key}>>", str(value))
    return text


# ------------------------------------------------------------------------------------- build
def build() -> tuple[dict[str, list[Row]], list[str], list[str], int]:
    taubench = json.loads(TAUBENCH_TASKS.read_text(encoding="utf-8"))["tasks"]
    objects, problems, notes = read_sources()
    rows, seen = [], {}
    for file, line, obj in objects:
        where = f"{file}:{line} {obj.get('trajectory_id', '?')}"
        try:
            row = assemble(file, line, obj, taubench)
        except (ValueError, KeyError, TypeError, OSError) as error:
            problems.append(f"{where}: {error}")
            continue
        row_problems = check_row(row)
        tid = row.record["trajectory_id"]
        if tid in seen:
            row_problems.append(f"duplicate of {seen[tid]}")
        seen.setdefault(tid, f"{file}:{line}")
        problems += [f"{where}: {p}" for p in row_problems]
        if not row_problems:
            rows.append(row)
    rows, dropped = cap_groups(rows)
    if dropped:
        notes.append(
            f"{len(dropped)} row(s) over the cap of {CAP_PER_GROUP} per task group left out: "
            + ", ".join(f"{r.file}:{r.line} ({r.group})" for r in dropped)
        )
    splits, split_problems = assign_splits(rows)
    return splits, problems + split_problems, notes, len(dropped)


def summary(splits: dict[str, list[Row]]) -> tuple[list[str], list[str]]:
    """The printed counts, and the targets of the full set not met yet."""
    every = [r for rows in splits.values() for r in rows]
    lines = count_tables(splits)[:3]
    real = len(every) - count(every, source="written")
    short = [f"{len(every)} rows (target 240)"] if len(every) < 240 else []
    short += [f"{real} real rows (target 200)"] if real < 200 else []
    for s in SOURCE_ORDER[:-1]:
        if not 0 < count(every, source=s) <= real / 2:
            short.append(f"{s} has {count(every, source=s)} of {real} real rows (1 to half)")
    if count(every, rec=False) < 0.3 * len(every):
        short.append(f"{count(every, rec=False)} of {len(every)} not recoverable (target 30%)")
    for name, least in (("test", 100), ("dev", 60)):
        if len(splits[name]) < least:
            short.append(f"{name} has {len(splits[name])} rows (target {least})")
    return lines, short


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the files only")
    parser.add_argument("--strict", action="store_true", help="also fail on unmet targets")
    args = parser.parse_args()
    splits, problems, notes, dropped = build()
    texts = {
        name: "".join(json.dumps(r.record, ensure_ascii=False) + "\n" for r in rows)
        for name, rows in splits.items()
    }
    texts["README.md"] = card_text(splits, dropped)
    paths = {name: OUT / (name if name.endswith(".md") else f"{name}.jsonl") for name in texts}
    if args.check:
        problems += [
            f"{path.name} is out of date: rebuild"
            for name, path in paths.items()
            if not path.is_file() or path.read_text(encoding="utf-8") != texts[name]
        ]
    else:
        OUT.mkdir(parents=True, exist_ok=True)
        for name, path in paths.items():
            path.write_text(texts[name], encoding="utf-8")
        for name in SPLITS:  # as a user loads them
            problems += [
                f"{name}: load_labeled rejected {bad}" for bad in load_labeled(paths[name]).invalid
            ]
    lines, short = summary(splits)
    print("\n\n".join(lines) + "\n")
    print("\n".join([*(f"note: {n}" for n in notes), *(f"target not met: {s}" for s in short)]))
    problems += [f"target not met: {s}" for s in short] if args.strict else []
    if problems:
        print(f"\n{len(problems)} PROBLEM(S); invalid rows are left out of the output:")
        print("\n".join(f" - {p}" for p in problems))
        return 1
    print("\nall rows valid")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
