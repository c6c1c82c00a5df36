"""`agenther-dspy review`, opened in headless Chromium; per-run rows in MLflow; where `run` and
`evaluate` say the page and the MLflow run are.

The pages are checked as a browser renders them: Chromium (Debian's `chromium` package,
installed by `.ci/run`) runs the page's script and `--dump-dom` prints the resulting DOM.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import write_jsonl

from agenther_dspy.eval.evaluate import EvalReport, EvalRow, summarize
from agenther_dspy.lm.stub_server import StubServer
from agenther_dspy.review import cut, default_review_path, embed_json, write_review

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_RUNS = ROOT / "examples" / "agenther_runs.jsonl"
MINI = ROOT / "tests" / "data" / "labeled_mini.jsonl"
SCRIPT_MARKER = "<script>document.body.setAttribute('data-pwned','1')</script>"
IMG_MARKER = "<img src=x onerror=\"document.body.setAttribute('data-img','1')\">"
CLOSER = "</script><script>document.title='pwned'</script>"


def cli(*args: str, cwd: Path | None = None, env: dict | None = None):
    return subprocess.run(
        [sys.executable, "-m", "agenther_dspy", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "250", **(env or {})},
        cwd=cwd,
        timeout=300,
    )


class _Text(HTMLParser):
    """The text a reader sees: every text node outside <script> and <style>, unescaped."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        self._skip += tag in ("script", "style")

    def handle_endtag(self, tag):
        self._skip -= tag in ("script", "style")

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def visible_text(dom: str) -> str:
    parser = _Text()
    parser.feed(dom)
    return "".join(parser.parts)


def load_table(store: str, run_id: str, artifact_file: str):
    """A table logged with `mlflow.log_table`, as MLflow's own client reads it back."""
    from mlflow import MlflowClient

    client = MlflowClient(store)
    experiment = client.get_run(run_id).info.experiment_id
    return client.load_table(experiment, artifact_file, run_ids=[run_id])


def dump_dom(page: Path, tmp_path: Path) -> str:
    """The DOM after the page's script ran, as headless Chromium serializes it."""
    chromium = shutil.which("chromium")
    assert chromium, "chromium is not installed: apt-get install -y chromium (.ci/run does)"
    result = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", f"--user-data-dir={tmp_path / 'chromium-profile'}",
         "--dump-dom", page.resolve().as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


# ---------------------------------------------------------------------------- a batch


def _run(number: int, text: str = "") -> dict:
    return {
        "trajectory_id": f"run-{number:05d}",
        "original_prompt": f"Goal {number}: find the cheapest flight to Oslo {text}",
        "steps": [
            {
                "thought": f"look it up {text}",
                "action_name": "search_flights",
                "action_input": {"to": "OSL"},
                "observation": f"HAT{number:03d} costs $120 {text}" + " padding" * 200,
            }
        ],
        "final_answer": "I could not book it.",
        "failure_reason": f"the flight was never booked {text}",
    }


def _result(number: int, status: str, inputs: Path, request: str = "", **extra) -> dict:
    attempt = {
        "attempt": 1,
        "relabel": {
            "hindsight_prompt": request or f"request {number}",
            "is_valid_replay": True,
            "rationale": "the run found the price",
            "confidence": 0.9,
            "temperature": 0.3,
        },
        "verdict": {"is_valid": status == "accepted", "confidence": 0.8, "rejection_reason": ""},
        "outcome": "accepted" if status == "accepted" else "second judge rejected",
    }
    return {
        "key": f"run-{number:05d}",
        "trajectory_id": f"run-{number:05d}",
        "status": status,
        "stage": "judge",
        "reason": f"reason {number}",
        "file": str(inputs),
        "line": number,
        "confidence": 0.85,
        "relabel_confidence": 0.9,
        "judge_confidence": 0.8,
        "single_judge": False,
        "severity_weight": 0.4,
        "failure_type": "incomplete",
        "attempts": 1,
        "hindsight_prompt": request if status == "accepted" else "",
        "attempt_log": [attempt],
        **extra,
    }


def hostile_batch(tmp_path: Path) -> Path:
    hostile = f"{SCRIPT_MARKER} {IMG_MARKER} {CLOSER} & more"
    inputs = write_jsonl(tmp_path / "runs.jsonl", [_run(i, hostile) for i in range(1, 6)])
    results = [
        _result(1, "accepted", inputs, request=f"Find the fare of HAT001 {hostile}"),
        _result(2, "accepted", inputs, request="Find the fare of HAT002", single_judge=True),
        _result(3, "rejected", inputs, reason=f"judge said no {hostile}"),
        _result(4, "skipped", inputs, failure_type="tool_error", attempt_log=[]),
        _result(5, "error", inputs, attempt_log=[]),
        {"key": "@line:9", "trajectory_id": "", "status": "invalid", "stage": "input",
         "reason": "steps: Field required", "file": str(inputs), "line": 9},
    ]  # fmt: skip
    return write_jsonl(tmp_path / "out.results.jsonl", results)


