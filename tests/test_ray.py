"""`run --ray`: the batch on Ray Data keeps the single-process contract. One local Ray with
2 CPUs for the whole module, the loopback stub server, real tau2 runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import ray
from conftest import AGENTHER, REAL_FAILED, REAL_SUCCESS, write_jsonl
from test_runner import assert_exactly_once, synthetic
from typer.testing import CliRunner

from agenther_dspy.cli import app
from agenther_dspy.formats import read_trajectories
from agenther_dspy.lm.stub_server import StubServer
from agenther_dspy.modules.program import HindsightRelabeler
from agenther_dspy.runner.ray_batch import run_ray_batch
from agenther_dspy.settings import LMSettings

CLI = [sys.executable, "-m", "agenther_dspy"]
# What may differ between two runs of the same record: time taken.
TIMING = ("seconds",)


@pytest.fixture(scope="module")
def ray_address():
    """One local Ray for the module (starting one costs seconds); its GCS address lets a
    driver in another process join it."""
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def real_runs(n: int) -> list[dict]:
    """n real tau2 runs: the failed ones first, then successful ones."""
    rows = []
    for path in (REAL_FAILED, REAL_SUCCESS):
        rows += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    assert len(rows) >= n
    return rows[:n]


def results(path: Path) -> list[dict]:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return [{k: v for k, v in line.items() if k not in TIMING} for line in lines]


def cli_run(input_path: Path, out: Path, server: StubServer, *extra: str) -> list[str]:
    return [
        "run", str(input_path), "-o", str(out), "-f", "dpo", "--free-relabeler",
        "-m", "openai/stub", "--base-url", server.base_url, "--no-cache", "--no-mlflow", *extra,
    ]  # fmt: skip


def test_ray_gives_the_same_files_as_one_process(ray_address, tmp_path):
    rows = real_runs(200)
    rows.insert(50, {"trajectory_id": "broken"})  # invalid: written in its place
    rows.insert(120, rows[10])  # a duplicate: skipped in its place
    input_path = write_jsonl(tmp_path / "in.jsonl", rows)
    runner = CliRunner()
    with StubServer(latency=0.0) as server:
        single = runner.invoke(app, cli_run(input_path, tmp_path / "one.jsonl", server))
        started = time.perf_counter()
        on_ray = runner.invoke(
            app, cli_run(input_path, tmp_path / "ray.jsonl", server, "--ray-actors", "2", "--ray")
        )
        seconds = time.perf_counter() - started
    assert single.exit_code == 1, single.output  # the invalid record
    assert on_ray.exit_code == 1, on_ray.output
    assert "Ray Data: 2 actors" in on_ray.output
    one, other = results(tmp_path / "one.results.jsonl"), results(tmp_path / "ray.results.jsonl")
    assert len(one) == 202
    assert other == one  # the same lines in the same (input) order
    assert (tmp_path / "ray.jsonl").read_text() == (tmp_path / "one.jsonl").read_text()
    statuses = {line["status"] for line in one}
    assert {"accepted", "skipped", "invalid"} <= statuses
    print(f"200 real runs on Ray, 2 actors: {seconds:.1f} s")


def test_a_killed_driver_resumes_with_every_record_once(ray_address, tmp_path):
    input_path = write_jsonl(tmp_path / "in.jsonl", synthetic(150))
    out = tmp_path / "out.jsonl"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with StubServer(latency=0.05) as server:
        command = [*CLI, *cli_run(input_path, out, server, "--concurrency", "2")]
        command += ["--ray", ray_address, "--ray-actors", "2"]
        driver = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        results_path = tmp_path / "out.results.jsonl"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and driver.poll() is None:
            if results_path.exists() and len(results_path.read_bytes().splitlines()) >= 30:
                break
            time.sleep(0.05)
        assert driver.poll() is None, driver.stderr.read().decode()[-2000:]
        driver.send_signal(signal.SIGKILL)
        driver.wait()
        done_before = len(results_path.read_bytes().splitlines())
        assert 30 <= done_before < 150
        again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"resuming: {done_before}" in again.stderr or "resume:" in again.stderr
    lines = assert_exactly_once(input_path, out)
    assert {line["status"] for line in lines} <= {"accepted", "skipped"}


def map_workers() -> list[int]:
    """Process ids of this machine's Ray Data actors (their process title names them)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"MapWorker(MapBatches(RelabelActor))" in command:
                pids.append(int(entry.name))
    return pids


def test_an_actor_killed_mid_batch_loses_nothing(ray_address, tmp_path):
    input_path = write_jsonl(tmp_path / "in.jsonl", synthetic(120))
    out = tmp_path / "out.jsonl"
    killed: list[int] = []

    def kill_one_actor(result) -> None:
        nonlocal written
        written += 1
        if written == 20 and not killed:
            workers = map_workers()
            assert workers
            os.kill(workers[0], signal.SIGKILL)
            killed.append(workers[0])

    written = 0
    with StubServer(latency=0.02) as server:
        summary = run_ray_batch(
            read_trajectories(input_path),
            HindsightRelabeler(**AGENTHER),
            lm_settings=LMSettings("openai/stub", server.base_url, cache=False),
            output_path=out,
            actors=2,
            concurrency=2,
            on_result=kill_one_actor,
        )
    assert killed
    assert summary.counts["error"] == 0, summary.counts
    assert summary.processed == 120
    assert_exactly_once(input_path, out)


@pytest.mark.parametrize("address", ["127.0.0.1:9", "ray://127.0.0.1:9"])
def test_an_unreachable_cluster_is_a_clear_error(ray_address, tmp_path, address):
    input_path = write_jsonl(tmp_path / "in.jsonl", synthetic(3))
    with StubServer() as server:
        started = time.perf_counter()
        done = CliRunner().invoke(
            app, cli_run(input_path, tmp_path / "out.jsonl", server, "--ray", address)
        )
    assert done.exit_code == 2, done.output
    assert address in " ".join(done.output.split())
    assert time.perf_counter() - started < 30


@pytest.mark.slow
def test_ray_runs_the_embedded_model(ray_address, tmp_path):
    input_path = write_jsonl(tmp_path / "in.jsonl", real_runs(2))
    command = ["run", str(input_path), "-o", str(tmp_path / "out.jsonl"), "-m"]
    command += ["local:smollm2-135m", "--no-mlflow", "--ray-actors", "1", "--ray"]
    done = CliRunner().invoke(app, command)
    assert done.exit_code in (0, 1), done.output
    lines = results(tmp_path / "out.results.jsonl")
    assert len(lines) == 2
    assert all(line["status"] != "error" for line in lines), lines
