"""Evaluation speed, before and after: prompt tokens evaluated and seconds per run.

`evaluate` runs the whole program on each labeled run. This benchmark evaluates the same 10
dev runs with two versions of the code, each in its own process with its own embedded model:

  before   the package as of BEFORE_REF (git): ChatAdapter's layout, where each request
           opens with its stage's own instructions, and the output fields then generated;
  after    this checkout: the run-first layout (`modules.adapter`) and the trimmed fields.

Runs are interleaved, one version then the other, alternating which goes first (ABBA), so
that the machine's background load falls on both alike. Each process answers exactly as
`evaluate` would (the uncompiled program, default settings, DSPy's response cache off,
llama.cpp's prompt cache on, as in every run). Per run it records the prompt tokens sent,
the tokens llama.cpp reused from its cache, the tokens it evaluated (sent minus reused),
the LM calls, the seconds and the fidelity score; it prints the means and the ratios
after / before.

    python benchmarks/eval_speed.py [--runs 10] [--model local] [--out eval_speed.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT / "agenther_dspy/data/labeled/dev.jsonl"
# The package before the run-first layout: main when this benchmark was written.
BEFORE_REF = "5ec15a7"
# The first 10 ids of dev.jsonl shuffled with random.Random(0), pinned so that later edits of
# the labeled set do not change what is measured.
RUN_IDS = [
    "lbl-customer-service-02",
    "lbl-coding-04",
    "tau2-grok-3-telecom-workflow-task[mobile_data_issue]bad_network_preference|bad_vpn|"
    "user_abroad_roaming_disabled_on[PERSONA:None]-trial0-0aae93b5",
    "lbl-spreadsheet-02",
    "tau2-grok-3-airline-task23-trial0-a1a166cb",
    "lbl-devops-02",
    "lbl-travel-02",
    "tau2-grok-3-airline-task15-trial0-a8c76d9a",
    "tau2-grok-3-airline-task11-trial0-91762b0f",
    "lbl-spreadsheet-03",
]
MEASURES = (
    "prompt_tokens_sent",
    "prompt_tokens_cached",
    "prompt_tokens_evaluated",
    "seconds",
    "evaluated_per_call",
    "seconds_per_call",
)
PER_RUN = MEASURES[:4]


# ─── The worker: one version of the package, one model, runs from stdin ─────────────────


def worker(source: Path, model: str) -> None:
    sys.path.insert(0, str(source))
    import dspy

    import agenther_dspy
    from agenther_dspy.eval.metric import relabel_fidelity
    from agenther_dspy.lm import build_lm
    from agenther_dspy.lm.factory import configure_cache
    from agenther_dspy.modules import HindsightRelabeler

    assert Path(agenther_dspy.__file__).resolve().is_relative_to(source.resolve())
    configure_cache(None, enabled=False)
    lm = build_lm(model, cache=False)
    lm("Say OK.", max_tokens=2)  # load the weights before the first timed run
    program = HindsightRelabeler()
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        row = json.loads(line)
        example = dspy.Example(trajectory=row["trajectory"], gold=row["gold"]).with_inputs(
            "trajectory"
        )
        started = time.perf_counter()
        with dspy.context(lm=lm), dspy.track_usage() as usage:
            prediction = program(trajectory=example.trajectory)
        seconds = time.perf_counter() - started
        entries = [entry for per_lm in usage.usage_data.values() for entry in per_lm]
        sent = sum(int(e.get("prompt_tokens") or 0) for e in entries)
        cached = sum(
            int((e.get("prompt_tokens_details") or {}).get("cached_tokens") or 0) for e in entries
        )
        score = float(relabel_fidelity(example, prediction).score)
        result = {
            "trajectory_id": row["trajectory"]["trajectory_id"],
            "lm_calls": len(entries),
            "prompt_tokens_sent": sent,
            "prompt_tokens_cached": cached,
            "prompt_tokens_evaluated": sent - cached,
            "completion_tokens": sum(int(e.get("completion_tokens") or 0) for e in entries),
            "seconds": round(seconds, 2),
            "status": prediction.status,
            "score": round(score, 4),
        }
        print(json.dumps(result), flush=True)


# ─── The driver ─────────────────────────────────────────────────────────────────────────


class Worker:
    def __init__(self, name: str, source: Path, model: str) -> None:
        self.name = name
        command = [sys.executable, __file__, "--worker", str(source), "--model", model]
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=source
        )
        self._read()  # ready

    def _read(self) -> dict[str, Any]:
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"the {self.name} worker stopped (its stderr is above)")
        return json.loads(line)

    def evaluate(self, row: dict[str, Any]) -> dict[str, Any]:
        self.process.stdin.write(json.dumps(row) + "\n")
        self.process.stdin.flush()
        return self._read()

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()


def checkout(ref: str, into: Path) -> Path:
    """The package as of `ref`, extracted (not checked out) into `into`."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref, "agenther_dspy"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def load_runs(path: Path, ids: list[str]) -> list[dict[str, Any]]:
    rows = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            rows[row["trajectory_id"]] = row
    missing = [i for i in ids if i not in rows]
    if missing:
        raise SystemExit(f"{path} no longer holds {missing}: pass --dataset with the old file")
    return [
        {"trajectory": {k: v for k, v in rows[i].items() if k != "gold"}, "gold": rows[i]["gold"]}
        for i in ids
    ]