def test_the_embedded_data_cannot_close_its_script_block():
    data = {"text": f"{SCRIPT_MARKER}{IMG_MARKER}{CLOSER}&amp;\u2028"}
    embedded = embed_json(data)
    assert not set("<>&") & set(embedded)
    assert json.loads(embedded) == data


def test_long_texts_are_cut_in_the_middle_with_the_cut_counted():
    assert cut("short", 10) == "short"
    head, removed, tail = cut("a" * 50 + "b" * 50, 30)
    assert len(head) + len(tail) == 30 and removed == 70
    assert head.startswith("a") and tail.endswith("b")
    assert default_review_path("outputs/dpo.results.jsonl").name == "dpo.review.html"
    assert default_review_path("outputs/eval.json").name == "eval.review.html"


def test_batch_page_shows_the_runs_and_leaves_hostile_log_text_inert(tmp_path):
    results = hostile_batch(tmp_path)
    made = cli("review", str(results), "-o", str(tmp_path / "page.html"))
    assert made.returncode == 0, made.stderr
    page = tmp_path / "page.html"
    source = page.read_text()
    assert "http://" not in source and "https://" not in source  # nothing to fetch
    assert "innerHTML" not in source

    dom = dump_dom(page, tmp_path)
    text = visible_text(dom)
    # The hostile strings are on the page as text, and none of them ran or became markup.
    assert SCRIPT_MARKER in text and IMG_MARKER in text and CLOSER in text
    assert 'data-pwned="1"' not in dom and 'data-img="1"' not in dom
    assert "<img" not in dom and "pwned</title>" not in dom
    # Counts, filters, and per run: goal, failure, request, steps, attempts and verdicts.
    assert "Batch review" in text
    for label in ("accepted", "of them on a single judge", "rejected", "skipped", "error"):
        assert label in text
    assert "accepted on a single judge" in text and "tool_error" in text  # filter options
    assert "Find the fare of HAT001" in text and "Find the fare of HAT002" in text
    assert "accepted · single judge" in text
    assert "Goal 3: find the cheapest flight" in text and "the flight was never booked" in text
    assert "search_flights" in text and "characters cut" in text  # the observation was cut
    assert "relabeler: valid, confidence" in text and "yes, 0.80" in text
    assert "steps: Field required" in text
    assert dom.count('class="run ') == 6


def test_a_10000_record_batch_opens_at_its_first_page(tmp_path):
    inputs = write_jsonl(tmp_path / "runs.jsonl", [_run(i) for i in range(1, 10_001)])
    statuses = ("accepted", "rejected", "skipped")
    results = write_jsonl(
        tmp_path / "big.results.jsonl",
        [
            _result(i, statuses[i % 3], inputs, request=f"Find the fare of HAT{i:05d}")
            for i in range(1, 10_001)
        ],
    )
    started = time.perf_counter()
    page = write_review(results)
    build_seconds = time.perf_counter() - started
    size_mb = page.stat().st_size / 1e6
    started = time.perf_counter()
    dom = dump_dom(page, tmp_path)
    open_seconds = time.perf_counter() - started
    text = visible_text(dom)
    assert "1–50 of 10000 (page 1 of 200)" in text
    assert dom.count('class="run ') == 50  # one page in the DOM, not 10,000 runs
    first_page = [i for i in range(1, 51)]
    for i in first_page:
        if statuses[i % 3] == "accepted":
            assert f"Find the fare of HAT{i:05d}" in text
    assert "Find the fare of HAT00051" not in text
    assert build_seconds < 60 and open_seconds < 60 and size_mb < 40, (
        build_seconds,
        open_seconds,
        size_mb,
    )


# ---------------------------------------------------------------------------- an evaluation


def _eval_row(example: dict, status: str, score: float, feedback: str) -> EvalRow:
    return EvalRow(
        trajectory_id=example["trajectory_id"],
        gold_recoverable=example["gold"]["recoverable"],
        gold_failure_type=example["gold"]["failure_type"],
        status=status,
        stage="judge",
        reason="accepted by relabeler and second judge",
        failure_type="incomplete",
        hindsight_prompt=f"A request for {example['trajectory_id']}",
        confidence=0.9,
        score=score,
        components={"decision": 1.0, "grounding": 0.5},
        feedback=feedback,
        lm_calls=3,
        prompt_tokens=100,
        completion_tokens=20,
        seconds=1.0,
        gold=example["gold"],
    )


