"""The settings of a program and of the LMs it calls, with their defaults written once.

`run`, `evaluate`, `compile` and the MLflow model all build their program and LMs from these
two objects, so a default (AgentHER's θ 0.5, δ 0.3, K 3) or a flag (`--timeout`,
`--retries`) means the same in each of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import dspy

from agenther_dspy.lm.factory import (
    DEFAULT_NUM_RETRIES,
    DEFAULT_TIMEOUT_S,
    LMConfigError,
    build_lm,
    configure_cache,
    is_local,
)

# `run` samples the detect and extract stages at this temperature, as AgentHER does;
# `evaluate` and `compile` leave the LM's own (0 on the embedded engine) so that their scores
# are reproducible.
RUN_TEMPERATURE = 0.3

# "free": the LM reads the run and writes a request (AgentHER's relabeler). "structured": code
# reads the run's facts, the LM chooses a goal and phrases it, code checks the request.
RelabelerKind = Literal["free", "structured"]

# "rules": keyword rules, no LM (AgentHER). "lm": the LM classifies every run. "hybrid": rules
# settle the clear-cut runs (`modules.detector.clear_cut`), the LM judges the rest.
DetectorKind = Literal["rules", "lm", "hybrid"]


@dataclass(frozen=True)
class ProgramSettings:
    """What the program does with a run."""

    min_confidence: float = 0.5  # θ: both judges' confidence to accept
    severity_threshold: float = 0.3  # δ: runs with a lower severity weight are skipped
    max_attempts: int = 3  # K: relabeling attempts per run
    temperature: float | None = None  # of the detect/extract stages; None: the LM's own
    detector: DetectorKind = "rules"  # the clear-cut rules, then AgentHER's keywords
    llm_extractor: bool = True
    single_judge_fallback: bool = True  # AgentHER's acceptance rule
    judge_model: str | None = None  # a different model for the second judge
    relabeler: RelabelerKind = "structured"  # AgentHER's is "free"

    def limits(self) -> dict[str, float | int]:
        """θ, δ and K: what a saved program takes from the command (its stages and its
        acceptance rule come with it)."""
        return {
            "min_confidence": self.min_confidence,
            "severity_threshold": self.severity_threshold,
            "max_attempts": self.max_attempts,
        }


@dataclass(frozen=True)
class LMSettings:
    """Which LM to call and how: the model spec, its server, where its key is, how long and
    how often to try a remote call, and the response cache."""

    model: str = "local"
    base_url: str | None = None
    api_key_env: str | None = None
    timeout: float | None = None  # seconds per remote call; None: DEFAULT_TIMEOUT_S
    retries: int = DEFAULT_NUM_RETRIES
    cache_dir: Path | None = None  # None: $AGENTHER_DSPY_HOME/lm-cache
    cache: bool = True

    def check(self, *others: str | None) -> None:
        """Refuse a `--timeout` that no model would use: every model named is local."""
        specs = [self.model, *(spec for spec in others if spec)]
        if self.timeout is not None and all(is_local(spec) for spec in specs):
            raise LMConfigError("--timeout is for remote servers; the local model runs in-process")

    def configure_cache(self) -> None:
        configure_cache(self.cache_dir, enabled=self.cache)

    def build(self, spec: str | None = None, *, temperature: float | None = None) -> dspy.LM:
        """The main model's LM, or another model's (a judge, a proposer) on the same server
        and key; a local model ignores the server, which it does not use."""
        model = spec or self.model
        base_url = self.base_url if spec is None or not is_local(spec) else None
        return build_lm(
            model,
            base_url=base_url,
            api_key_env=self.api_key_env,
            temperature=temperature,
            num_retries=self.retries,
            timeout=None if is_local(model) else self.timeout or DEFAULT_TIMEOUT_S,
        )

    def build_optional(self, spec: str | None) -> dspy.LM | None:
        """Another model's LM when it is named, else None."""
        return self.build(spec) if spec else None
