"""`run --ray` against one process: throughput, Ray's own cost per record, and where the
client's CPU goes per trajectory. Prints figures; not a test.

The stub server runs in a process of its own (64 slots), so the CPU measured here is the
client's alone. Every input record goes to the LM stages (3 LM calls each: extract,
relabel, judge; the rule detector makes none). DSPy's cache is off.

1. Throughput at `--latency` (default 0.1 s): one process at concurrency 64, then Ray
   with 1 actor × 64 and 2 actors × 32 (the stub's 64 slots shared), trajectories/s.
   Ray's start (`ray.init`) is timed apart; each Ray figure includes its actors' start.
2. Ray's overhead per record, at 0 latency (CPU-bound, so every extra ms shows): wall
   ms per record of Ray with 1 actor minus one process at the same concurrency, and the
   driver's own CPU per record under Ray (reading, sending, receiving, writing).
3. Client CPU per trajectory, by where it goes: the program on pre-parsed records in this
   thread over HTTP at 0 latency, profiled with cProfile and split by package (DSPy's
   adapters formatting and parsing, the rest of DSPy, LiteLLM, the HTTP client, pydantic,
   ours); the total is `time.process_time()` without the profiler, the split is the
   profile's shares of it.

    python benchmarks/ray_throughput.py [--only throughput|overhead|cpu] [-n 600]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dspy.clients import costs
from synthetic_runs import write_input

from agenther_dspy.execution import execute
from agenther_dspy.formats import read_trajectories
from agenther_dspy.lm.factory import configure_cache
from agenther_dspy.modules.program import HindsightRelabeler
from agenther_dspy.runner import run_batch
from agenther_dspy.runner.ray_batch import run_ray_batch
from agenther_dspy.settings import LMSettings


class StubProcess:
    """`python -m agenther_dspy.lm.stub_server` in a process of its own."""

    def __init__(self, latency: float, slots: int = 64) -> None:
        self.latency, self.slots = latency, slots

    def __enter__(self) -> StubProcess:
        command = [sys.executable, "-m", "agenther_dspy.lm.stub_server"]
        command += ["--latency", str(self.latency), "--slots", str(self.slots)]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        self.base_url = line.split()[-1]
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait()


def lm_settings(stub: StubProcess) -> LMSettings:
    return LMSettings("openai/stub", stub.base_url, cache=False)


class Clock:
    """When the first and the last result were written: the start (for Ray, its actors
    importing DSPy and building the program) apart from the steady rate."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.times: list[float] = []

    def __call__(self, result) -> None:
        self.times.append(time.perf_counter())

    @property
    def first(self) -> float:
        return self.times[0] - self.started

    @property
    def steady(self) -> float:
        """Trajectories per second from the first result to the last."""
        return (len(self.times) - 1) / (self.times[-1] - self.times[0])


def single(path: Path, out: Path, stub: StubProcess, concurrency: int, clock: Clock):
    lm = lm_settings(stub).build()
    return run_batch(
        read_trajectories(path),
        HindsightRelabeler(),
        output_path=out,
        lm=lm,
        concurrency=concurrency,
        overwrite=True,
        on_result=clock,
    )


def on_ray(path: Path, out: Path, stub: StubProcess, actors: int, concurrency: int, clock: Clock):
    return run_ray_batch(
        read_trajectories(path),
        HindsightRelabeler(),
        lm_settings=lm_settings(stub),
        output_path=out,
        actors=actors,
        concurrency=concurrency,
        overwrite=True,
        on_result=clock,
    )


def start_ray(cpus: int) -> float:
    import ray

    started = time.perf_counter()
    ray.init(num_cpus=cpus, include_dashboard=False, logging_level="ERROR")
    return time.perf_counter() - started


def throughput(work: Path, n: int, latency: float) -> None:
    print(f"\n## Throughput: {n} trajectories, 3 LM calls each, stub {latency} s, 64 slots")
    path = write_input(work / "tp.jsonl", n)
    print(f"ray.init (local, 2 CPUs): {start_ray(2):.1f} s, not counted below")
    print(
        f"{'runner':<30} {'seconds':>8} {'traj/s':>7} {'first result s':>15} "
        f"{'steady traj/s':>14} {'driver CPU ms/traj':>19}"
    )
    with StubProcess(latency) as stub:
        runs = [
            ("one process, concurrency 64", lambda out, c: single(path, out, stub, 64, c)),
            ("Ray, 1 actor × 64", lambda out, c: on_ray(path, out, stub, 1, 64, c)),
            ("Ray, 2 actors × 32", lambda out, c: on_ray(path, out, stub, 2, 32, c)),
        ]
        for label, run in runs:
            cpu, clock = time.process_time(), Clock()
            summary = run(work / "tp-out.jsonl", clock)
            cpu = (time.process_time() - cpu) / n * 1000
            assert summary.counts["accepted"] == n, summary.counts
            rate = n / summary.seconds
            print(
                f"{label:<30} {summary.seconds:>8.1f} {rate:>7.1f} {clock.first:>15.1f} "
                f"{clock.steady:>14.1f} {cpu:>19.1f}"
            )


