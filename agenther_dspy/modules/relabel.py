"""Stages 3 and 4, relabel and verify: AgentHER's acceptance algorithm.

For up to `max_attempts` (K) attempts, the first at temperature 0.3 and the rest at 0.7 as
distinct requests, the relabeler proposes a hindsight prompt with a confidence c. A valid
proposal with c ≥ `min_confidence` (θ) goes to a second judge at temperature 0, which must
also find the run valid with confidence c2 ≥ θ; the result is accepted with confidence
(c + c2) / 2. If no attempt passes both, the best valid attempt is kept when its c ≥ 0.8θ,
flagged as single-judge; otherwise the run is rejected with the reasons of every attempt.
With `single_judge_fallback=False` the second judge is required: no fallback, and a run no
judge accepted is rejected. Compiling chooses between the two rules on dev (see
`optimizers.gold.search_gold_demos`); the fallback is AgentHER's default.

Unlike AgentHER, the relabeler is not shown the failed original prompt as a style reference:
small models answer with a near-copy of it (measured: 6 of 12 relabels on the 0.5B model and
12 of 12 on the 1.5B), which is the one answer the run is known not to satisfy. It is told
what the run did not achieve instead, and a near-copy that slips through still costs an
attempt.
"""

from __future__ import annotations

import dspy

from agenther_dspy.modules.calibration import LOGPROBS_CONFIG, p_true
from agenther_dspy.modules.stages import ANSWER_ERRORS, tagged
from agenther_dspy.schema import Relabel, ReplayOutcome, Verdict
from agenther_dspy.settings import ProgramSettings
from agenther_dspy.signatures import RelabelTrajectory, VerifyRelabel
from agenther_dspy.text import COPY_SIMILARITY, similarity

FIRST_TEMPERATURE = 0.3
RETRY_TEMPERATURE = 0.7
JUDGE_TEMPERATURE = 0.0
FALLBACK_FACTOR = 0.8


