"""The data that flows through agenther-dspy.

The input record is AgentHER's, field for field, so files written for AgentHER load
unchanged; the output rows keep AgentHER's field names so existing consumers keep working.
The stage outputs (FailureAnalysis, ReplayOutcome, Relabel, Verdict) are what the DSPy
stages produce, validated and clamped here so the rest of the code can trust them.
"""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

FailureType = Literal[
    "constraint_violation",
    "wrong_result",
    "incomplete",
    "tool_error",
    "hallucination",
    "off_topic",
]
FAILURE_TYPES: tuple[str, ...] = FailureType.__args__  # type: ignore[attr-defined]


class AgentStep(BaseModel):
    """One step of an agent run: what it thought, what it called, what came back."""

    thought: str = ""
    action_name: str
    action_input: dict[str, Any] = Field(default_factory=dict)
    observation: str

    @field_validator("action_name")
    @classmethod
    def _name_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("action_name is empty")
        return value


class Trajectory(BaseModel):
    """A run that did not satisfy its user's goal (AgentHER's `FailedTrajectory`)."""

    trajectory_id: str = ""
    original_prompt: str
    steps: list[AgentStep] = Field(min_length=1)
    final_answer: str = ""
    failure_reason: str
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _keep_unknown_fields(cls, data: Any) -> Any:
        # Nothing in a record is dropped silently: unknown top-level keys move to metadata.
        if isinstance(data, dict):
            unknown = {k: v for k, v in data.items() if k not in cls.model_fields}
            if unknown:
                data = {k: v for k, v in data.items() if k in cls.model_fields}
                metadata = dict(data.get("metadata") or {})
                metadata.setdefault("extra_fields", {}).update(unknown)
                data["metadata"] = metadata
        return data

    @field_validator("original_prompt")
    @classmethod
    def _prompt_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("original_prompt is empty")
        return value

    @model_validator(mode="after")
    def _fill_id(self) -> Trajectory:
        # A content hash, not a random id: the same record gets the same id on every
        # read, so re-runs, caches and resumed batches recognise it.
        if not self.trajectory_id:
            payload = self.model_dump(exclude={"trajectory_id"}, mode="json")
            digest = hashlib.sha256(
                json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()
            ).hexdigest()
            self.trajectory_id = f"traj-{digest[:12]}"
        return self


def _unit(value: float) -> float:
    return min(1.0, max(0.0, float(value)))


class FailureAnalysis(BaseModel):
    """Stage 1: what kind of failure this is, how bad, and whether anything is salvageable."""

    is_failure: bool = True
    failure_type: FailureType
    severity_weight: float = Field(ge=0.0, le=1.0)
    recoverable: bool
    explanation: str = ""
    # The LM's own probability that the run is recoverable (`modules.calibration`), when it
    # returned log probabilities; None for rules and for the written answer alone.
    recoverable_p: float | None = Field(default=None, ge=0.0, le=1.0)

    _clamp = field_validator("severity_weight", mode="before")(lambda v: _unit(v))


class ReplayOutcome(BaseModel):
    """Stage 2: what the run really achieved, whatever the original goal was."""

    achievements: list[str] = Field(default_factory=list)
    key_observations: list[str] = Field(default_factory=list)
    limitations: str = ""


class Relabel(BaseModel):
    """Stage 3: one relabeling attempt."""

    hindsight_prompt: str
    is_valid_replay: bool
    confidence: float = Field(ge=0.0, le=1.0)
    temperature: float = 0.0

    _clamp = field_validator("confidence", mode="before")(lambda v: _unit(v))


class Verdict(BaseModel):
    """Stage 4: the second judge's independent check of one relabeling."""

    is_valid: bool
    confidence: float = Field(ge=0.0, le=1.0)
    # "p_true": the model's own probability of its answer; "verbalized": the number it wrote.
    confidence_source: Literal["p_true", "verbalized"] = "verbalized"

    _clamp = field_validator("confidence", mode="before")(lambda v: _unit(v))


class OutputFormat(StrEnum):
    SFT = "sft"
    DPO = "dpo"
    SHAREGPT = "sharegpt"
    OPENAI = "openai"  # OpenAI chat fine-tuning: {"messages": [...]} with real tool calls
    TRL_SFT = "trl-sft"  # TRL conversational language modeling: {"messages": [...]}
    TRL_DPO = "trl-dpo"  # TRL conversational preference: {"prompt", "chosen", "rejected"}


class AugmentedSample(BaseModel):
    """One training row; field names are AgentHER's."""

    source_trajectory_id: str
    format: OutputFormat
    hindsight_prompt: str
    weight: float = Field(default=1.0, ge=0.0, le=1.0)
    # Chat messages; the openai / trl formats' assistant messages carry `tool_calls` lists.
    chosen: list[dict[str, Any]] = Field(default_factory=list)
    rejected: list[dict[str, Any]] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