def overhead(work: Path, n: int) -> None:
    import ray

    if not ray.is_initialized():
        start_ray(2)
    print(f"\n## Ray's overhead per record: {n} trajectories, stub at 0 s, concurrency 4")
    path = write_input(work / "ov.jsonl", n)
    with StubProcess(0.0) as stub:
        single(path, work / "warm.jsonl", stub, 4, Clock())
        rows = {}
        for label, run in (
            ("one process", lambda c: single(path, work / "ov-one.jsonl", stub, 4, c)),
            ("Ray, 1 actor", lambda c: on_ray(path, work / "ov-ray.jsonl", stub, 1, 4, c)),
        ):
            cpu, clock = time.process_time(), Clock()
            run(clock)
            rows[label] = (1000 / clock.steady, (time.process_time() - cpu) / n * 1000, clock.first)
    print(f"{'ms per trajectory, steady':<40} {'wall':>7} {'driver CPU':>11} {'start s':>8}")
    for label, (wall, cpu, first) in rows.items():
        print(f"{label:<40} {wall:>7.2f} {cpu:>11.2f} {first:>8.1f}")
    extra = rows["Ray, 1 actor"][0] - rows["one process"][0]
    print(f"{'Ray − one process (wall, steady)':<40} {extra:>7.2f}")


# (label, file suffix, function): the cumulative time of each piece of one LM call.
PIECES = (
    ("DSPy adapter: format the request", "dspy/adapters/base.py", "format"),
    ("DSPy adapter: parse the answer", "dspy/adapters/base.py", "_call_postprocess"),
    ("DSPy: pick the engine (per call)", "dspy/clients/execution.py", "_select_engine"),
    ("DSPy: price the call", "dspy/clients/execution.py", "_price_result"),
    ("HTTP: build, send, receive, decode", "lm15/providers/base.py", "complete"),
)


def cumulative(stats: pstats.Stats, suffix: str, name: str) -> float:
    return max(
        (cum for (file, _, func), (_, _, _, cum, _) in stats.stats.items()
         if file.endswith(suffix) and func == name),
        default=0.0,
    )  # fmt: skip


def client_cpu(work: Path, n: int) -> None:
    print(f"\n## Client CPU per trajectory: {n} trajectories, program in this thread, stub at 0 s")
    path = write_input(work / "cpu.jsonl", n)
    trajectories = [record.trajectory for record in read_trajectories(path)]
    program = HindsightRelabeler()
    with StubProcess(0.0) as stub:
        lm = lm_settings(stub).build()
        for trajectory in trajectories[:10]:  # warm-up
            execute(program, trajectory, lm=lm)
        remembered = costs.model_info  # build_lm's `remember_prices`
        ways = {
            "DSPy's price lookup as shipped": remembered.original,
            "prices remembered": remembered,
        }
        best: dict[str, float] = {}
        for _ in range(2):  # interleaved; best of two
            for label, lookup in ways.items():
                costs.model_info = lookup
                cpu = time.process_time()
                for trajectory in trajectories:
                    assert execute(program, trajectory, lm=lm).status == "accepted"
                spent = (time.process_time() - cpu) / n * 1000
                best[label] = min(best.get(label, spent), spent)
        costs.model_info = remembered
        per = best["prices remembered"]
        for label, spent in best.items():
            print(f"CPU per trajectory (3 LM calls), {label}: {spent:.1f} ms")
        profile = cProfile.Profile()
        profile.enable()
        for trajectory in trajectories:
            execute(program, trajectory, lm=lm)
        profile.disable()
    stats = pstats.Stats(profile)
    total = cumulative(stats, "agenther_dspy/execution.py", "execute")
    calls = cumulative(stats, "dspy/predict/predict.py", "__call__")
    rows = [(label, cumulative(stats, suffix, name)) for label, suffix, name in PIECES]
    rows.append(("DSPy, the rest of an LM call", calls - sum(t for _, t in rows)))
    rows.append(("ours: stages, rendering, checks, context", total - calls))
    print(f"with prices remembered, {per / 3:.1f} ms per call, split by the profile:")
    for label, seconds in rows:
        print(f"  {label:<44} {seconds / total * per:>6.1f} ms  {seconds / total:>5.0%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["throughput", "overhead", "cpu"])
    parser.add_argument("-n", type=int, default=600, help="trajectories for throughput")
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--overhead-n", type=int, default=300)
    parser.add_argument("--cpu-n", type=int, default=200)
    args = parser.parse_args()
    configure_cache(enabled=False)
    with tempfile.TemporaryDirectory(prefix="agenther-ray-bench-") as tmp:
        work = Path(tmp)
        if args.only in (None, "cpu"):
            client_cpu(work, args.cpu_n)
        if args.only in (None, "throughput"):
            throughput(work, args.n, args.latency)
        if args.only in (None, "overhead"):
            overhead(work, args.overhead_n)


if __name__ == "__main__":
    main()