class RelabelAndVerify(dspy.Module):
    """Proposes hindsight prompts (`relabel`) and has a second judge check them (`judge`).

    The program holds it as `relabeler`; that attribute name and these two predictor names
    are the keys of every saved program, so they stay as they are.
    """

    def __init__(
        self,
        min_confidence: float = ProgramSettings.min_confidence,
        max_attempts: int = ProgramSettings.max_attempts,
        judge_lm: dspy.LM | None = None,
        single_judge_fallback: bool = ProgramSettings.single_judge_fallback,
    ) -> None:
        super().__init__()
        if not 0.0 <= min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be in [0, 1], got {min_confidence}")
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        self.min_confidence = min_confidence
        self.max_attempts = max_attempts
        self.single_judge_fallback = single_judge_fallback
        # Chosen at run time and never part of the saved state (only predictors are saved);
        # shared, not copied, when an optimizer deep-copies the program.
        self._judge_lm = _Shared(judge_lm)
        self.relabel = dspy.Predict(RelabelTrajectory)
        self.judge = dspy.Predict(VerifyRelabel)

    @property
    def judge_lm(self) -> dspy.LM | None:
        return self._judge_lm.value

    def propose(self, rendered: str, outcome: ReplayOutcome, attempt: int) -> Relabel:
        temperature = FIRST_TEMPERATURE if attempt == 1 else RETRY_TEMPERATURE
        out = self.relabel(
            trajectory=rendered,
            achievements=outcome.achievements,
            key_observations=outcome.key_observations,
            not_achieved=outcome.limitations,
            # rollout_id makes each attempt a distinct request, never a cache hit of another.
            config={"temperature": temperature, "rollout_id": attempt},
        )
        return Relabel(
            hindsight_prompt=out.hindsight_prompt.strip(),
            is_valid_replay=out.is_valid_replay,
            confidence=out.confidence,
            temperature=temperature,
        )

    def verify(self, rendered: str, hindsight_prompt: str) -> Verdict:
        """The second judge's verdict. Its confidence is the model's P(true) of the verdict
        when the LM returns log probabilities (`modules.calibration`), else the number the
        judge wrote."""
        with dspy.context(lm=self.judge_lm or dspy.settings.lm):
            out = self.judge(
                trajectory=rendered,
                hindsight_prompt=hindsight_prompt,
                config={"temperature": JUDGE_TEMPERATURE, **LOGPROBS_CONFIG},
            )
        probability = p_true(getattr(out, "logprobs", None), "is_valid")
        if probability is None:
            return Verdict(is_valid=out.is_valid, confidence=out.confidence)
        return Verdict(
            is_valid=out.is_valid,
            confidence=probability if out.is_valid else 1.0 - probability,
            confidence_source="p_true",
        )

    def forward(
        self, rendered: str, original_prompt: str, outcome: ReplayOutcome
    ) -> dspy.Prediction:
        threshold = self.min_confidence  # θ
        attempts: list[dict] = []
        best: Relabel | None = None
        best_verdict: Verdict | None = None
        for attempt in range(1, self.max_attempts + 1):
            record: dict = {"attempt": attempt}
            attempts.append(record)
            try:
                proposal = self.propose(rendered, outcome, attempt)
            except ANSWER_ERRORS as exc:  # costs this attempt; other errors end the run
                record["outcome"] = f"unparseable answer: {_short(exc)}"
                continue
            record["relabel"] = proposal.model_dump()
            if not proposal.is_valid_replay or not proposal.hindsight_prompt:
                record["outcome"] = "relabeler marked the run not a valid replay"
                continue
            copied = similarity(proposal.hindsight_prompt, original_prompt)
            if copied >= COPY_SIMILARITY:
                # The run failed this prompt by definition: a near-copy is no relabeling.
                record["outcome"] = f"near-copy of the original prompt (similarity {copied:.2f})"
                continue
            if best is None or proposal.confidence > best.confidence:
                best, best_verdict = proposal, None
            if proposal.confidence < threshold:
                record["outcome"] = f"confidence {proposal.confidence:.2f} below {threshold:.2f}"
                continue
            verdict, accepted = self._judge(
                rendered, proposal, attempts, "accepted by relabeler and second judge"
            )
            if verdict is not None and proposal is best:
                best_verdict = verdict
            if accepted is not None:
                return accepted

        kept = best is not None and best.confidence >= FALLBACK_FACTOR * threshold
        if self.single_judge_fallback and kept:
            reason = (
                f"single-judge fallback: best confidence {best.confidence:.2f}"
                f" ≥ {FALLBACK_FACTOR * threshold:.2f}"
            )
            return _single_judge(best, best_verdict, attempts, reason)
        return rejection(attempts, best, best_verdict)

    def settle(self, rendered: str, proposal: Relabel, attempts: list[dict]) -> dspy.Prediction:
        """The acceptance rule for one proposal that code has already checked (the structured
        relabeler): the second judge decides; if it does not accept, the single-judge fallback
        keeps the proposal when its confidence (1.0 for a request that passed every check)
        is at least 0.8θ, and otherwise the run is rejected."""
        verdict, accepted = self._judge(
            rendered, proposal, attempts, "passed the checks and accepted by the second judge"
        )
        if accepted is not None:
            return accepted
        if (
            self.single_judge_fallback
            and proposal.confidence >= FALLBACK_FACTOR * self.min_confidence
        ):
            reason = "single-judge fallback: the request passed every check"
            return _single_judge(proposal, verdict, attempts, reason)
        return rejection(attempts, proposal, verdict)

    def _judge(
        self, rendered: str, proposal: Relabel, attempts: list[dict], reason: str
    ) -> tuple[Verdict | None, dspy.Prediction | None]:
        """Ask the second judge about the latest attempt's proposal and record what it said:
        its verdict (None when its answer did not parse) and the accepted prediction when it
        accepts."""
        record = attempts[-1]
        try:
            with tagged("judge"):  # the program tags the rest of this stage "relabel"
                verdict = self.verify(rendered, proposal.hindsight_prompt)
        except ANSWER_ERRORS as exc:
            record["outcome"] = f"second judge unparseable: {_short(exc)}"
            return None, None
        record["verdict"] = verdict.model_dump()
        if verdict.is_valid and verdict.confidence >= self.min_confidence:
            record["outcome"] = "accepted"
            return verdict, dspy.Prediction(
                status="accepted",
                reason=reason,
                relabel=proposal,
                verdict=verdict,
                confidence=(proposal.confidence + verdict.confidence) / 2,
                single_judge=False,
                attempts=attempts,
            )
        record["outcome"] = (
            f"second judge rejected (valid={verdict.is_valid}, confidence {verdict.confidence:.2f})"
        )
        return verdict, None


def _single_judge(
    relabel: Relabel, verdict: Verdict | None, attempts: list[dict], reason: str
) -> dspy.Prediction:
    """Accepted on the relabeler's confidence alone (AgentHER's fallback)."""
    return dspy.Prediction(
        status="accepted",
        reason=reason,
        relabel=relabel,
        verdict=verdict,
        confidence=relabel.confidence,
        single_judge=True,
        attempts=attempts,
    )


def rejection(
    attempts: list[dict], best: Relabel | None, best_verdict: Verdict | None
) -> dspy.Prediction:
    """The stage's answer when no attempt is accepted: every attempt's reason."""
    reasons = "; ".join(f"#{r['attempt']} {r.get('outcome', '')}" for r in attempts)
    return dspy.Prediction(
        status="rejected",
        reason=f"no acceptable relabeling in {len(attempts)} attempts: {reasons}",
        relabel=best,
        verdict=best_verdict,
        confidence=best.confidence if best else 0.0,
        single_judge=False,
        attempts=attempts,
    )


class _Shared:
    """A reference that deep copies share: an LM holds a loaded model and connections."""

    def __init__(self, value: object) -> None:
        self.value = value

    def __deepcopy__(self, memo: dict) -> _Shared:
        return self


def _short(exc: Exception, limit: int = 160) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