def summarize(rows: list[dict[str, Any]]) -> dict[str, float]:
    summary = {key: statistics.fmean(r[key] for r in rows) for key in PER_RUN}
    summary["lm_calls"] = statistics.fmean(r["lm_calls"] for r in rows)
    # The two versions can take different paths on one run (another answer, another
    # attempt): per LM call, the cost of a request in each layout.
    calls = sum(r["lm_calls"] for r in rows) or 1
    summary["evaluated_per_call"] = sum(r["prompt_tokens_evaluated"] for r in rows) / calls
    summary["seconds_per_call"] = sum(r["seconds"] for r in rows) / calls
    summary["fidelity"] = statistics.fmean(r["score"] for r in rows)
    summary["accepted"] = sum(r["status"] == "accepted" for r in rows)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=len(RUN_IDS), help="how many pinned runs")
    parser.add_argument("--model", default="local")
    parser.add_argument("--dataset", type=Path, default=DEV)
    parser.add_argument("--before-ref", default=BEFORE_REF, help="git ref of the 'before' code")
    parser.add_argument("--out", type=Path, help="write every measurement here as JSON")
    parser.add_argument(
        "--summarize", type=Path, help="only print the summary of an --out file (even partial)"
    )
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.model)
        return
    if args.summarize:
        report(json.loads(args.summarize.read_text())["runs"], None)
        return

    runs = load_runs(args.dataset, RUN_IDS[: args.runs])
    with tempfile.TemporaryDirectory(prefix="eval-speed-") as tmp:
        before_src = checkout(args.before_ref, Path(tmp))
        arms = {"before": Worker("before", before_src, args.model)}
        arms["after"] = Worker("after", ROOT, args.model)
        print(f"{len(runs)} dev runs, {args.model}, before = {args.before_ref}, after = checkout")
        results: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
        for number, run in enumerate(runs):
            order = ("before", "after") if number % 2 == 0 else ("after", "before")
            for name in order:
                result = arms[name].evaluate(run)
                results[name].append(result)
                print(
                    f"{name:6s} {result['trajectory_id'][:44]:44s} calls {result['lm_calls']:2d}"
                    f"  sent {result['prompt_tokens_sent']:6d}  evaluated "
                    f"{result['prompt_tokens_evaluated']:6d}  {result['seconds']:6.1f} s"
                    f"  {result['status']:8s} {result['score']:.2f}",
                    flush=True,
                )
            if args.out:  # after every run: a long measurement stopped early still counts
                args.out.write_text(json.dumps({"runs": results}, indent=2) + "\n")
        for worker_ in arms.values():
            worker_.close()
    report(results, args.out)


def report(results: dict[str, list[dict[str, Any]]], out: Path | None) -> None:
    """Means per run for each version, and the ratios after / before."""
    done = min(len(rows) for rows in results.values())
    results = {name: rows[:done] for name, rows in results.items()}
    summaries = {name: summarize(rows) for name, rows in results.items()}
    for name, s in summaries.items():
        print(
            f"{name:6s} per run: {s['lm_calls']:.1f} LM calls, prompt tokens sent "
            f"{s['prompt_tokens_sent']:.0f}, evaluated {s['prompt_tokens_evaluated']:.0f}, "
            f"{s['seconds']:.1f} s; per LM call {s['evaluated_per_call']:.0f} tokens evaluated, "
            f"{s['seconds_per_call']:.1f} s; fidelity {s['fidelity']:.3f}, accepted {s['accepted']}"
        )
    before, after = summaries["before"], summaries["after"]
    ratios = {key: after[key] / before[key] for key in MEASURES if before[key]}
    print(
        f"after / before, per run: tokens sent ×{ratios['prompt_tokens_sent']:.2f}, evaluated "
        f"×{ratios['prompt_tokens_evaluated']:.2f}, seconds ×{ratios['seconds']:.2f}; per LM "
        f"call: evaluated ×{ratios['evaluated_per_call']:.2f}, seconds "
        f"×{ratios['seconds_per_call']:.2f} ({done} runs)"
    )
    if out:
        payload = {"runs": results, "summary": summaries, "ratios": ratios}
        out.write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
