"""Every command driven end to end by the real in-process engine, on the smallest packaged
model: `run`, `evaluate`, and `compile` → `run --program` → `evaluate --program`.

SmolLM2-135M writes poor requests; what these tests check is that every stage's answer
parses into its typed fields and that the artifacts each command promises are there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import get_args

import pytest
from conftest import EXAMPLES

from agenther_dspy.optimizers import load_program
from agenther_dspy.runner import default_results_path
from agenther_dspy.schema import FailureType

pytestmark = pytest.mark.slow

SMALL = "local:smollm2-135m"
MINI = Path("tests/data/labeled_mini.jsonl").resolve()
SETTLED = {"accepted", "rejected", "skipped"}  # every status but error and invalid


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def check_run(out: Path, result, records: int) -> list[dict]:
    assert result.returncode == 0, result.stderr
    results = lines(default_results_path(out))
    assert len(results) == records
    for entry in results:
        # A stage whose answer did not parse ends its record as an error naming the stage.
        assert entry["status"] in SETTLED, entry
        assert entry["failure_type"] in get_args(FailureType)
    relabeled = [e for e in results if e["status"] != "skipped"]
    for entry in relabeled:
        assert entry["attempts"] >= 1 and entry["lm_calls"] >= 2  # extract, relabel (, judge)
    for entry in (e for e in results if e["status"] == "accepted"):
        assert 0.0 <= entry["relabel_confidence"] <= 1.0
        assert entry["single_judge"] or 0.0 <= entry["judge_confidence"] <= 1.0
    rows = lines(out) if out.exists() else []
    assert len(rows) == sum(e["status"] == "accepted" for e in results)
    for row in rows:
        assert row["hindsight_prompt"].strip() and row["chosen"] and row["rejected"]
    return results


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "agenther_dspy", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        cwd=cwd,
        timeout=900,
    )


def labeled_lines(*keep: int) -> list[str]:
    return [MINI.read_text().splitlines()[i] for i in keep]


def test_run_on_the_embedded_model_parses_every_stage(tmp_path):
    out = tmp_path / "dpo.jsonl"
    # AgentHER's free relabeler: every one of its LM stages must parse on the real engine (the
    # structured relabeler's steps have their own test in test_structured.py).
    result = cli("run", str(EXAMPLES), "-m", SMALL, "-f", "dpo", "-o", str(out), "--no-cache",
                 "--max-attempts", "1", "--free-relabeler")  # fmt: skip
    results = check_run(out, result, records=3)
    assert "3 records" in result.stdout
    assert any(e["stage"] == "judge" for e in results), "no relabeling reached the judge"


def test_compile_then_run_and_evaluate_the_compiled_program(tmp_path):
    # One short recoverable run to learn from and one to score on keep this to minutes.
    (train := tmp_path / "train.jsonl").write_text(labeled_lines(1)[0] + "\n")
    (dev := tmp_path / "dev.jsonl").write_text("\n".join(labeled_lines(0, 2)) + "\n")
    program = tmp_path / "relabeler.json"
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    compiled = cli(
        "compile", "--trainset", str(train), "--devset", str(dev), "--optimizer", "bootstrap",
        "--budget", "1", "-m", SMALL, "-o", str(program), "--tracking-uri", store,
        "--free-relabeler", cwd=tmp_path,
    )  # fmt: skip
    assert compiled.returncode == 0, compiled.stderr
    assert "expected ≈" in compiled.stdout and "paired gain" in compiled.stdout
    meta = json.loads(program.with_name("relabeler.meta.json").read_text())
    assert meta["optimizer"] == "bootstrap" and meta["model"] == SMALL
    assert {"dev_fidelity_before", "dev_fidelity_after", "dev_gain"} <= set(meta["scores"])
    load_program(program)  # the signature hash matches this version

    # run --program on one of the example runs.
    (one := tmp_path / "one.json").write_text(json.dumps(json.loads(EXAMPLES.read_text())[1:2]))
    out = tmp_path / "dpo.jsonl"
    ran = cli("run", str(one), "-m", SMALL, "--program", str(program), "-f", "dpo",
              "-o", str(out), "--max-attempts", "1")  # fmt: skip
    check_run(out, ran, records=1)
    assert f"Using the compiled program {program}" in ran.stderr

    report_path = tmp_path / "report.json"
    evaluated = cli(
        "evaluate", "--dataset", str(dev), "-m", SMALL, "--program", str(program),
        "--tracking-uri", store, "--report", str(report_path), cwd=tmp_path,
    )  # fmt: skip
    assert evaluated.returncode == 0, evaluated.stderr
    summary = json.loads(report_path.read_text())["summary"]
    assert summary["examples"] == 2 and summary["errors"] == 0
    assert 0.0 <= summary["fidelity"] <= 1.0

    import mlflow

    mlflow.set_tracking_uri(store)
    runs = mlflow.search_runs(experiment_names=["agenther-dspy"], output_format="list")
    assert len(runs) == 2  # the compile and the evaluation
    (compile_run,) = [r for r in runs if "optimizer" in r.data.params]
    assert compile_run.data.params["optimizer"] == "bootstrap"
    assert "dev_fidelity_after" in compile_run.data.metrics
    client = mlflow.MlflowClient()
    artifacts = {a.path for a in client.list_artifacts(compile_run.info.run_id, "program")}
    assert {"program/relabeler.json", "program/relabeler.meta.json"} <= artifacts
    (evaluate_run,) = [r for r in runs if "optimizer" not in r.data.params]
    assert evaluate_run.data.params["model"] == SMALL and "fidelity" in evaluate_run.data.metrics
