"""Saved programs: DSPy's JSON state plus a sidecar that says what it is compatible with.

`relabeler.json` holds each predictor's instructions and demos (DSPy's own JSON; no pickle);
`relabeler.meta.json` beside it holds the signature hash, the versions, which stages are LM
stages, the acceptance rule (whether the single-judge fallback is on), and whatever the
compile recorded (optimizer, budget, model, dataset hashes, scores).
Loading refuses a program whose signature hash differs from this version's: its
instructions and demos were learned for other fields, and DSPy would load them silently.
"""

from __future__ import annotations

import json
from importlib import resources
from importlib.metadata import version
from pathlib import Path
from typing import Any

from agenther_dspy.modules.program import HindsightRelabeler, program_hash
from agenther_dspy.redaction import scrub
from agenther_dspy.signatures import signature_hash


class ProgramError(ValueError):
    """A saved program that cannot be used, with the reason."""


def shipped_program(model: str) -> Path | None:
    """The compiled program shipped for a local model spec (`local`, `local:<name>`), if any.

    Compiled demos and instructions are tuned to one model, so they are only used for the
    model they were compiled with; other models start from the uncompiled program.
    """
    from agenther_dspy.lm.models import DEFAULT_MODEL

    if model != "local" and not model.startswith("local:"):
        return None
    name = model.partition(":")[2].strip() or DEFAULT_MODEL
    path = programs_dir() / f"{name}.json"
    return path if path.is_file() else None


def programs_dir() -> Path:
    """Where compiled programs ship with the package, one `<model name>.json` per model."""
    return Path(str(resources.files("agenther_dspy") / "data" / "programs"))


def sidecar_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.name.removesuffix(".json") + ".meta.json")


def save_program(program: HindsightRelabeler, path: str | Path, **info: Any) -> Path:
    """Write the program's JSON state and its sidecar; return the sidecar's path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    program.save(str(path))
    # What the program itself says comes last: a compile's settings (`info`) name where it
    # started, and the optimizer may have changed them (the acceptance rule, say).
    meta = {
        **info,
        "signature_hash": signature_hash(program.relabeler_kind == "structured"),
        "program_hash": program_hash(program),
        "dspy_version": version("dspy"),
        "agenther_dspy_version": version("agenther-dspy"),
        "detector": program.detector_kind,
        "llm_extractor": program.uses_llm_extractor,
        "single_judge_fallback": program.single_judge_fallback,
        "relabeler": program.relabeler_kind,
    }
    sidecar = sidecar_path(path)
    sidecar.write_text(json.dumps(scrub(meta), indent=2, sort_keys=True) + "\n")
    return sidecar


def read_sidecar(path: str | Path) -> dict[str, Any]:
    sidecar = sidecar_path(path)
    if not sidecar.is_file():
        raise ProgramError(
            f"{path}: no sidecar {sidecar.name} beside it; save programs with compile"
        )
    try:
        return json.loads(sidecar.read_text())
    except json.JSONDecodeError as error:
        raise ProgramError(f"{sidecar}: not valid JSON ({error.msg})") from None


def load_program(path: str | Path, **settings: Any) -> HindsightRelabeler:
    """A program rebuilt from a saved file; `settings` are θ, δ, K and the judge LM.

    An MLflow URI (`models:/NAME/VERSION`, `runs:/ID/PATH`) is resolved to a file by the
    caller (`programs.choose_program`), so saving and loading never depend on tracking.
    """
    path = Path(path)
    if not path.is_file():
        raise ProgramError(f"{path}: no such program file")
    meta = read_sidecar(path)
    relabeler = meta.get("relabeler", "free")  # programs saved before the choice existed
    expected = signature_hash(relabeler == "structured")
    if meta.get("signature_hash") != expected:
        raise ProgramError(
            f"{path} was compiled for stage signatures {meta.get('signature_hash')}, but this "
            f"version of agenther-dspy has {expected}: its instructions and demos belong to "
            "other fields. Compile it again with this version."
        )
    program = HindsightRelabeler(
        detector=meta.get("detector") or ("lm" if meta.get("llm_detector") else "rules"),
        llm_extractor=meta["llm_extractor"],
        single_judge_fallback=meta.get("single_judge_fallback", True),
        relabeler=relabeler,
        **settings,
    )
    try:
        program.load(str(path))
    except (KeyError, ValueError) as error:
        raise ProgramError(f"{path}: cannot load its state ({error})") from None
    return program
