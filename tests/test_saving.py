"""Saved programs: JSON state plus sidecar; a signature mismatch is refused."""

from __future__ import annotations

import json

import dspy
import pytest

from agenther_dspy import HindsightRelabeler
from agenther_dspy.optimizers import ProgramError, load_program, save_program
from agenther_dspy.optimizers.saving import sidecar_path


def compiled_like() -> HindsightRelabeler:
    program = HindsightRelabeler(llm_detector=True)
    program.relabeler.relabel.signature = program.relabeler.relabel.signature.with_instructions(
        "Write the request this run satisfies."
    )
    program.relabeler.judge.demos = [
        dspy.Example(trajectory="[1] search {}", hindsight_prompt="Find X", is_valid=True,
                     confidence=0.9, rejection_reason="")
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
    HindsightRelabeler().save(str(path))
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
