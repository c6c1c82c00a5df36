"""Done-when check: a batch that keeps getting killed still accounts for every input once.

The stub server injects server errors (HTTP 500, default 10% of calls) and malformed
answers (default 5%). The real `agenther-dspy run` is started on 1,000 distinct
trajectories (plus a few invalid and duplicate lines), killed with SIGKILL three times at
different points, and re-run each time with the same command until it finishes. Then:

- the results file has exactly one line per input line, and one per trajectory;
- the training rows are exactly the accepted trajectories, each once;
- what each kill left behind (a half-written line, a row without its results line) is
  reported, with what the resumed run repaired. Since a kill rarely lands inside a write
  (they take microseconds), after each kill the script also leaves what such a kill would,
  in turn: a half-written results line, a row without its results line, a half-written
  row (`--no-damage` turns this off).

    python benchmarks/stub_fault_soak.py [--trajectories 1000] [--kills 3]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from synthetic_runs import NoDelayStub, record

from agenther_dspy.runner import default_results_path

INVALID_EVERY = 100  # an invalid line after every 100th trajectory
DUPLICATE_EVERY = 100  # a repeated trajectory after every 100th, offset by 50


def write_input(path: Path, n: int) -> int:
    """n distinct trajectories (a third skipped at detection), plus invalid and duplicate
    lines; returns the number of lines."""
    lines = []
    for i in range(n):
        lines.append(json.dumps(record(i, i % 3)))
        if i % INVALID_EVERY == INVALID_EVERY - 1:
            lines.append('{"original_prompt": "a record without steps"}')
        if i % DUPLICATE_EVERY == 50:
            lines.append(json.dumps(record(i - 50, (i - 50) % 3)))
    path.write_text("\n".join(lines) + "\n")
    return len(lines)


def read_lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True) if path.exists() else []


def state_after_kill(out: Path, results: Path) -> str:
    """What a kill left: the results written, a torn last line, rows without results."""
    raw = read_lines(results)
    torn = bool(raw) and not raw[-1].endswith(b"\n")
    done = {}
    for line in raw:
        try:
            item = json.loads(line)
        except ValueError:
            continue
        done[item["key"]] = item["status"]
    rows = read_lines(out)
    torn_row = bool(rows) and not rows[-1].endswith(b"\n")
    orphans = 0
    for line in rows:
        try:
            tid = json.loads(line)["source_trajectory_id"]
        except ValueError:
            continue
        orphans += done.get(tid) != "accepted"
    return (
        f"{len(raw)} results lines, last line {'half-written' if torn else 'whole'}; "
        f"{len(rows)} rows, {orphans} without a results line"
        + (", last row half-written" if torn_row else "")
    )


def damage(out: Path, results: Path, kill: int) -> str:
    """Leave what a kill in the middle of a write leaves (a kill rarely lands there by
    chance: the writes take microseconds), in turn: a half-written results line, a training
    row whose results line was never written, a half-written training row."""
    lines = read_lines(results)
    rows = read_lines(out)
    last = max((i for i, line in enumerate(lines) if b'"accepted"' in line), default=None)
    if last is None or not rows:
        return "nothing to damage"
    kind = kill % 3
    if kind == 1:
        results.write_bytes(b"".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])
        return "cut the last results line in half"
    if kind == 2:
        results.write_bytes(b"".join(lines[:last] + lines[last + 1 :]))
        return "removed the results line of the last accepted trajectory (its row stays)"
    results.write_bytes(b"".join(lines[:last] + lines[last + 1 :]))
    out.write_bytes(b"".join(rows[:-1]) + rows[-1][: len(rows[-1]) // 2])
    return "cut the last training row in half and removed its results line"


def run_cli(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "agenther_dspy", "run", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )


def kill_when(process: subprocess.Popen, results: Path, lines: int) -> bool:
    """SIGKILL once the results file has `lines` lines; False if the run ended first."""
    while process.poll() is None:
        if results.exists() and results.read_bytes().count(b"\n") >= lines:
            process.send_signal(signal.SIGKILL)
            process.wait()
            return True
        time.sleep(0.01)
    return False


def check(input_path: Path, input_lines: int, out: Path, results: Path) -> list[str]:
    problems = []
    items = [json.loads(line) for line in results.read_text().splitlines()]
    keys = Counter(item["key"] for item in items)
    if any(count > 1 for count in keys.values()):
        problems.append(f"repeated results keys: {[k for k, c in keys.items() if c > 1][:5]}")
    lines = sorted(item["line"] for item in items)
    if lines != list(range(1, input_lines + 1)):
        problems.append(f"results cover {len(set(lines))} of {input_lines} input lines")
    ids = {json.loads(line).get("trajectory_id") for line in input_path.read_text().splitlines()}
    ids.discard(None)
    processed = [item["trajectory_id"] for item in items if item["stage"] != "input"]
    if sorted(processed) != sorted(ids):
        problems.append(f"{len(processed)} trajectories processed, {len(ids)} in the input")
    rows = [json.loads(line)["source_trajectory_id"] for line in out.read_text().splitlines()]
    if len(rows) != len(set(rows)):
        problems.append(f"{len(rows) - len(set(rows))} repeated training rows")
    accepted = sorted(item["trajectory_id"] for item in items if item["status"] == "accepted")
    if sorted(rows) != accepted:
        problems.append(f"{len(rows)} training rows for {len(accepted)} accepted trajectories")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trajectories", type=int, default=1000)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--error-rate", type=float, default=0.10)
    parser.add_argument("--malformed-rate", type=float, default=0.05)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--no-damage",
        dest="damage",
        action="store_false",
        help="do not add a torn write to what each kill left",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="agenther-soak-") as tmp:
        work = Path(tmp)
        os.environ["AGENTHER_DSPY_HOME"] = str(work / "home")
        input_path = work / "in.jsonl"
        input_lines = write_input(input_path, args.trajectories)
        out = work / "rows.jsonl"
        results = default_results_path(out)
        print(
            f"{args.trajectories} trajectories, {input_lines} input lines; stub: "
            f"{args.error_rate:.0%} HTTP 500, {args.malformed_rate:.0%} malformed answers, "
            f"{args.latency} s latency; --concurrency {args.concurrency}, LM cache on"
        )
        server = NoDelayStub(
            latency=args.latency,
            slots=64,
            error_rate=args.error_rate,
            malformed_rate=args.malformed_rate,
            seed=1,
        )
        with server:
            cli_args = [str(input_path), "-o", str(out), "-m", "openai/stub"]
            cli_args += ["--base-url", server.base_url, "--concurrency", str(args.concurrency)]
            cli_args += ["--cache-dir", str(work / "lm-cache")]
            started = time.perf_counter()
            kills = 0
            for attempt in range(1, args.kills + 1):
                target = input_lines * attempt // (args.kills + 1)
                process = run_cli(cli_args)
                if not kill_when(process, results, target):
                    print(f"run {attempt}: finished before the kill at {target} lines")
                    break
                kills += 1
                stderr = process.stderr.read() if process.stderr else ""
                repairs = [line for line in stderr.splitlines() if line.startswith("resume:")]
                if repairs:
                    repaired = "; ".join(line.removeprefix("resume: ") for line in repairs)
                    print(f"run {attempt}: at its start it {repaired}")
                print(f"run {attempt}: killed (SIGKILL) at ≥{target} results lines: "
                      f"{state_after_kill(out, results)}")  # fmt: skip
                if args.damage:
                    print(f"   then {damage(out, results, attempt)}: "
                          f"{state_after_kill(out, results)}")  # fmt: skip
            final = run_cli(cli_args)
            stdout, stderr = final.communicate(timeout=1800)
            elapsed = time.perf_counter() - started
        repairs = [line for line in stderr.splitlines() if line.startswith(("resume:", "resuming"))]
        print(f"final run: exit {final.returncode}; at its start: " + "; ".join(repairs))
        for line in stdout.splitlines():
            if " records: " in line or line.startswith("This run:"):
                print("   " + line)
        statuses = Counter(json.loads(line)["status"] for line in results.read_text().splitlines())
        print(f"{kills} kills, {elapsed:.0f} s in all, {len(server.requests)} LM requests")
        print(f"results: {dict(statuses)}")
        problems = check(input_path, input_lines, out, results)
        if problems:
            print("FAILED: " + "; ".join(problems))
            sys.exit(1)
        print(
            f"OK: every one of the {input_lines} input lines has exactly one results line, "
            f"every trajectory was processed once, and the {statuses['accepted']} training "
            "rows are exactly the accepted trajectories"
        )


if __name__ == "__main__":
    main()
