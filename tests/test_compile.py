"""Compiling with each optimizer on a tiny set (control flow, budgets, artifacts), and the
compiled program as an MLflow pyfunc model."""

from __future__ import annotations

import json
from pathlib import Path

import dspy
import pandas as pd
import pytest
from conftest import AGENTHER, EXAMPLES

from agenther_dspy import HindsightRelabeler
from agenther_dspy.eval import load_labeled
from agenther_dspy.eval.dataset import shipped_dir
from agenther_dspy.lm import build_lm
from agenther_dspy.lm.stub_server import StubServer, default_responder
from agenther_dspy.modules.render import render_trajectory
from agenther_dspy.modules.structured import NEAREST_SHOWN, nearest_demos
from agenther_dspy.optimizers import load_program, save_program
from agenther_dspy.optimizers.compile import (
    OPTIMIZERS,
    compile_program,
    gold_demos,
    gold_judge_demos,
    keep_valid_relabel_demos,
    plan,
    shorter_half,
)
from agenther_dspy.schema import Trajectory


@pytest.fixture(scope="module")
def tiny():
    train = load_labeled(shipped_dir() / "train.jsonl").examples
    dev = load_labeled(shipped_dir() / "dev.jsonl").examples

    def pick(rows):
        recoverable = [r for r in rows if r.gold["recoverable"]]
        return recoverable[:2] + [r for r in rows if not r.gold["recoverable"]][:1]

    return pick(train), pick(dev)


@pytest.fixture(scope="module")
def stub_lm():
    with StubServer() as server:
        yield build_lm("openai/stub", base_url=server.base_url, cache=False)


def test_budgets_are_explicit_and_printed_in_lm_calls():
    program = HindsightRelabeler(**AGENTHER)
    assert plan("labeled", 2, program, 24, 18).expected_lm_calls == 2 * 18 * 3
    bootstrap = plan("bootstrap", None, program, 24, 18)
    assert bootstrap.budget == OPTIMIZERS["bootstrap"].default_budget
    assert bootstrap.expected_lm_calls == 24 * 3 + 2 * 18 * 3
    assert (
        plan("gepa", 30, program, 4, 4).expected_lm_calls
        < plan("gepa", 60, program, 4, 4).expected_lm_calls
    )
    with pytest.raises(ValueError, match="unknown optimizer"):
        plan("magic", 1, program, 1, 1)
    with pytest.raises(ValueError, match="at least 1"):
        plan("bootstrap", 0, program, 1, 1)


def test_gold_demos_fit_every_stage_signature(tiny):
    program = HindsightRelabeler(relabeler="free", detector="lm")
    demos = gold_demos(tiny[0][0])
    for name, predictor in program.named_predictors():
        fields = set(predictor.signature.fields)
        for demo in demos[name]:
            assert set(demo.keys()) == fields, name


def test_labeled_optimizer_writes_demos_without_lm_calls(tiny):
    train, dev = tiny
    compiled = compile_program(
        HindsightRelabeler(**AGENTHER), train, dev, optimizer="labeled", budget=2
    )
    for _, predictor in compiled.named_predictors():
        assert 1 <= len(predictor.demos) <= 2
    # The relabeler only sees runs the gate passed: its demos are all recoverable runs ...
    assert {d.is_valid_replay for d in compiled.relabeler.relabel.demos} == {True}
    # ... while the judge is shown both verdicts.
    assert {d.is_valid for d in compiled.relabeler.judge.demos} == {True, False}


def test_judge_demos_show_a_satisfied_request_and_a_run_with_nothing_usable():
    train = load_labeled(shipped_dir() / "train.jsonl").examples
    satisfied, failed = gold_judge_demos(train, seed=1)
    by_trajectory = {render_trajectory(Trajectory.model_validate(e.trajectory)): e for e in train}
    good, bad = by_trajectory[satisfied.trajectory], by_trajectory[failed.trajectory]
    assert satisfied.is_valid and good.gold["recoverable"]
    assert satisfied.hindsight_prompt in good.gold["reference_hindsight_prompts"]
    assert not failed.is_valid and not bad.gold["recoverable"]
    assert failed.hindsight_prompt == bad.trajectory["original_prompt"]


