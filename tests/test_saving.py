"""Saved programs: JSON state plus sidecar; a signature mismatch is refused."""

from __future__ import annotations

import json

import dspy
import pytest
from conftest import AGENTHER

from agenther_dspy import HindsightRelabeler
from agenther_dspy.lm.models import DEFAULT_MODEL
from agenther_dspy.optimizers import ProgramError, load_program, save_program, shipped_program
from agenther_dspy.optimizers.saving import sidecar_path
from agenther_dspy.programs import choose_program
from agenther_dspy.settings import LMSettings, ProgramSettings


def choose(source, *, model, uncompiled, tracking_uri=None, **program):
    """The program `run` and `evaluate` would run, given their flags."""
    return choose_program(
        source, ProgramSettings(**program), LMSettings(model=model),
        uncompiled=uncompiled, tracking_uri=tracking_uri,
    )  # fmt: skip


def compiled_like() -> HindsightRelabeler:
    program = HindsightRelabeler(relabeler="free", detector="lm")
    program.relabeler.relabel.signature = program.relabeler.relabel.signature.with_instructions(
        "Write the request this run satisfies."
    )
    program.relabeler.judge.demos = [
        dspy.Example(trajectory="[1] search {}", hindsight_prompt="Find X", is_valid=True,
                     confidence=0.9)
    ]  # fmt: skip
    return program


def test_round_trip_restores_instructions_demos_and_structure(tmp_path):
    program = compiled_like()
    sidecar = save_program(program, tmp_path / "relabeler.json", optimizer="labeled")
    assert sidecar == tmp_path / "relabeler.meta.json"
    loaded = load_program(tmp_path / "relabeler.json", min_confidence=0.7)
    assert loaded.dump_state() == program.dump_state()
    assert loaded.uses_llm_detector and loaded.relabeler.min_confidence == 0.7
    meta = json.loads(sidecar.read_text())
    assert meta["optimizer"] == "labeled" and meta["dspy_version"].startswith("3.4")


def test_signature_hash_mismatch_is_refused_with_the_reason(tmp_path):
    path = tmp_path / "relabeler.json"
    save_program(compiled_like(), path)
    meta = json.loads(sidecar_path(path).read_text())
    meta["signature_hash"] = "0000000000000000"
    sidecar_path(path).write_text(json.dumps(meta))
    with pytest.raises(ProgramError, match="compiled for stage signatures 0000000000000000"):
        load_program(path)


def test_a_program_without_sidecar_is_refused(tmp_path):
    path = tmp_path / "bare.json"
    HindsightRelabeler(**AGENTHER).save(str(path))
    with pytest.raises(ProgramError, match="no sidecar"):
        load_program(path)


def test_no_secret_reaches_the_sidecar(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-sidecar-secret-000000000000")
    save_program(
        compiled_like(),
        tmp_path / "p.json",
        model="openai/x",
        note="sk-sidecar-secret-000000000000",
    )
    assert "sk-sidecar-secret" not in sidecar_path(tmp_path / "p.json").read_text()


def test_only_local_specs_with_a_shipped_program_get_one():
    assert shipped_program("openai/gpt-4o-mini") is None
    assert shipped_program("local:smollm2-135m") is None  # nothing compiled for it
    assert shipped_program("local:/some/where/model.gguf") is None


def test_run_and_evaluate_pick_up_a_program_shipped_for_the_default_model(tmp_path, monkeypatch):
    from agenther_dspy.optimizers import saving

    monkeypatch.setattr(saving, "programs_dir", lambda: tmp_path)
    flags = {"tracking_uri": None, **AGENTHER, "llm_extractor": True}
    fresh, source = choose(None, model="local", uncompiled=False, **flags)
    assert source is None and not any(p.demos for p in fresh.predictors())

    save_program(compiled_like(), tmp_path / f"{DEFAULT_MODEL}.json", optimizer="labeled")
    assert shipped_program("local") == shipped_program(f"local:{DEFAULT_MODEL}")
    program, source = choose(None, model="local", uncompiled=False, **flags)
    assert source == str(tmp_path / f"{DEFAULT_MODEL}.json")
    assert program.uses_llm_detector  # the stages come from the program, not the flags
    assert program.relabeler.judge.demos
    # --uncompiled and other models start from the uncompiled program.
    for model, uncompiled in (("local", True), ("local:smollm2-135m", False)):
        _, source = choose(None, model=model, uncompiled=uncompiled, **flags)
        assert source is None


def test_program_and_uncompiled_together_are_refused(tmp_path):
    from conftest import EXAMPLES
    from test_cli import cli

    out = str(tmp_path / "o.jsonl")
    result = cli("run", str(EXAMPLES), "--program", "p.json", "--uncompiled", "-o", out)
    assert result.returncode == 2 and "contradict" in result.stderr


def test_the_acceptance_rule_flag_sets_a_fresh_program_and_not_a_saved_one(tmp_path):

    flags = {"tracking_uri": None, **AGENTHER, "llm_extractor": True}
    fresh, _ = choose(None, model="local", uncompiled=True, single_judge_fallback=False, **flags)
    assert not fresh.single_judge_fallback
    save_program(HindsightRelabeler(**AGENTHER), tmp_path / "p.json")  # compiled with the fallback
    saved, _ = choose(
        str(tmp_path / "p.json"), model="local", uncompiled=False, single_judge_fallback=False,
        **flags,
    )  # fmt: skip
    assert saved.single_judge_fallback  # a compiled program brings its own rule


def test_a_program_rebuilds_from_its_config_as_ray_actors_do():
    from agenther_dspy.programs import program_config

    for kind in ("free", "structured"):
        program = HindsightRelabeler(relabeler=kind, detector="hybrid", min_confidence=0.7)
        rebuilt = HindsightRelabeler(**program_config(program))
        assert (rebuilt.relabeler_kind, rebuilt.detector_kind) == (kind, "hybrid")
        assert program_params_like(rebuilt) == program_params_like(program)


def program_params_like(program: HindsightRelabeler) -> tuple:
    from agenther_dspy.modules.program import program_hash

    return program_hash(program), program.relabeler.min_confidence
