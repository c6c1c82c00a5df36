"""The composed hindsight relabeling program: detect → gate → extract → relabel and judge.

`HindsightRelabeler` is the one object that is compiled, saved, evaluated and served. Its
predictor names (`detector.predict`, `extractor.predict`, `relabeler.relabel`,
`relabeler.judge`) are the keys of a saved program: renaming them breaks saved programs.
So the relabel-and-verify stage (`RelabelAndVerify`) keeps the attribute name `relabeler`.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import dspy

from agenther_dspy.modules.adapter import default_adapter
from agenther_dspy.modules.detector import (
    HybridFailureDetector,
    LMFailureDetector,
    RuleFailureDetector,
)
from agenther_dspy.modules.extractor import LMOutcomeExtractor, RuleOutcomeExtractor
from agenther_dspy.modules.relabel import RelabelAndVerify, rejection
from agenther_dspy.modules.render import render_trajectory
from agenther_dspy.modules.stages import tagged
from agenther_dspy.modules.structured import StructuredRelabel
from agenther_dspy.schema import Relabel, ReplayOutcome, Trajectory
from agenther_dspy.settings import DetectorKind, ProgramSettings, RelabelerKind

DETECTORS = {
    "rules": RuleFailureDetector,
    "lm": LMFailureDetector,
    "hybrid": HybridFailureDetector,
}


class HindsightRelabeler(dspy.Module):
    def __init__(
        self,
        *,
        min_confidence: float = ProgramSettings.min_confidence,
        severity_threshold: float = ProgramSettings.severity_threshold,
        max_attempts: int = ProgramSettings.max_attempts,
        detector: DetectorKind = ProgramSettings.detector,
        llm_extractor: bool = ProgramSettings.llm_extractor,
        judge_lm: dspy.LM | None = None,
        single_judge_fallback: bool = ProgramSettings.single_judge_fallback,
        relabeler: RelabelerKind = ProgramSettings.relabeler,
    ) -> None:
        super().__init__()
        if relabeler not in ("free", "structured"):
            raise ValueError(f"relabeler must be 'free' or 'structured', got {relabeler!r}")
        if detector not in DETECTORS:
            raise ValueError(f"detector must be one of {', '.join(DETECTORS)}, got {detector!r}")
        if not 0.0 <= severity_threshold <= 1.0:
            raise ValueError(f"severity_threshold must be in [0, 1], got {severity_threshold}")
        self.severity_threshold = severity_threshold  # δ
        self.detector_kind = detector
        self.uses_llm_extractor = llm_extractor
        self.detector = DETECTORS[detector]()
        self.extractor = LMOutcomeExtractor() if llm_extractor else RuleOutcomeExtractor()
        self.relabeler = RelabelAndVerify(
            min_confidence=min_confidence,
            max_attempts=max_attempts,
            judge_lm=judge_lm,
            single_judge_fallback=single_judge_fallback,
        )
        # Only a structured program has these predictors, so a saved free-relabeler program
        # loads as it always did. It keeps `relabeler` for its second judge.
        self.relabeler_kind = relabeler
        if relabeler == "structured":
            self.structured = StructuredRelabel(max_attempts=max_attempts)

    @classmethod
    def from_settings(
        cls, settings: ProgramSettings, judge_lm: dspy.LM | None = None
    ) -> HindsightRelabeler:
        """A fresh program; the caller builds the judge LM from `settings.judge_model`."""
        return cls(
            **settings.limits(),
            detector=settings.detector,
            llm_extractor=settings.llm_extractor,
            single_judge_fallback=settings.single_judge_fallback,
            judge_lm=judge_lm,
            relabeler=settings.relabeler,
        )

    @property
    def uses_llm_detector(self) -> bool:
        return self.detector_kind != "rules"

    @property
    def single_judge_fallback(self) -> bool:
        return self.relabeler.single_judge_fallback

    def forward(self, trajectory: Trajectory | dict[str, Any]) -> dspy.Prediction:
        # Every caller (run, evaluate, compile, serving, the Python API) goes through here, so
        # this is where the stages get their run-first layout (see `modules.adapter`); an
        # adapter the caller put in `dspy.context` wins.
        if dspy.settings.adapter is not None:
            return self._relabel(trajectory)
        with dspy.context(adapter=default_adapter()):
            return self._relabel(trajectory)

    def _relabel(self, trajectory: Trajectory | dict[str, Any]) -> dspy.Prediction:
        if not isinstance(trajectory, Trajectory):
            trajectory = Trajectory.model_validate(trajectory)
        rendered = render_trajectory(trajectory)
        result: dict[str, Any] = {
            "trajectory_id": trajectory.trajectory_id,
            "analysis": None,
            "outcome": None,
            "relabel": None,
            "verdict": None,
            "confidence": 0.0,
            "single_judge": False,
            "attempts": [],
        }

        with tagged("detect"):
            analysis = self.detector(trajectory=trajectory, rendered=rendered).analysis
        result["analysis"] = analysis
        gate = self._gate_reason(analysis)
        if gate:
            return dspy.Prediction(**result, status="skipped", stage="detect", reason=gate)

        if self.relabeler_kind == "structured":
            return self._structured(trajectory, rendered, result)

        with tagged("extract"):
            outcome = self.extractor(trajectory=trajectory, rendered=rendered).outcome
        result["outcome"] = outcome

        with tagged("relabel"):
            decision = self.relabeler(
                rendered=rendered, original_prompt=trajectory.original_prompt, outcome=outcome
            )
        judged = any("verdict" in attempt for attempt in decision.attempts)
        return _decided(result, decision, stage="judge" if judged else "relabel")

    def _structured(
        self, trajectory: Trajectory, rendered: str, result: dict[str, Any]
    ) -> dspy.Prediction:
        """Code reads the facts, the LM chooses a goal and phrases it, code checks it; then
        the second judge and the acceptance rule, as for the free relabeler."""
        with tagged("relabel"):
            drafted = self.structured(trajectory=trajectory)
        facts = drafted.facts
        result["outcome"] = ReplayOutcome(
            achievements=[goal.label for goal in drafted.goals],
            key_observations=[f"{k}: {v}" for c in facts.achieved for k, v in c.returned.items()][
                :30
            ],
            limitations="; ".join(facts.failures),
        )
        attempts = drafted.attempts
        result["attempts"] = attempts
        if not drafted.request:
            reason = (
                "nothing the run achieved to ask for"
                if drafted.goal is None
                else f"no request passed the checks in {len(attempts)} attempts: "
                + "; ".join(f"#{a['attempt']} {a.get('outcome', '')}" for a in attempts)
            )
            return dspy.Prediction(**result, status="rejected", stage="relabel", reason=reason)
        proposal = Relabel(hindsight_prompt=drafted.request, is_valid_replay=True, confidence=1.0)
        with tagged("relabel"):
            decision = self.relabeler.settle(rendered, proposal, attempts)
        return _decided(result, decision, stage="judge")

    def _gate_reason(self, analysis) -> str:
        """Why a run is not worth relabeling, or "" when it is."""
        if not analysis.is_failure:
            return "not a failure"
        if not analysis.recoverable:
            why = f": {analysis.explanation}" if analysis.explanation.strip() else ""
            return f"not recoverable ({analysis.failure_type}){why}"
        if analysis.severity_weight < self.severity_threshold:
            return (
                f"severity weight {analysis.severity_weight:.2f} below threshold "
                f"{self.severity_threshold:.2f}"
            )
        return ""


def judge_required(prediction: dspy.Prediction) -> dspy.Prediction:
    """What the program answers for the same run when the second judge is required.

    The single-judge fallback is decided after every attempt has run, so a run it accepted
    is simply rejected under the other rule, with the same attempts and LM calls: one
    evaluation scores both rules.
    """
    if not getattr(prediction, "single_judge", False):
        return prediction
    rejected = rejection(prediction.attempts, prediction.relabel, prediction.verdict)
    return dspy.Prediction(**{**dict(prediction.items()), **dict(rejected.items())})


def program_hash(program: dspy.Module) -> str:
    """A hash of a program's learned state (instructions and demos), independent of its path:
    it ties a results file, an MLflow run or a dataset card to the exact program."""
    state = json.dumps(program.dump_state(), sort_keys=True, default=str)
    return hashlib.sha256(state.encode()).hexdigest()[:16]


def _decided(result: dict[str, Any], decision: dspy.Prediction, *, stage: str) -> dspy.Prediction:
    """The program's answer from what the relabel-and-judge stage decided."""
    result.update(
        relabel=decision.relabel,
        verdict=decision.verdict,
        confidence=decision.confidence,
        single_judge=decision.single_judge,
        attempts=decision.attempts,
    )
    return dspy.Prediction(**result, status=decision.status, stage=stage, reason=decision.reason)
