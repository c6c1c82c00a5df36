"""`agenther-dspy evaluate` against a loopback server, tracked in a real MLflow store."""

from __future__ import annotations

import json
from pathlib import Path

import dspy
from conftest import AGENTHER
from dspy.utils import DummyLM
from test_cli import SECRET, cli

from agenther_dspy import HindsightRelabeler
from agenther_dspy.eval import evaluate, load_labeled, paired_difference
from agenther_dspy.eval.evaluate import EvalRow
from agenther_dspy.lm.stub_server import StubServer

MINI = Path("tests/data/labeled_mini.jsonl").resolve()


def test_evaluate_counts_calls_and_measures_acceptance():
    labeled = load_labeled(MINI)
    relabel = {"hindsight_prompt": "List the copper wire suppliers you found with prices.",
               "is_valid_replay": True, "confidence": 0.9}  # fmt: skip
    judge = {"is_valid": True, "confidence": 0.9}
    lm = DummyLM([relabel, judge, relabel, judge])
    report = evaluate(HindsightRelabeler(**AGENTHER, llm_extractor=False), labeled, lm=lm)
    summary = report.summary
    assert summary["examples"] == 3
    assert summary["acceptance_precision"] == 1.0 and summary["acceptance_recall"] == 1.0
    assert [row.lm_calls for row in report.rows] == [2, 2, 0]
    assert summary["lm_calls_per_trajectory"] == round(4 / 3, 2)
    assert summary["failure_type_accuracy"] == round(1 / 3, 4)
    assert 0 < summary["fidelity"] < 1
    assert summary["fidelity_ci95"][0] <= summary["fidelity"] <= summary["fidelity_ci95"][1]


def _rows(scores: dict[str, float]) -> list[EvalRow]:
    fixed = {"gold_recoverable": True, "gold_failure_type": "other", "status": "accepted",
             "stage": "judge", "reason": "", "failure_type": None, "hindsight_prompt": "",
             "confidence": 0.0, "components": {}, "feedback": "", "lm_calls": 0,
             "prompt_tokens": 0, "completion_tokens": 0, "seconds": 0.0}  # fmt: skip
    return [EvalRow(trajectory_id=name, score=score, **fixed) for name, score in scores.items()]


def test_paired_difference_pairs_examples_and_says_when_a_gain_is_beyond_noise():
    before = _rows({f"t{i}": i / 20 for i in range(20)})  # hard and easy examples
    lifted = _rows({f"t{i}": i / 20 + 0.1 for i in range(20)})
    gain = paired_difference(before, lifted)
    assert gain["gain"] == 0.1 and gain["beyond_noise"] and gain["better"] == 20
    # The same spread of examples with gains that cancel out is noise, not a change.
    mixed = _rows({f"t{i}": i / 20 + (0.1 if i % 2 else -0.1) for i in range(20)})
    assert not paired_difference(before, mixed)["beyond_noise"]
    # Examples only one side has are left out.
    assert paired_difference(before, _rows({"t3": 0.5, "other": 1.0}))["examples"] == 1


def test_evaluate_command_logs_a_tracked_run_without_secrets(tmp_path):
    store = tmp_path / "mlflow.db"
    with StubServer() as server:
        result = cli(
            "evaluate", "--dataset", str(MINI), "-m", "openai/stub", "--base-url", server.base_url,
            "--tracking-uri", f"sqlite:///{store}", "--report", str(tmp_path / "r.json"),
            "--free-relabeler", "--detector", "rules", env={"OPENAI_API_KEY": SECRET}, cwd=tmp_path,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["summary"]["examples"] == 3
    assert len(report["rows"]) == 3

    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{store}")
    runs = mlflow.search_runs(experiment_names=["agenther-dspy"], output_format="list")
    assert len(runs) == 1
    run = runs[0]
    assert run.data.params["dataset_sha256"] == load_labeled(MINI).sha256
    assert run.data.params["model"] == "openai/stub"
    assert run.data.params["base_url"] == server.base_url
    assert report["summary"]["errors"] == 0 and report["summary"]["accepted"] == 2
    assert run.data.metrics["examples"] == 3
    assert "fidelity" in run.data.metrics
    assert SECRET.encode() not in store.read_bytes()
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def test_evaluate_rejects_a_missing_dataset(tmp_path):
    result = cli("evaluate", "--dataset", str(tmp_path / "none.jsonl"), "--no-mlflow")
    assert result.returncode == 2 and "no such labeled file" in result.stderr


def test_dspy_context_is_restored():
    assert dspy.settings.lm is None


def test_scrub_removes_url_credentials_and_secret_values(monkeypatch):
    from agenther_dspy.redaction import scrub

    monkeypatch.setenv("MY_SERVICE_TOKEN", "tok-1234567890")
    assert scrub("http://user:pw@host:8000/v1") == "http://***@host:8000/v1"
    assert scrub({"a": ["failed with tok-1234567890"]}) == {"a": ["failed with ***"]}


def test_limit_draws_the_same_seeded_sample_in_file_order():
    from agenther_dspy.eval import sample_labeled
    from agenther_dspy.eval.dataset import resolve_dataset

    labeled = load_labeled(resolve_dataset(None, "dev"))
    ids = [e.trajectory["trajectory_id"] for e in labeled.examples]

    def pick(limit, seed):
        sample = sample_labeled(labeled, limit, seed)
        return [e.trajectory["trajectory_id"] for e in sample.examples]

    first = pick(5, seed=3)
    assert len(first) == len(set(first)) == 5
    assert first == pick(5, seed=3)  # deterministic
    assert first != pick(5, seed=4)
    assert first == [i for i in ids if i in first]  # file order
    assert pick(None, seed=3) == ids and pick(len(ids) + 5, seed=3) == ids


def test_evaluate_command_limit_evaluates_n_examples_with_progress(tmp_path):
    with StubServer() as server:
        result = cli(
            "evaluate", "--dataset", str(MINI), "-m", "openai/stub", "--base-url", server.base_url,
            "--limit", "2", "--seed", "1", "--no-mlflow", "--report", str(tmp_path / "r.json"),
            cwd=tmp_path,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["summary"]["examples"] == 2 and len(report["rows"]) == 2
    assert report["params"]["limit"] == 2 and report["params"]["limit_seed"] == 1
    wanted = [e.trajectory["trajectory_id"] for e in load_labeled(MINI).examples]
    chosen = [row["trajectory_id"] for row in report["rows"]]
    assert chosen == [i for i in wanted if i in chosen]


def test_progress_off_a_terminal_logs_done_counts_rate_and_eta():
    import io
    from types import SimpleNamespace

    from rich.console import Console

    from agenther_dspy.runner import BatchProgress

    out = io.StringIO()
    with BatchProgress(Console(file=out), total=4, log_every=0, label="evaluating") as progress:
        progress.update(SimpleNamespace(status="accepted"))
        progress.update(SimpleNamespace(status="rejected"))
        progress.update()  # an LM call during compile: counted, no status
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("evaluating: 1/4 (1 accepted), ")
    assert lines[1].startswith("evaluating: 2/4 (1 accepted, 1 rejected), ")
    assert "ETA" in lines[1] and lines[2].startswith("evaluating: 3/4")