def test_labeled_search_keeps_demos_only_when_dev_says_they_help(tiny, stub_lm):
    train, dev = tiny
    program = HindsightRelabeler(**AGENTHER)
    scored = []

    def demos_help(example, pred, trace=None, pred_name=None, pred_trace=None):
        # The uncompiled program is scored first (two calls per dev example: with and without
        # the single-judge fallback), then the candidates.
        scored.append(example)
        return dspy.Prediction(score=0.0 if len(scored) <= 2 * len(dev) else 1.0, feedback="")

    def indifferent(example, pred, trace=None, pred_name=None, pred_trace=None):
        return dspy.Prediction(score=0.5, feedback="")

    with dspy.context(lm=stub_lm):
        helped = compile_program(
            program, train, dev, optimizer="labeled-search", budget=2, metric=demos_help
        )
        tied = compile_program(
            program, train, dev, optimizer="labeled-search", budget=2, metric=indifferent
        )
    assert len(scored) == 2 * 3 * len(dev)  # the uncompiled program and two candidates
    # The first candidate wins the tie among candidates: gold demos for the judge only.
    assert [n for n, p in helped.named_predictors() if p.demos] == ["relabeler.judge"]
    assert helped.relabeler.judge.demos == gold_judge_demos(train, seed=1)
    assert not any(predictor.demos for _, predictor in tied.named_predictors())
    assert tied is not program  # a copy: compiling never changes the caller's program
    assert helped.single_judge_fallback and tied.single_judge_fallback  # ties keep it


def test_labeled_search_drops_the_fallback_only_when_dev_prefers_the_judge_required(tiny, tmp_path):
    def judge_rejects(fields, messages):
        values = default_responder(fields, messages)
        if "is_valid" in values:  # the second judge's answer
            values["is_valid"] = False
        return values

    train, dev = tiny

    def rejections_help(example, pred, trace=None, pred_name=None, pred_trace=None):
        return dspy.Prediction(score=float(pred.status == "rejected"), feedback="")

    def acceptances_help(example, pred, trace=None, pred_name=None, pred_trace=None):
        return dspy.Prediction(score=float(pred.status == "accepted"), feedback="")

    with StubServer(responder=judge_rejects) as server:
        lm = build_lm("openai/stub", base_url=server.base_url, cache=False)
        with dspy.context(lm=lm):
            compiled = {
                metric.__name__: compile_program(
                    HindsightRelabeler(**AGENTHER),
                    train,
                    dev,
                    optimizer="labeled-search",
                    budget=1,
                    metric=metric,
                )
                for metric in (rejections_help, acceptances_help)
            }
            # The judge rejects every attempt, so only the fallback accepts these runs.
            assert compiled["acceptances_help"](trajectory=dev[0].trajectory).single_judge
    assert not compiled["rejections_help"].single_judge_fallback
    assert compiled["acceptances_help"].single_judge_fallback
    # The rule travels with the saved program, whatever the compile started from.
    save_program(
        compiled["rejections_help"], tmp_path / "required.json", single_judge_fallback=True
    )
    assert not load_program(tmp_path / "required.json").single_judge_fallback


@pytest.mark.parametrize(
    "optimizer", ["labeled-search", "bootstrap", "random-search", "mipro", "simba", "gepa"]
)
def test_each_optimizer_runs_within_its_budget(tiny, stub_lm, optimizer):
    train, dev = tiny
    program = HindsightRelabeler(**AGENTHER)
    budget = {"random-search": 1, "mipro": 2, "simba": 1, "gepa": 6}.get(optimizer, 1)
    expected = plan(optimizer, budget, program, len(train), len(dev)).expected_lm_calls
    with dspy.context(lm=stub_lm), dspy.track_usage() as usage:
        compiled = compile_program(
            program, train, dev, optimizer=optimizer, budget=budget,
            prompt_lm=stub_lm, reflection_lm=stub_lm,
        )  # fmt: skip
    calls = sum(len(v) for v in usage.usage_data.values())
    assert isinstance(compiled, HindsightRelabeler)
    assert [n for n, _ in compiled.named_predictors()] == [n for n, _ in program.named_predictors()]
    assert 0 < calls <= expected, (calls, expected)


def test_gepa_without_reflection_model_is_refused(tiny):
    with pytest.raises(ValueError, match="reflection model"):
        compile_program(HindsightRelabeler(**AGENTHER), *tiny, optimizer="gepa", budget=4)


