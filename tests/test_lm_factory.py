"""Building LMs: keys only from the environment; answers that do not parse cost an attempt."""

from __future__ import annotations

import dspy
import pytest
from conftest import AGENTHER

from agenther_dspy import HindsightRelabeler
from agenther_dspy.lm import LMConfigError, build_lm
from agenther_dspy.lm.factory import NO_KEY, resolve_api_key
from agenther_dspy.lm.stub_server import StubServer, default_responder


def test_key_comes_from_the_named_variable(monkeypatch):
    monkeypatch.setenv("MY_KEY", "k-123")
    assert resolve_api_key("openai/gpt-4o-mini", None, "MY_KEY") == "k-123"
    monkeypatch.delenv("MY_KEY")
    with pytest.raises(LMConfigError, match="MY_KEY: that environment variable is not set"):
        resolve_api_key("openai/gpt-4o-mini", None, "MY_KEY")


def test_default_key_variable_is_the_providers(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "a-1")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert resolve_api_key("anthropic/claude-x", None, None) == "a-1"
    assert resolve_api_key("openai/gpt-4o-mini", None, None) is None
    # A self-hosted OpenAI-compatible server needs no key, but the client insists on one.
    assert resolve_api_key("openai/my-model", "http://127.0.0.1:8000/v1", None) == NO_KEY


def test_saved_lm_state_carries_no_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-should-not-be-saved-0000000000")
    lm = build_lm("openai/gpt-4o-mini")
    assert "sk-should-not-be-saved" not in repr(lm.dump_state())


def test_bad_specs_are_refused():
    with pytest.raises(LMConfigError):
        build_lm("  ")
    with pytest.raises(LMConfigError, match="no model id"):
        build_lm("openai/")


def test_unparseable_relabel_answer_costs_one_attempt(copper):
    seen = {"relabel": 0}

    def responder(fields, messages):
        values = default_responder(fields, messages)
        if "hindsight_prompt" in fields:
            seen["relabel"] += 1
            if seen["relabel"] <= 2:  # ChatAdapter, then its JSONAdapter fallback
                return {"hindsight_prompt": "half an answer"}
        return values

    with StubServer(responder=responder) as server:
        lm = build_lm("openai/stub", base_url=server.base_url, cache=False)
        with dspy.context(lm=lm):
            prediction = HindsightRelabeler(**AGENTHER, llm_extractor=False)(trajectory=copper)
    assert prediction.attempts[0]["outcome"].startswith("unparseable answer")
    assert prediction.attempts[1]["outcome"] == "accepted"
    assert prediction.status == "accepted"


def test_remembered_prices_answer_as_dspy_does():
    """The remembered price lookup gives DSPy's own answers, a fresh copy each time."""
    from dspy.clients import costs

    from agenther_dspy.lm.factory import remember_prices

    remember_prices()
    original = costs.model_info.original
    for provider, model in [("openai", "gpt-4o-mini"), ("openai", "stub"), ("vllm", "x/y")]:
        first = costs.model_info(provider, model)
        assert first == original(provider, model)
        first["changed"] = True
        assert costs.model_info(provider, model) == original(provider, model)
