"""The real `agenther-dspy` command, run as a subprocess, against an OpenAI-compatible
server started on 127.0.0.1 by the test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import AGENTHER_RUNS, EXAMPLES, write_jsonl

from agenther_dspy.lm.stub_server import StubServer

SECRET = "sk-test-0123456789abcdefghijklmnop"


def cli(*args: str, env: dict | None = None, cwd: Path | None = None):
    return subprocess.run(
        [sys.executable, "-m", "agenther_dspy", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        cwd=cwd,
        timeout=300,
    )


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def server():
    with StubServer() as stub:
        yield stub


def test_run_writes_dpo_rows_against_an_openai_compatible_server(tmp_path, server):
    out = tmp_path / "dpo.jsonl"
    result = cli(
        "run", str(EXAMPLES), "-o", str(out), "-f", "dpo",
        "--free-relabeler", "-m", "openai/stub-model", "--base-url", server.base_url,
        env={"OPENAI_API_KEY": SECRET},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    written = rows(out)
    assert [r["source_trajectory_id"] for r in written] == ["traj_001", "traj_002"]
    for row in written:
        assert row["format"] == "dpo" and row["chosen"] and row["rejected"]
        assert 0.3 <= row["weight"] <= 1.0
        assert row["chosen"][1] == row["rejected"][1]
    assert "traj_003" in result.stdout and "skipped" in result.stdout
    assert "3 records: 2 accepted, 1 skipped" in result.stdout
    # The key reached the server and nothing else.
    assert all(body["model"] == "stub-model" for body in server.requests)
    assert SECRET not in out.read_text() and SECRET not in result.stdout + result.stderr
    home = Path(os.environ["AGENTHER_DSPY_HOME"])
    for path in home.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def test_run_is_an_mlflow_run_with_its_settings_and_counts(tmp_path, server):
    import mlflow

    (tmp_path / "store").mkdir()
    (work := tmp_path / "work").mkdir()
    store = tmp_path / "store" / "mlflow.db"
    out = tmp_path / "dpo.jsonl"
    args = ["run", str(EXAMPLES), "-o", str(out), "-f", "dpo", "--free-relabeler",
            "-m", "openai/stub-model", "--base-url", server.base_url,
            "--tracking-uri", f"sqlite:///{store}"]  # fmt: skip
    result = cli(*args, env={"OPENAI_API_KEY": SECRET}, cwd=work)
    assert result.returncode == 0, result.stderr
    resumed = cli(*args, env={"OPENAI_API_KEY": SECRET}, cwd=work)  # nothing left to do
    assert resumed.returncode == 0, resumed.stderr

    mlflow.set_tracking_uri(f"sqlite:///{store}")
    runs = mlflow.search_runs(
        experiment_names=["agenther-dspy"], output_format="list", order_by=["start_time ASC"]
    )
    assert [r.data.tags["agenther.command"] for r in runs] == ["run", "run"]
    first, second = runs
    assert first.data.params["model"] == "openai/stub-model"
    assert first.data.params["output_format"] == "dpo"
    assert first.data.params["min_confidence"] == "0.5"
    assert first.data.metrics["accepted"] == 2 and first.data.metrics["skipped"] == 1
    assert first.data.metrics["rows_written"] == 2
    # The resumed invocation processed nothing new but reports the whole batch.
    assert second.data.metrics["processed_this_run"] == 0
    assert second.data.metrics["rows_written"] == 0 and second.data.metrics["rows_total"] == 2
    # Artifacts sit beside the store, not in the working directory; no file holds the key.
    assert (tmp_path / "store" / "mlruns").is_dir() and not (work / "mlruns").exists()
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


@pytest.mark.parametrize("fmt", ["sft", "sharegpt"])
def test_run_other_formats(tmp_path, server, fmt):
    out = tmp_path / f"{fmt}.jsonl"
    result = cli("run", str(EXAMPLES), "-o", str(out), "-f", fmt,
                 "--free-relabeler", "-m", "openai/stub", "--base-url", server.base_url,
                 "--no-cache")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert {r["format"] for r in rows(out)} == {fmt}


def test_run_reports_invalid_lines_and_processes_the_rest(tmp_path, server):
    good = [json.loads(line) for line in AGENTHER_RUNS.read_text().splitlines()[:2]]
    path = write_jsonl(tmp_path / "mixed.jsonl", [good[0], {"original_prompt": "x"}, good[1]])
    out = tmp_path / "out.jsonl"
    result = cli("run", str(path), "-o", str(out), "--free-relabeler", "-m", "openai/stub",
                 "--base-url", server.base_url, "--rule-extractor")  # fmt: skip
    assert result.returncode == 1
    assert f"{path}:2: steps: Field required" in " ".join(result.stderr.split())
    assert len(rows(out)) + result.stdout.count("skipped") >= 2


def test_lm_failures_become_error_rows_not_a_crash(tmp_path):
    with StubServer(error_rate=1.0) as failing:
        out = tmp_path / "out.jsonl"
        result = cli("run", str(EXAMPLES), "-o", str(out), "--free-relabeler", "-m", "openai/stub",
                     "--base-url", failing.base_url, "--no-cache")  # fmt: skip
    assert result.returncode == 1
    assert result.stdout.count("error") >= 2 and "1 skipped" in result.stdout
    assert out.read_text() == ""


def test_fatal_problems_exit_2_with_one_line(tmp_path):
    missing = cli(
        "run", str(tmp_path / "nope.jsonl"), "-m", "openai/x", "--base-url", "http://127.0.0.1:9/v1"
    )
    assert missing.returncode == 2 and "no such file" in missing.stderr
    no_key = cli("run", str(EXAMPLES), "-m", "openai/x", "--api-key-env", "AGENTHER_TEST_UNSET_KEY")
    assert no_key.returncode == 2
    assert "AGENTHER_TEST_UNSET_KEY: that environment variable is not set" in no_key.stderr


def test_models_lists_the_registered_models_and_their_state():
    listed = cli("models", "--json")
    assert listed.returncode == 0, listed.stderr
    by_name = {row["name"]: row for row in json.loads(listed.stdout)}
    assert {"qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b", "smollm2-135m"} <= set(by_name)
    # The test model is installed by the test set-up command and verifies.
    assert by_name["smollm2-135m"]["installed"] and by_name["smollm2-135m"]["verified"]
    table = cli("models")
    assert table.returncode == 0 and "smollm2-135m" in table.stdout and "(default)" in table.stdout


def test_validate_accepts_the_example_file():
    result = cli("validate", str(EXAMPLES))
    assert result.returncode == 0
    assert "3 valid records" in result.stdout


def test_validate_names_each_defect_in_a_corrupted_copy(tmp_path):
    items = json.loads(EXAMPLES.read_text())
    del items[0]["failure_reason"]
    items[1]["steps"] = []
    items[2]["steps"][1]["action_input"] = "not an object"
    path = tmp_path / "corrupt.json"
    path.write_text(json.dumps(items, indent=2))
    result = cli("validate", str(path))
    assert result.returncode == 1
    out = " ".join(result.stdout.split())
    assert "(item 0): failure_reason: Field required" in out
    assert "(item 1): steps: List should have at least 1 item" in out
    assert "(item 2): steps.1.action_input: Input should be a valid dictionary" in out
    assert "3 invalid, 0 valid records" in out


def test_run_writes_a_hugging_face_dataset_with_its_card(tmp_path, server):
    from datasets import load_from_disk

    out, folder = tmp_path / "sft.jsonl", tmp_path / "hf"
    result = cli("run", str(EXAMPLES), "-o", str(out), "--free-relabeler", "-m", "openai/stub",
                 "--base-url", server.base_url, "--hf-dataset", str(folder))  # fmt: skip
    assert result.returncode == 0, result.stderr
    dataset = load_from_disk(str(folder))
    assert sorted(dataset["source_trajectory_id"]) == ["traj_001", "traj_002"]
    card = (folder / "README.md").read_text()
    assert "openai/stub" in card and "0.5" in card and str(EXAMPLES) in card
