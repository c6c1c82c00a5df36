"""Which program a command runs, and what is logged about it.

A command runs a saved program (a file, or an MLflow URI resolved here, at the edge, so that
saving and loading never depend on tracking), the program compiled for the local model when
one ships with the package, or a fresh program built from the settings.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from agenther_dspy.modules.program import HindsightRelabeler, program_hash
from agenther_dspy.optimizers.saving import (
    ProgramError,
    load_program,
    read_sidecar,
    shipped_program,
)
from agenther_dspy.redaction import scrub
from agenther_dspy.settings import LMSettings, ProgramSettings
from agenther_dspy.signatures import signature_hash

MLFLOW_SCHEMES = ("models:/", "runs:/")


def open_program(
    source: str | Path, *, tracking_uri: str | None = None, **settings: Any
) -> HindsightRelabeler:
    """A saved program from a file, `models:/NAME/VERSION` or `runs:/ID/PATH`; `settings`
    are θ, δ, K and the judge LM."""
    if str(source).startswith(MLFLOW_SCHEMES):
        from agenther_dspy.tracking import fetch_program

        try:
            source = fetch_program(str(source), tracking_uri)
        except Exception as error:  # MLflow raises many kinds; the user needs one line
            raise ProgramError(f"{source}: {type(error).__name__}: {error}") from None
    return load_program(source, **settings)


def _relabeler(path: Path) -> str:
    return read_sidecar(path).get("relabeler", "free")


def choose_program(
    source: str | None,
    settings: ProgramSettings,
    lm: LMSettings,
    *,
    uncompiled: bool = False,
    tracking_uri: str | None = None,
    log: Callable[[str], None] = lambda line: None,
) -> tuple[HindsightRelabeler, str | None]:
    """The program to run and where it came from (None: a fresh one).

    `source` names a saved program, whose stages and acceptance rule come from its sidecar;
    without it, the program compiled for the local model is used when one ships (unless
    `uncompiled`); otherwise a fresh program with the stages the settings ask for. θ, δ, K
    and the judge model always come from `settings`.
    """
    if source:
        log(f"Using the compiled program {source}")
    elif not uncompiled:
        shipped = shipped_program(lm.model)
        if shipped is not None and _relabeler(shipped) == settings.relabeler:
            log(
                f"Using the compiled program shipped for {lm.model}: {shipped.name} "
                "(--uncompiled to run without it)"
            )
            source = str(shipped)
    judge_lm = lm.build_optional(settings.judge_model)
    if source:
        program = open_program(
            source, tracking_uri=tracking_uri, judge_lm=judge_lm, **settings.limits()
        )
        return program, source
    return HindsightRelabeler.from_settings(settings, judge_lm), None


def program_params(
    program: HindsightRelabeler, source: str | None, lm: LMSettings, judge_model: str | None
) -> dict[str, Any]:
    """What `run` and `evaluate` log about the program they ran, scrubbed of secrets."""
    return scrub(
        {
            "model": lm.model,
            "base_url": lm.base_url,
            "judge_model": judge_model,
            "program_file": source,
            "program_hash": program_hash(program),
            "signature_hash": signature_hash(program.relabeler_kind == "structured"),
            **program_config(program),
        }
    )


def program_config(program: HindsightRelabeler) -> dict[str, Any]:
    """θ, δ, K, the stages and the acceptance rule of a program: `HindsightRelabeler`'s
    keyword arguments, less the judge LM."""
    return {
        "min_confidence": program.relabeler.min_confidence,
        "severity_threshold": program.severity_threshold,
        "max_attempts": program.relabeler.max_attempts,
        "detector": program.detector_kind,
        "llm_extractor": program.uses_llm_extractor,
        "single_judge_fallback": program.single_judge_fallback,
        "relabeler": program.relabeler_kind,
    }
