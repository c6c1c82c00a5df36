"""How close does a batch run get to what the LM can serve, what does the pipeline itself
cost, and does memory stay flat with input size? Prints figures; not a timed test.

1. Throughput: the loopback stub server (with TCP_NODELAY, see `NoDelayStub`) with a fixed
   latency and 64 slots (never the limit here), trajectories per second at each
   concurrency, against the ideal concurrency ÷ latency ÷ LM calls per trajectory.
2. Overhead: time per trajectory that is not LM latency, with an instant in-process LM (a
   DSPy custom engine answering at once, the stub's answers without HTTP), as wall time and
   as process CPU time (all threads; steadier than wall time on a shared machine), each
   the best of `--repeats` interleaved runs:
     - the whole pipeline through `run_batch` (reading and validating the input, the four
       stages with DSPy's adapters formatting and parsing each call, writing both files);
     - the program alone on pre-parsed records, so `run_batch − program` is the runner's
       own share (threads, per-record DSPy context and usage tracking, writes);
     - the stub at 0 latency over HTTP, whose difference to the instant LM is the cost of
       the HTTP client and server on the same cores.
3. Memory: peak RSS (VmHWM) of the real CLI on 1,000 and 100,000 synthetic input
   trajectories. To finish in minutes on 2 cores: rule detector and rule extractor, 99% of
   the records skipped at detection (no LM call) and 1% relabeled by the stub at 0 latency
   (2 LM calls each), `--no-cache`.

    python benchmarks/throughput.py [--only throughput|overhead|memory] [--latency 0.25]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from synthetic_runs import NoDelayStub, instant_lm, record, write_input

from agenther_dspy.formats import read_trajectories
from agenther_dspy.lm import build_lm
from agenther_dspy.lm.factory import configure_cache
from agenther_dspy.modules.program import HindsightRelabeler
from agenther_dspy.runner import run_batch


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def batch(path: Path, out: Path, lm, concurrency: int, **kwargs):
    return run_batch(
        read_trajectories(path),
        HindsightRelabeler(**kwargs),
        output_path=out,
        lm=lm,
        concurrency=concurrency,
        overwrite=True,
    )


def throughput(work: Path, latency: float, levels: list[int], per_thread: int) -> None:
    print(f"\n## Throughput: stub latency {latency} s, 64 slots, DSPy cache off")
    print(
        "concurrency  trajectories  seconds  traj/s  calls/traj  ideal traj/s  "
        "ratio  process CPU/wall"
    )
    with NoDelayStub(latency=latency, slots=64) as server:
        lm = build_lm("openai/stub", base_url=server.base_url, cache=False)
        warm = write_input(work / "warm.jsonl", 8)
        batch(warm, work / "warm-out.jsonl", lm, 4)
        for concurrency in levels:
            n = max(16, per_thread * concurrency)
            path = write_input(work / f"tp-{concurrency}.jsonl", n)
            before, cpu = len(server.requests), cpu_seconds()
            summary = batch(path, work / f"tp-{concurrency}-out.jsonl", lm, concurrency)
            cpu = cpu_seconds() - cpu
            calls = (len(server.requests) - before) / n
            rate = n / summary.seconds
            ideal = concurrency / latency / calls
            print(
                f"{concurrency:>11}  {n:>12}  {summary.seconds:>7.2f}  {rate:>6.2f}  "
                f"{calls:>10.2f}  {ideal:>12.2f}  {rate / ideal:>5.2f}  "
                f"{cpu / summary.seconds:>16.2f}"
            )
            assert summary.counts["accepted"] == n, summary.counts


def overhead(work: Path, n: int, repeats: int) -> None:
    import dspy

    from agenther_dspy.schema import Trajectory

    print(
        f"\n## Overhead per trajectory, concurrency 1, {n} trajectories with 3 LM calls each; "
        f"best of {repeats} (other work on the machine only ever adds time)"
    )
    path = write_input(work / "overhead.jsonl", n)
    skip_path = write_input(work / "skip.jsonl", n, lm_every=n + 1)
    records = [Trajectory.model_validate(record(i, i % 2)) for i in range(n)]
    lm = instant_lm()
    program = HindsightRelabeler()

    def pipeline() -> None:
        summary = batch(path, work / "instant-out.jsonl", lm, 1)
        assert summary.counts["accepted"] == n, summary.counts

    def program_alone() -> None:
        with dspy.context(lm=lm, disable_history=True, trace=[]):
            for trajectory in records:
                program(trajectory=trajectory)

    def skipped() -> None:
        summary = batch(skip_path, work / "skip-out.jsonl", lm, 1)
        assert summary.counts["skipped"] == n - 1, summary.counts

    def timed(measure) -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        measure()
        return (time.perf_counter() - wall) / n, (time.process_time() - cpu) / n

    with NoDelayStub(latency=0.0) as server:
        stub = build_lm("openai/stub", base_url=server.base_url, cache=False)

        def over_http() -> None:
            batch(path, work / "stub-out.jsonl", stub, 1)

        measures = [pipeline, program_alone, skipped, over_http]
        for measure in measures:  # warm-up
            measure()
        runs: dict[str, list[tuple[float, float]]] = {m.__name__: [] for m in measures}
        for _ in range(repeats):  # interleaved, so a busy spell does not hit one measure only
            for measure in measures:
                runs[measure.__name__].append(timed(measure))
    best = {
        name: (min(w for w, _ in values), min(c for _, c in values))
        for name, values in runs.items()
    }

    def minus(a: str, b: str) -> tuple[float, float]:
        return best[a][0] - best[b][0], best[a][1] - best[b][1]

    rows = [
        ("run_batch, instant LM: the pipeline without LM latency", best["pipeline"]),
        ("  the program alone on parsed records (DSPy adapters, stages)", best["program_alone"]),
        ("  the rest: the runner (read, validate, thread, context, write)",
         minus("pipeline", "program_alone")),
        ("run_batch, a record skipped at detect (no LM call)", best["skipped"]),
        ("run_batch, stub at 0 s latency over loopback HTTP", best["over_http"]),
        ("  minus the instant LM: HTTP client + stub server, 3 calls",
         minus("over_http", "pipeline")),
    ]  # fmt: skip
    print(f"{'ms per trajectory':<66} {'wall':>7} {'CPU':>7}")
    for label, (wall, cpu) in rows:
        print(f"{label:<66} {wall * 1000:7.2f} {cpu * 1000:7.2f}")


# Runs the CLI in a fresh interpreter and, at exit, records the process's own peak RSS
# (VmHWM). Not the rusage of the child: on Linux that includes the pages the child had
# while it was still a fork of this (larger) process, before exec.
_PEAK_WRAPPER = """
import atexit, os, runpy, sys