def test_pyfunc_model_loads_and_predicts_a_dataframe(tmp_path, tiny, monkeypatch):
    import mlflow

    from agenther_dspy.programs import open_program
    from agenther_dspy.tracking import log_program_model

    compiled = compile_program(HindsightRelabeler(**AGENTHER), *tiny, optimizer="labeled", budget=1)
    path = tmp_path / "relabeler.json"
    save_program(compiled, path)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-never-in-the-model-000000000")
    monkeypatch.chdir(tmp_path)  # the default experiment keeps artifacts in ./mlruns
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    with StubServer() as server, mlflow.start_run():
        info = log_program_model(
            path, model_config={"model": "openai/stub", "base_url": server.base_url},
            registered_model_name="relabeler-test",
        )  # fmt: skip
        model = mlflow.pyfunc.load_model("models:/relabeler-test/1")
        frame = pd.DataFrame(json.loads(EXAMPLES.read_text())[:2])
        out = model.predict(frame)
        loaded = open_program(
            "models:/relabeler-test/1", tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}"
        )
    assert list(out["trajectory_id"]) == ["traj_001", "traj_002"]
    assert set(out["status"]) <= {"accepted", "rejected", "skipped"}
    assert loaded.dump_state() == compiled.dump_state()
    assert info.registered_model_version == 1
    for file in tmp_path.rglob("*"):
        if file.is_file():
            assert b"sk-never-in-the-model" not in file.read_bytes(), file


def test_bootstrap_learns_from_the_shorter_runs_and_keeps_only_valid_relabels(tiny):
    train, _ = tiny
    short = shorter_half(train, seed=0)
    assert len(short) == (len(train) + 1) // 2

    def length(e):
        return len(render_trajectory(Trajectory.model_validate(e.trajectory)))

    assert sorted(map(length, short)) == sorted(map(length, train))[: len(short)]
    program = HindsightRelabeler(**AGENTHER)
    valid = dspy.Example(hindsight_prompt="Find X", is_valid_replay=True)
    given_up = dspy.Example(hindsight_prompt="none", is_valid_replay=False)
    program.relabeler.relabel.demos = [given_up, valid]
    assert keep_valid_relabel_demos(program).relabeler.relabel.demos == [valid]


def test_compile_command_tracks_the_run_traces_and_model_without_secrets(tmp_path):
    import mlflow
    from test_cli import SECRET, cli

    mini = str(Path(__file__).parent / "data" / "labeled_mini.jsonl")
    store = tmp_path / "mlflow.db"
    with StubServer() as server:
        result = cli(
            "compile", "--trainset", mini, "--devset", mini, "--optimizer", "bootstrap",
            "--budget", "1", "-m", "openai/stub", "--base-url", server.base_url,
            "-o", str(tmp_path / "relabeler.json"), "--tracking-uri", f"sqlite:///{store}",
            "--traces", env={"OPENAI_API_KEY": SECRET}, cwd=tmp_path,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    mlflow.set_tracking_uri(f"sqlite:///{store}")
    (run,) = mlflow.search_runs(experiment_names=["agenther-dspy"], output_format="list")
    assert run.data.params["traces"] == "True" and "dev_fidelity_after" in run.data.metrics
    traces = mlflow.search_traces(
        locations=[run.info.experiment_id], run_id=run.info.run_id, return_type="list"
    )
    assert traces, "the compile's DSPy calls were not traced"
    (version,) = mlflow.MlflowClient().search_model_versions("name='agenther-dspy-relabeler'")
    assert version.run_id == run.info.run_id
    assert SECRET not in result.stdout + result.stderr
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def test_nearest_pools_checked_reference_requests_and_shows_each_run_the_closest(tmp_path):
    train = load_labeled(shipped_dir() / "train.jsonl").examples
    compiled = compile_program(
        HindsightRelabeler(), train, train[:1], optimizer="nearest", budget=2
    )
    pool = compiled.structured.phrase_request.demos
    references = {r for e in train for r in e.gold["reference_hindsight_prompts"]}
    assert len(pool) > NEAREST_SHOWN and {d.request for d in pool} <= references
    # Every demo is a request the program itself would accept, for a draft of its own run.
    assert all(d.draft and d.feedback == "" for d in pool)
    # The pool survives a save and a load, and each run sees the demos nearest its draft.
    save_program(compiled, tmp_path / "p.json", optimizer="nearest")
    loaded = load_program(tmp_path / "p.json")
    kept = loaded.structured.phrase_request.demos
    assert [d["request"] for d in kept] == [d.request for d in pool]
    cancel = "I'm Sophia Silva, user id sophia_silva_7557. Please cancel reservation ABC123."
    shown = nearest_demos(kept, cancel)
    assert len(shown) == NEAREST_SHOWN and "cancel" in shown[-1]["draft"]


def test_nearest_needs_the_structured_relabeler(tiny):
    with pytest.raises(ValueError, match="structured"):
        compile_program(HindsightRelabeler(**AGENTHER), *tiny, optimizer="nearest", budget=1)