def test_evaluation_page_puts_gold_and_metric_feedback_side_by_side(tmp_path):
    examples = [json.loads(line) for line in MINI.read_text().splitlines()]
    rows = [
        _eval_row(examples[0], "accepted", 0.7, f"Anchoring: mention MicroMetals {IMG_MARKER}"),
        _eval_row(examples[1], "rejected", 0.2, "Decision: the run was recoverable"),
    ]
    report = EvalReport(rows, summarize(rows))
    params = {"dataset": str(MINI), "model": "local"}
    path = tmp_path / "evaluation.json"
    path.write_text(json.dumps({"params": params, **report.to_json()}))
    page = write_review(path)
    assert page == tmp_path / "evaluation.review.html"
    dom = dump_dom(page, tmp_path)
    text = visible_text(dom)
    assert "Evaluation review" in text
    summary = report.summary
    ci = summary["fidelity_ci95"]
    assert f"{summary['fidelity']:.3f}" in text
    assert f"fidelity [95% interval {ci[0]:.3f}, {ci[1]:.3f}]" in text
    assert "acceptance precision" in text and "acceptance recall" in text
    assert "Gold annotation" in text and "Metric: score 0.700" in text
    assert examples[0]["gold"]["reference_hindsight_prompts"][0] in text
    assert examples[0]["gold"]["notes"] in text
    assert IMG_MARKER in text and "<img" not in dom
    assert examples[0]["original_prompt"][:60] in text  # the run, from the labeled set


def test_review_refuses_a_file_that_is_no_results_file(tmp_path):
    (bad := tmp_path / "notes.txt").write_text("hello\n")
    result = cli("review", str(bad))
    assert result.returncode == 2
    assert "neither a results file" in result.stderr


# ---------------------------------------------------------------------------- run and evaluate


@pytest.fixture
def server():
    with StubServer() as stub:
        yield stub


def test_run_and_evaluate_log_per_run_rows_to_mlflow_and_say_where(tmp_path, server):
    import mlflow

    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    stub = ["-m", "openai/stub", "--base-url", server.base_url, "--tracking-uri", store]
    stub += ["--free-relabeler", "--detector", "rules"]  # AgentHER's, which the stub drives
    env = {"OPENAI_API_KEY": "sk-stub-key-0123456789"}
    out = tmp_path / "dpo.jsonl"
    ran = cli("run", str(EXAMPLE_RUNS), "-o", str(out), "-f", "dpo", *stub, env=env)
    assert ran.returncode == 0, ran.stderr
    page = tmp_path / "dpo.review.html"
    assert f"Review page: {page}" in ran.stdout and page.is_file()
    assert "mlflow ui --backend-store-uri sqlite:///" in ran.stdout
    run_id = ran.stdout.split("MLflow run ")[-1].split(":")[0]

    evaluated = cli("evaluate", "--dataset", str(MINI), "--report", str(tmp_path / "e.json"),
                    *stub, env=env)  # fmt: skip
    assert evaluated.returncode == 0, evaluated.stderr
    assert f"Review page: {tmp_path / 'e.review.html'}" in evaluated.stdout
    eval_id = evaluated.stdout.split("MLflow run ")[-1].split(":")[0]

    mlflow.set_tracking_uri(store)
    results = load_table(store, run_id, "results_table.json")
    assert len(results) == 3 and set(results["status"]) <= {"accepted", "rejected", "skipped"}
    accepted = results[results["status"] == "accepted"]
    assert len(accepted) and all(accepted["hindsight_prompt"].str.len() > 0)
    assert mlflow.get_run(run_id).data.params["results_table"] == "first 3 of 3 records"
    rows = load_table(store, eval_id, "evaluation_table.json")
    assert len(rows) == 3
    assert {"hindsight_prompt", "status", "confidence", "score", "feedback"} <= set(rows.columns)
    assert "component_grounding" in rows.columns


def test_the_results_table_of_a_huge_batch_is_bounded(tmp_path):
    import mlflow

    from agenther_dspy.tracking import log_results_table, tracked_run

    inputs = tmp_path / "runs.jsonl"
    results = write_jsonl(
        tmp_path / "r.results.jsonl", [_result(i, "accepted", inputs) for i in range(1, 8)]
    )
    store = f"sqlite:///{tmp_path / 'm.db'}"
    with tracked_run("run", tracking_uri=store) as tracking:
        log_results_table(tracking, results, limit=5)
    table = load_table(store, tracking.run_id, "results_table.json")
    assert list(table["trajectory_id"]) == [f"run-{i:05d}" for i in range(1, 6)]
    assert mlflow.get_run(tracking.run_id).data.params["results_table"] == "first 5 of 7 records"


# ---------------------------------------------------------------------------- the real engine


@pytest.mark.slow
def test_run_on_the_embedded_model_then_review_its_results(tmp_path):
    (one := tmp_path / "one.jsonl").write_text(EXAMPLE_RUNS.read_text().splitlines()[1] + "\n")
    out = tmp_path / "dpo.jsonl"
    ran = cli("run", str(one), "-m", "local:smollm2-135m", "-f", "dpo", "-o", str(out),
              "--no-cache", "--max-attempts", "1", "--no-mlflow")  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    results = tmp_path / "dpo.results.jsonl"
    result = json.loads(results.read_text())
    page = tmp_path / "page.html"
    made = cli("review", str(results), "-o", str(page))
    assert made.returncode == 0, made.stderr
    text = visible_text(dump_dom(page, tmp_path))
    assert result["trajectory_id"] in text
    goal = json.loads(one.read_text())["original_prompt"]
    assert goal[:60] in text
    if result["status"] == "accepted":
        assert result["hindsight_prompt"] in text
    if result["attempt_log"]:
        assert "relabeler: valid, confidence" in text
