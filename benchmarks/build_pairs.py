"""Build the reviewer-judged (run, request) pairs in agenther_dspy/data/pairs/.

A pair is one labeled run and one candidate request for it. Candidates come from three
places, kept in benchmarks/pair_sources/candidates.jsonl with their origin:

- `reference`: the labeled set's gold reference requests;
- `program:<model>`: every relabeling attempt the program made on the run with an embedded
  model (collected with benchmarks/collect_attempts.py);
- `written:<shape>`: requests written for the run to a stated shape: a faithful paraphrase,
  or one realistic defect (agent speech, end token, instruction text, truncated id, ...).

Each pair has a blind reviewer verdict in benchmarks/pair_sources/verdicts.jsonl: `train`
(would train on it) or `reject`, with a one-line reason. The reviewer saw the run and the
request only: not the origin, the gold annotation or the metric.

    python benchmarks/build_pairs.py candidates   # merge sources into candidates.jsonl
    python benchmarks/build_pairs.py batches N    # blind review batches (no origin, no gold)
    python benchmarks/build_pairs.py build        # join verdicts, split like the labeled set
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ROOT / "benchmarks" / "pair_sources"
LABELED = ROOT / "agenther_dspy" / "data" / "labeled"
OUT = ROOT / "agenther_dspy" / "data" / "pairs"
SPLITS = ("train", "dev", "test")


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def pair_id(trajectory_id: str, request: str) -> str:
    text = f"{trajectory_id}\n{' '.join(request.split())}"
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def labeled_rows() -> dict[str, tuple[str, dict]]:
    rows = {}
    for split in SPLITS:
        for row in read_jsonl(LABELED / f"{split}.jsonl"):
            rows[row["trajectory_id"]] = (split, row)
    return rows


def collect_candidates(attempt_files: list[Path], written: Path, runs: list[str]) -> list[dict]:
    """Every distinct (run, request) with the origins it came from."""
    labeled = labeled_rows()
    found: dict[str, dict] = {}

    def add(trajectory_id: str, request: str, origin: str) -> None:
        request = " ".join(str(request).split())
        if not request or trajectory_id not in labeled:
            return
        key = pair_id(trajectory_id, request)
        entry = found.setdefault(
            key,
            {"pair_id": key, "trajectory_id": trajectory_id, "request": request, "origins": []},
        )
        if origin not in entry["origins"]:
            entry["origins"].append(origin)

    unlabeled = [t for t in runs if t not in labeled]
    if unlabeled:
        print(f"not in the labeled set, left out: {', '.join(unlabeled)}", file=sys.stderr)
    for trajectory_id in runs:
        if trajectory_id not in labeled:
            continue
        for ref in labeled[trajectory_id][1]["gold"]["reference_hindsight_prompts"]:
            add(trajectory_id, ref, "reference")
    for path in attempt_files:
        for record in read_jsonl(path):
            for attempt in record.get("attempts") or []:
                relabel = attempt.get("relabel") or {}
                origin = f"program:{record['model']}"
                add(record["trajectory_id"], relabel.get("hindsight_prompt", ""), origin)
    for record in read_jsonl(written):
        add(record["trajectory_id"], record["request"], f"written:{record['shape']}")
    return sorted(found.values(), key=lambda c: (c["trajectory_id"], c["pair_id"]))


def write_batches(candidates: list[dict], count: int, folder: Path) -> None:
    """Blind batches: runs grouped whole, requests shuffled by id, nothing but the text."""
    by_run: dict[str, list[dict]] = defaultdict(list)
    for candidate in candidates:
        by_run[candidate["trajectory_id"]].append(candidate)
    folder.mkdir(parents=True, exist_ok=True)
    batches: list[list[dict]] = [[] for _ in range(count)]
    for index, trajectory_id in enumerate(sorted(by_run)):
        for candidate in sorted(by_run[trajectory_id], key=lambda c: c["pair_id"]):
            batches[index % count].append(
                {
                    "pair_id": candidate["pair_id"],
                    "trajectory_id": trajectory_id,
                    "request": candidate["request"],
                }
            )
    for number, batch in enumerate(batches, 1):
        path = folder / f"batch_{number}.jsonl"
        path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in batch))
        print(f"{path}: {len(batch)} pairs")


def build() -> int:
    candidates = read_jsonl(SOURCES / "candidates.jsonl")
    verdicts = {v["pair_id"]: v for v in read_jsonl(SOURCES / "verdicts.jsonl")}
    labeled = labeled_rows()
    splits: dict[str, list[dict]] = {split: [] for split in SPLITS}
    missing = 0
    for candidate in candidates:
        verdict = verdicts.get(candidate["pair_id"])
        if verdict is None or candidate["trajectory_id"] not in labeled:
            missing += 1
            continue
        if verdict["verdict"] not in ("train", "reject"):
            print(f"{candidate['pair_id']}: verdict must be train or reject", file=sys.stderr)
            return 1
        split = labeled[candidate["trajectory_id"]][0]
        reason = verdict.get("reason", "")
        splits[split].append({**candidate, "verdict": verdict["verdict"], "reason": reason})
    OUT.mkdir(parents=True, exist_ok=True)
    for split, rows in splits.items():
        (OUT / f"{split}.jsonl").write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        )
    print_counts(splits, missing)
    return 0


def origin_kind(origins: list[str]) -> str:
    return "reference" if "reference" in origins else origins[0].split(":")[0]


def print_counts(splits: dict[str, list[dict]], missing: int) -> None:
    print("| split | pairs | runs | train | reject | reference | program | written |")
    print("|---|---|---|---|---|---|---|---|")
    for split, rows in splits.items():
        verdict = Counter(r["verdict"] for r in rows)
        kind = Counter(origin_kind(r["origins"]) for r in rows)
        runs = len({r["trajectory_id"] for r in rows})
        print(
            f"| {split} | {len(rows)} | {runs} | {verdict['train']} | {verdict['reject']} | "
            f"{kind['reference']} | {kind['program']} | {kind['written']} |"
        )
    if missing:
        print(f"{missing} candidates without a verdict or a labeled run were left out")


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "build"
    if command == "candidates":
        runs = json.loads((SOURCES / "runs.json").read_text())
        attempts = sorted(SOURCES.glob("attempts_*.jsonl"))
        candidates = collect_candidates(attempts, SOURCES / "written_requests.jsonl", runs)
        (SOURCES / "candidates.jsonl").write_text(
            "".join(json.dumps(c, ensure_ascii=False) + "\n" for c in candidates)
        )
        runs_covered = len({c["trajectory_id"] for c in candidates})
        print(f"{len(candidates)} candidates over {runs_covered} runs")
        print(Counter(o.split(":")[0] for c in candidates for o in c["origins"]))
        return 0
    if command == "batches":
        write_batches(read_jsonl(SOURCES / "candidates.jsonl"), int(argv[1]), Path(argv[2]))
        return 0
    return build()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
