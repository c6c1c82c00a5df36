"""Calibrated verdicts: P(true) from token log probabilities, on the embedded engine, an
OpenAI-compatible server (the stub) and an LM that returns none (the verbalized fallback)."""

from __future__ import annotations

import math

import dspy
import pytest
from dspy.utils import DummyLM

from agenther_dspy.lm.factory import build_lm
from agenther_dspy.lm.stub_server import StubServer
from agenther_dspy.modules.calibration import p_true
from agenther_dspy.modules.detector import LMFailureDetector
from agenther_dspy.modules.relabel import RelabelAndVerify
from agenther_dspy.schema import Trajectory

RUN = Trajectory(
    trajectory_id="t1",
    original_prompt="Cancel my reservation",
    steps=[{"action_name": "get_user_details", "observation": "membership: gold"}],
    final_answer="You are a gold member.",
    failure_reason="nothing was cancelled",
)


def _token(text: str, top: dict[str, float] | None = None) -> dict:
    alternatives = top or {text: 1.0}
    return {
        "token": text,
        "logprob": math.log(alternatives.get(text, 1.0)),
        "top_logprobs": [{"token": t, "logprob": math.log(p)} for t, p in alternatives.items()],
    }


def _answer(value: str, top: dict[str, float]) -> dict:
    marks = ["[[", " ##", " is_valid", " ##", " ]]", "\n"]
    return {"content": [*map(_token, marks), _token(value, top), _token("\n")]}


def test_p_true_normalises_the_two_answers_at_the_fields_value():
    answer = _answer("True", {"True": 0.6, "False": 0.2, "The": 0.1})
    assert p_true(answer, "is_valid") == pytest.approx(0.75)
    assert p_true(_answer("False", {"false": 0.3, "False": 0.3, "True": 0.2}), "is_valid") == (
        pytest.approx(0.25)
    )


def test_p_true_bounds_an_answer_missing_from_the_alternatives_and_gives_up_without_one():
    alone = p_true(_answer("True", {"True": 0.9, "Yes": 0.01}), "is_valid")
    assert alone == pytest.approx(0.9 / 0.91)
    assert p_true(_answer("Maybe", {"Maybe": 0.9}), "is_valid") is None
    assert p_true(_answer("True", {"True": 0.9}), "confidence") is None  # no such field
    assert p_true(None, "is_valid") is None and p_true({"content": []}, "is_valid") is None


def test_an_openai_compatible_server_gives_the_judge_its_probability(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "stub-key")
    with StubServer(p_true=0.2) as server:
        lm = build_lm("openai/stub", base_url=server.base_url, cache=False)
        with dspy.context(lm=lm):
            verdict = RelabelAndVerify().verify("the run", "a request")
        assert server.requests[-1]["logprobs"] is True
    assert verdict.is_valid and verdict.confidence_source == "p_true"
    assert verdict.confidence == pytest.approx(0.2)  # not the 0.9 the stub wrote


def test_the_lm_detector_reads_its_probability_of_recoverable(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "stub-key")
    with StubServer(p_true=0.3) as server:
        lm = build_lm("openai/stub", base_url=server.base_url, cache=False)
        with dspy.context(lm=lm):
            analysis = LMFailureDetector()(trajectory=RUN, rendered="the run").analysis
        assert server.requests[-1]["logprobs"] is True
    assert analysis.recoverable and analysis.recoverable_p == pytest.approx(0.3)


def test_without_log_probabilities_the_detector_has_no_probability():
    answer = {"failure_type": "incomplete", "severity_weight": 0.5, "recoverable": True}
    with dspy.context(lm=DummyLM([answer])):
        analysis = LMFailureDetector()(trajectory=RUN, rendered="the run").analysis
    assert analysis.recoverable and analysis.recoverable_p is None


def test_without_log_probabilities_the_judge_keeps_its_written_number():
    with dspy.context(lm=DummyLM([{"is_valid": True, "confidence": 0.85}])):
        verdict = RelabelAndVerify().verify("the run", "a request")
    assert verdict.confidence_source == "verbalized" and verdict.confidence == 0.85


@pytest.mark.slow
def test_the_embedded_engine_returns_the_judges_probability():
    from agenther_dspy.modules.adapter import default_adapter
    from agenther_dspy.settings import LMSettings

    lm = LMSettings(model="local:smollm2-135m", cache=False).build()
    with dspy.context(lm=lm, adapter=default_adapter()):
        verdict = RelabelAndVerify().verify(
            "1. get_user_details(user_id=ana_5) -> membership: gold\nfinal answer: You are gold.",
            "I'm ana_5. What is my membership level?",
        )
    assert verdict.confidence_source == "p_true" and 0.0 < verdict.confidence < 1.0
