"""Batch runs: every input accounted for once, resumable after any stop, faults become
results. In process against the loopback stub server, plus the real CLI killed mid-run."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import dspy
import pytest
from conftest import AGENTHER, EXAMPLES, write_jsonl

from agenther_dspy.formats import read_trajectories
from agenther_dspy.lm import build_lm
from agenther_dspy.lm.factory import configure_cache
from agenther_dspy.lm.stub_server import StubServer
from agenther_dspy.modules.program import HindsightRelabeler
from agenther_dspy.runner import (
    ResumeError,
    count_input_records,
    default_results_path,
    recover,
    run_batch,
)

TEMPLATES = json.loads(EXAMPLES.read_text())  # accepted, accepted, skipped at detect


def synthetic(n: int) -> list[dict]:
    """n distinct trajectories; every third one is skipped by the rule detector."""
    items = []
    for i in range(n):
        item = copy.deepcopy(TEMPLATES[i % 3])
        item["trajectory_id"] = f"syn-{i:04d}"
        item["original_prompt"] = f"[case-{i:04d}] {item['original_prompt']}"
        item["final_answer"] = f"[case-{i:04d}] {item['final_answer']}"  # seen by every stage
        items.append(item)
    return items


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture
def lm_cache(tmp_path):
    """DSPy's response cache in this test's folder, restored afterwards."""
    previous = dspy.cache
    configure_cache(tmp_path / "lm-cache")
    yield tmp_path / "lm-cache"
    dspy.cache = previous


@pytest.fixture
def fast_backoff(monkeypatch):
    """DSPy sleeps 1, 2, 4 s between retries; the tests keep the retries, not the sleeps."""
    from dspy.clients import execution

    monkeypatch.setattr(execution, "_delay", lambda exc, attempt: 0.01)


def batch(path, out, server, *, cache=False, retries=3, timeout=None, **kwargs):
    lm = build_lm(
        "openai/stub", base_url=server.base_url, cache=cache, num_retries=retries, timeout=timeout
    )
    kwargs.setdefault("concurrency", 4)
    return run_batch(
        read_trajectories(path), HindsightRelabeler(**AGENTHER), output_path=out, lm=lm, **kwargs
    )


def assert_exactly_once(input_path: Path, out: Path) -> list[dict]:
    """One results line per input record, one training row per accepted trajectory."""
    results = lines(default_results_path(out))
    keys = [r["key"] for r in results]
    assert len(keys) == len(set(keys))
    assert sorted(r["line"] for r in results) == list(range(1, count_input_records(input_path) + 1))
    rows = lines(out)
    row_ids = [r["source_trajectory_id"] for r in rows]
    assert len(row_ids) == len(set(row_ids))
    accepted = [r["trajectory_id"] for r in results if r["status"] == "accepted"]
    assert sorted(row_ids) == sorted(accepted)
    return results


def by_key(results: list[dict]) -> dict[str, tuple]:
    return {r["key"]: (r["status"], r["stage"], r["reason"]) for r in results}


def sorted_rows(out: Path) -> list[dict]:
    return sorted(lines(out), key=lambda row: row["source_trajectory_id"])


def test_results_account_for_every_input_and_report_invalid_lines(tmp_path):
    items = synthetic(7)
    raw = [json.dumps(item) for item in items]
    raw.insert(2, '{"original_prompt": "no steps"}')  # line 3: invalid record
    raw.insert(5, "{not json")  # line 6: invalid JSON
    raw.append(json.dumps(items[0]))  # line 10: same id as line 1
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(raw) + "\n")
    out = tmp_path / "rows.jsonl"
    with StubServer() as server:
        summary = batch(path, out, server)
    results = assert_exactly_once(path, out)
    status = {r["line"]: r["status"] for r in results}
    assert status[3] == status[6] == "invalid"
    invalid = {r["line"]: r["reason"] for r in results if r["status"] == "invalid"}
    assert "steps: Field required" in invalid[3] and "invalid JSON" in invalid[6]
    duplicate = next(r for r in results if r["line"] == 10)
    assert duplicate["status"] == "skipped" and "record at line 1" in duplicate["reason"]
    assert Counter(status.values()) == {"accepted": 5, "skipped": 3, "invalid": 2}
    assert summary.counts == Counter(status.values()) and summary.bad == 2
    accepted = next(r for r in results if r["status"] == "accepted")
    assert accepted["relabel_confidence"] == accepted["judge_confidence"] == 0.9
    assert accepted["stage"] == "judge" and accepted["attempts"] == 1


def test_files_come_out_in_input_order_whatever_the_thread_timing(tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", synthetic(40))  # skipped ones finish first
    out = tmp_path / "rows.jsonl"
    with StubServer(latency=0.02) as server:
        batch(path, out, server, concurrency=8)
    results = lines(default_results_path(out))
    assert [r["line"] for r in results] == list(range(1, 41))
    accepted = [r["trajectory_id"] for r in results if r["status"] == "accepted"]
    assert [row["source_trajectory_id"] for row in lines(out)] == accepted


def test_usage_is_counted_per_trajectory_under_many_threads(tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", synthetic(24))
    out = tmp_path / "rows.jsonl"
    with StubServer(latency=0.01) as server:
        batch(path, out, server, concurrency=8)
    results = lines(default_results_path(out))

    def words(body):
        return sum(len(str(m.get("content", "")).split()) for m in body["messages"])

    # Each trajectory's calls carry its own case marker: attribute the server's requests.
    for result in results:
        marker = f"[case-{result['trajectory_id'][4:]}]"
        mine = [b for b in server.requests if marker in json.dumps(b["messages"])]
        assert result["lm_calls"] == len(mine), result["key"]
        assert result["prompt_tokens"] == sum(words(b) for b in mine), result["key"]
        assert result["completion_tokens"] > 0 or not mine
    assert sum(r["lm_calls"] for r in results) == len(server.requests)
    assert {r["lm_calls"] for r in results if r["status"] == "accepted"} == {3}


CRASH_POINTS = ["hook-after-1", "hook-after-5", "torn-results", "row-without-result", "torn-row"]


@pytest.mark.parametrize("crash", CRASH_POINTS)
def test_resume_after_a_crash_gives_the_rows_of_an_uninterrupted_run(tmp_path, lm_cache, crash):
    path = write_jsonl(tmp_path / "in.jsonl", synthetic(12))
    reference, out = tmp_path / "reference.jsonl", tmp_path / "rows.jsonl"
    with StubServer() as server:
        batch(path, reference, server, concurrency=1, cache=True)

        class Crash(Exception):
            pass

        seen = []

        def crash_after(n):
            def hook(result):
                seen.append(result)
                if len(seen) == n:
                    raise Crash

            return hook

        results_path = default_results_path(out)
        if crash.startswith("hook"):
            with pytest.raises(Crash):
                batch(path, out, server, cache=True, on_result=crash_after(int(crash[-1])))
        else:
            batch(path, out, server, cache=True)
            text = results_path.read_text().splitlines(keepends=True)
            rows = out.read_text().splitlines(keepends=True)
            # What a kill leaves while the last accepted trajectory is being written.
            last = max(i for i, t in enumerate(text) if '"accepted"' in t)
            if crash == "torn-results":  # halfway through its results line
                kept = [*text[:last], text[last][:40]]
            elif crash == "row-without-result":  # between its row and its results line
                kept = text[:last]
            else:  # halfway through its training row
                kept = text[:last]
                rows = [*rows[:-1], rows[-1][: len(rows[-1]) // 2]]
            lost = len(text) - last
            results_path.write_text("".join(kept))
            out.write_text("".join(rows))

        before = len(server.requests)
        summary = batch(path, out, server, cache=True)
        if not crash.startswith("hook"):
            # Work already done is not paid for again: the LM cache answers what is redone.
            assert len(server.requests) == before
        assert len(server.requests) - before <= 3 * summary.processed

    assert_exactly_once(path, out)
    assert sorted_rows(out) == sorted_rows(reference)
    assert by_key(lines(default_results_path(out))) == by_key(
        lines(default_results_path(reference))
    )
    if not crash.startswith("hook"):
        assert summary.processed == lost  # exactly the records whose commit was lost


def test_recover_drops_orphans_and_reports_what_it_did(tmp_path):
    out = tmp_path / "rows.jsonl"
    results = default_results_path(out)
    row = {"source_trajectory_id": "a", "format": "sft"}
    out.write_text(json.dumps(row) + "\n" + json.dumps({**row, "source_trajectory_id": "b"}))
    results.write_text(json.dumps({"key": "a", "trajectory_id": "a", "status": "accepted"}) + "\n")
    state = recover(out, results)
    assert state.done == {"a": "accepted"} and state.rows == 1
    assert lines(out) == [row]
    assert any("half-written training row" in note for note in state.repairs)

    with pytest.raises(ResumeError, match="holds sft rows and this run writes dpo rows"):
        recover(out, results, output_format="dpo")
    results.unlink()
    with pytest.raises(ResumeError, match="--overwrite"):
        recover(out, results)
    assert recover(out, results, overwrite=True).done == {} and not out.exists()


def test_injected_rate_limits_server_errors_and_bad_answers_lose_nothing(tmp_path, fast_backoff):
    path = write_jsonl(tmp_path / "in.jsonl", synthetic(30))
    out = tmp_path / "rows.jsonl"
    faults = dict(rate_limit_rate=0.15, error_rate=0.15, malformed_rate=0.1, seed=7)
    with StubServer(**faults) as server:
        summary = batch(path, out, server, concurrency=8, retries=4)
    results = assert_exactly_once(path, out)
    # 429 and 500 are retried: with 4 retries a trajectory almost never runs out of them.
    assert summary.counts["error"] <= 1
    unparseable = [r for r in results if "unparseable" in r["reason"]]
    assert unparseable, "a malformed answer should have cost an attempt somewhere"
    for result in results:
        if result["status"] == "rejected":
            assert result["reason"]
    assert summary.counts["accepted"] >= 10


def test_retries_are_bounded_and_failures_become_error_results(tmp_path, fast_backoff):
    path = write_jsonl(tmp_path / "in.jsonl", synthetic(3))
    out = tmp_path / "rows.jsonl"
    with StubServer(rate_limit_rate=1.0) as server:
        summary = batch(path, out, server, retries=2, concurrency=1)
    results = lines(default_results_path(out))
    assert summary.counts == {"error": 2, "skipped": 1}
    for result in (r for r in results if r["status"] == "error"):
        assert "RateLimit" in result["reason"] and result["stage"] == "extract"
        assert result["lm_calls"] == 0  # no call was answered
    assert len(server.requests) == 2 * 3  # two trajectories × (1 call + 2 retries)
    assert out.read_text() == ""


def test_a_call_that_outlives_the_timeout_is_an_error_not_a_hang(tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", synthetic(1))
    out = tmp_path / "rows.jsonl"
    started = time.monotonic()
    with StubServer(latency=3.0) as server:
        summary = batch(path, out, server, retries=0, timeout=0.3, concurrency=1)
    assert time.monotonic() - started < 2.5
    (result,) = lines(default_results_path(out))
    assert summary.counts == {"error": 1}
    assert "timed out" in result["reason"] or "Timeout" in result["reason"]


def test_retry_errors_redoes_only_the_errors(tmp_path, lm_cache):
    items = synthetic(3)  # accepted, accepted, skipped
    out = tmp_path / "rows.jsonl"
    first = write_jsonl(tmp_path / "first.jsonl", items[:1])
    path = write_jsonl(tmp_path / "all.jsonl", items)
    with StubServer() as healthy:
        batch(first, out, healthy, cache=True)
    with StubServer(error_rate=1.0) as failing:
        summary = batch(path, out, failing, cache=True, retries=0)
    assert summary.counts == {"error": 1, "skipped": 1}
    with StubServer() as healthy:
        again = batch(path, out, healthy, cache=True)
        assert again.processed == 0 and not healthy.requests  # errors stay errors
        retried = batch(path, out, healthy, cache=True, retry_errors=True)
        assert retried.counts == {"accepted": 1}
        # The server was asked again only about the trajectory that had failed.
        assert healthy.requests
        assert all("[case-0001]" in json.dumps(b["messages"]) for b in healthy.requests)
    results = assert_exactly_once(path, out)
    assert Counter(r["status"] for r in results) == {"accepted": 2, "skipped": 1}


def test_counting_the_input(tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", synthetic(5))
    with path.open("a") as handle:
        handle.write("\n\n")
    assert count_input_records(path) == 5
    assert count_input_records(EXAMPLES) is None  # a JSON array: counted as it is read


# ---------------------------------------------------------------------------- the real CLI


def cli(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "agenther_dspy", "run", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )


def wait_for_results(path: Path, count: int, process: subprocess.Popen, limit: float = 60):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().count("\n") >= count:
            return
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    raise AssertionError(f"fewer than {count} results after {limit} s")


@pytest.mark.parametrize("how", ["SIGKILL", "SIGINT"])
def test_cli_killed_mid_run_resumes_exactly_once(tmp_path, how):
    items = synthetic(30)
    items.insert(7, {"original_prompt": "broken"})
    path = write_jsonl(tmp_path / "in.jsonl", items)
    out = tmp_path / "rows.jsonl"
    results = default_results_path(out)
    with StubServer(latency=0.2) as server:
        args = [str(path), "-o", str(out), "-m", "openai/stub", "--base-url", server.base_url]
        args += ["--concurrency", "4", "--cache-dir", str(tmp_path / "cache")]
        args += ["--free-relabeler", "--detector", "rules"]  # AgentHER's, which the stub drives
        first = cli(args)
        wait_for_results(results, 6, first)
        first.send_signal(getattr(signal, how))
        stdout, stderr = first.communicate(timeout=60)
        assert len(lines(results)) < len(items)
        if how == "SIGINT":
            assert first.returncode == 130
            assert "Run the same command again" in stderr
            # Ctrl-C finishes what is in flight: nothing to repair on resume.
            recovered = recover(out, results)
            assert not recovered.repairs
        else:
            assert first.returncode == -signal.SIGKILL
        second = cli(args)
        stdout, stderr = second.communicate(timeout=120)
        assert second.returncode == 1, stderr  # the broken record
        assert "resuming:" in stderr
    assert_exactly_once(path, out)
    assert f"{len(items)} records: 20 accepted, 10 skipped, 1 invalid" in stdout


def test_cli_refuses_a_timeout_for_the_in_process_model(tmp_path):
    command = ["run", str(EXAMPLES), "-m", "local", "--timeout", "5", "-o", str(tmp_path / "o")]
    result = subprocess.run(
        [sys.executable, "-m", "agenther_dspy", *command],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "--timeout is for remote servers" in result.stderr