def record_peak():
    with open("/proc/self/status") as status:
        peak = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    with open(os.environ["PEAK_RSS_FILE"], "w") as out:
        out.write(peak)

atexit.register(record_peak)
sys.argv = ["agenther-dspy", *sys.argv[1:]]
runpy.run_module("agenther_dspy", run_name="__main__")
"""


def peak_rss_mb(args: list[str], work: Path) -> tuple[float, float, str]:
    peak_file = work / "peak-rss-kb"
    started = time.perf_counter()
    process = subprocess.run(
        [sys.executable, "-c", _PEAK_WRAPPER, "run", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PEAK_RSS_FILE": str(peak_file)},
    )
    seconds = time.perf_counter() - started
    output = process.stdout + process.stderr
    summary = next((line for line in output.splitlines() if " records: " in line), output[-300:])
    return int(peak_file.read_text()) / 1024, seconds, summary


def memory(work: Path, sizes: list[int]) -> None:
    print("\n## Peak memory of `agenther-dspy run` (rule stages, 1% of records to the stub)")
    print("trajectories  input MB  peak RSS MB  seconds  summary")
    peaks = []
    with NoDelayStub(latency=0.0) as server:
        for n in sizes:
            path = write_input(work / f"mem-{n}.jsonl", n, lm_every=100)
            out = work / f"mem-{n}-out.jsonl"
            args = [str(path), "-o", str(out), "-m", "openai/stub", "--base-url", server.base_url]
            args += ["--detector", "rules", "--rule-extractor", "--no-cache", "--overwrite"]
            rss, seconds, summary = peak_rss_mb(args, work)
            peaks.append(rss)
            size = path.stat().st_size / 2**20
            print(f"{n:>12}  {size:>8.1f}  {rss:>11.1f}  {seconds:>7.1f}  {summary}")
        # The same command again: everything is in the results file, all is skipped.
        rss, seconds, summary = peak_rss_mb(args[:-1], work)
        print(f"{'(re-run)':>12}  {size:>8.1f}  {rss:>11.1f}  {seconds:>7.1f}  {summary}")
    print(f"peak RSS difference, {sizes[-1]} vs {sizes[0]}: {peaks[-1] - peaks[0]:.1f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["throughput", "overhead", "memory"])
    parser.add_argument("--latency", type=float, default=0.25)
    parser.add_argument("--concurrency", default="1,4,16,64")
    parser.add_argument("--per-thread", type=int, default=8, help="trajectories per thread")
    parser.add_argument("--overhead-n", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", default="1000,100000")
    args = parser.parse_args()
    os.environ.setdefault("AGENTHER_DSPY_HOME", tempfile.mkdtemp(prefix="agenther-bench-home-"))
    configure_cache(enabled=False)
    with tempfile.TemporaryDirectory(prefix="agenther-bench-") as tmp:
        work = Path(tmp)
        if args.only in (None, "throughput"):
            levels = [int(c) for c in args.concurrency.split(",")]
            throughput(work, args.latency, levels, args.per_thread)
        if args.only in (None, "overhead"):
            overhead(work, args.overhead_n, args.repeats)
        if args.only in (None, "memory"):
            memory(work, [int(n) for n in args.sizes.split(",")])


if __name__ == "__main__":
    main()
