"""relabel_fidelity: would a reviewer train on this row, and was the accept decision right?

The score is in [0, 1]. It is built so that a row nobody would train on is worth nothing:

- decision: an unrecoverable run must be turned down (1 when it is, 0 when a request is
  accepted); a recoverable run turned down scores 0.
- usability (a gate): an accepted request for a recoverable run scores 0 when it has any
  defect a reviewer rejects on sight: the gold-free checks of `request_checks` (agent speech,
  end tokens, instruction text, truncated ids, values the run never shows, a lookup that
  states its answer, nothing the user could know, a bare reply, length), plus the checks
  that need the gold annotation: asking again for an unmet requirement (`must_not_require`),
  a near-copy of the failed original prompt (similarity >= 0.8), a report instead of a
  request, process words, and naming none of the run's key facts. An unusable request thus
  earns exactly what declining the run earns, and never more than a correct reject.
- quality: a usable request scores 0.5 plus up to 0.5 for anchoring (how many of the run's
  key facts it names, saturating at 3) and closeness (content-word F1 with the closest
  reference request).

With a judge LM, its verdict takes 20% of the weight of a usable request.

The feedback names each defect in words a person or a reflection LM can act on.
"""

from __future__ import annotations

import json
import re
from typing import Any

import dspy

from agenther_dspy import text as tx
from agenther_dspy.request_checks import check_request
from agenther_dspy.schema import Trajectory
from agenther_dspy.text import COPY_SIMILARITY  # at or above: a near-copy of the original

# The quality of a usable request: how well it targets the run and reads like a reference.
WEIGHTS = {"anchoring": 0.5, "closeness": 0.5}
USABLE_FLOOR = 0.5  # every usable request scores at least this, every unusable one 0
DISTINCT_BELOW = 0.7  # at or below: distinct enough from the original prompt
JUDGE_WEIGHT = 0.2
ANCHOR_SATURATION = 3
# Share of a value-less requirement's words that must appear for it to count as asked again:
# a two-word requirement ("export CSV") leaks only when both are back, a three-word one
# ("number of suitcases allowed") when two are ("how many suitcases ... the number").
LEAK_WORD_SHARE = 0.66
MIN_WORDS, MAX_WORDS = 5, 80
META_WORDS = (
    "agent",
    "trajectory",
    "trajectories",
    "hindsight",
    "relabel",
    "the run",
    "tool call",
    "assistant",
)
REQUEST_STARTS = frozenset(
    """find list show give tell get search look check write create make build compare summarize
    summarise book cancel change update help explain what which who where when how can could
    would please i my fetch retrieve calculate compute draft generate provide
    identify run set fix plot analyze analyse convert export save send email schedule reserve
    order buy pull extract filter sort add remove delete modify upgrade downgrade troubleshoot
    diagnose reset enable disable turn switch verify confirm review translate recommend suggest
    is are do does let tell we our prepare pick choose rebook refund open close install deploy
    restart roll investigate query count rank estimate outline describe put move merge request
    transfer apply use return resend top refuel renew register sign upload download push
    scrape read pay charge ship swap bump hold keep take bring print plan""".split()
)
REPORT_STARTS = (
    "the agent",
    "the assistant",
    "the user",
    "this run",
    "it ",
    "i found",
    "i searched",
    "i have",
    "i was",
    "we found",
    "here is",
    "here are",
    "the search",
    "the results",
)
# A sentence opening with a past-tense verb reports what was done ("Cancelled Q69X3R.").
REPORT_VERBS = frozenset("found made sent took got paid bought built ran gave wrote".split())
REPORT_MARKERS = (" was found", " were found", " has been ", " have been ", "successfully ")


def evidence_text(trajectory: Trajectory) -> str:
    """What the run shows: observations, action inputs and final answer (not its thoughts)."""
    parts = [trajectory.final_answer]
    for step in trajectory.steps:
        parts.append(step.observation)
        parts.append(json.dumps(step.action_input, ensure_ascii=False))
    return "\n".join(parts)


def grounding(prompt: str, evidence: str) -> tuple[float, list[str]]:
    items = tx.specifics(prompt)
    if not items:
        return 1.0, []
    lowered, evidence_numbers = evidence.lower(), tx.numbers(evidence)
    missing = [
        value
        for kind, value in items
        if not (value in evidence_numbers if kind == "number" else value.lower() in lowered)
    ]
    return 1 - len(missing) / len(items), missing


def leaks(prompt: str, must_not_require: list[str]) -> list[str]:
    """The unachieved requirements the prompt asks for again."""
    prompt_tokens, prompt_numbers = set(tx.content_tokens(prompt)), tx.numbers(prompt)
    leaked = []
    for item in must_not_require:
        item_numbers = tx.numbers(item)
        words = [t for t in tx.content_tokens(item) if not t[0].isdigit()]
        # A requirement with a value ("below 100kg") is asked again when its value is; one
        # without ("export as CSV") when most of its words are.
        if item_numbers:
            if item_numbers & prompt_numbers:
                leaked.append(item)
        elif words and sum(w in prompt_tokens for w in words) / len(words) >= LEAK_WORD_SHARE:
            leaked.append(item)
    return leaked


def fact_in(fact: str, prompt: str) -> bool:
    if " ".join(fact.lower().split()) in " ".join(prompt.lower().split()):
        return True
    needed = set(tx.content_tokens(fact))
    return bool(needed) and needed <= set(tx.content_tokens(prompt))


def anchoring(prompt: str, key_facts: list[str]) -> tuple[float, list[str]]:
    if not key_facts:
        return 1.0, []
    hit = [fact for fact in key_facts if fact_in(fact, prompt)]
    missed = [fact for fact in key_facts if fact not in hit]
    return min(1.0, len(hit) / min(ANCHOR_SATURATION, len(key_facts))), missed


_ASKING_PHRASE = re.compile(
    r"\b(?:please|tell me|show me|give me|send me|get me|let me know|can you|could you|"
    r"would you|i want|i need|i'd like|i would like|help me)\b"
)
# A finite verb of a statement: a text with one and no clause that asks reports.
_STATES = re.compile(
    r"\b(?:was|were|is|are|has been|have been|had|lists|shows|returned|landed|reached)\b"
)


def _asks(sentence: str) -> bool:
    """A sentence, or one of its clauses, that asks for something."""
    if sentence.rstrip().endswith("?") or _ASKING_PHRASE.search(sentence):
        return True
    for index, clause in enumerate(re.split(r"[,;:(]\s*|\s+(?:and|then|so|but)\s+", sentence)):
        first = re.split(r"['’]", clause.strip().split(" ", 1)[0].strip(",.:;!?\"'"))[0]
        # Inside a sentence "which"/"that" start a relative clause, not a question.
        if first in REQUEST_STARTS and (index == 0 or first not in QUESTION_WORDS):
            return True
    return False


QUESTION_WORDS = frozenset("what which who where when how is are do does".split())


def naturalness(prompt: str, original_prompt: str) -> tuple[float, list[str], float, bool]:
    """Score, problems, the similarity to the original prompt, and whether it is a request."""
    problems = []
    lowered = " ".join(prompt.lower().split())
    # A request may open with who the user is ("This is raj_sanchez_7340."): any sentence
    # that asks makes it a request, and a report is one whose opening sentence reports.
    sentences = [s for s in re.split(r"(?<=[.!?:;])\s+", lowered) if s]
    opening = sentences[0] if sentences else ""
    first = opening.split(" ", 1)[0].strip(",.:;!?\"'")
    reports_alone = first.endswith("ed") or first in REPORT_VERBS or _STATES.search(lowered)
    is_report = (
        opening.startswith(REPORT_STARTS)
        or any(m in lowered for m in REPORT_MARKERS)
        or (bool(reports_alone) and not any(map(_asks, sentences)))
    )
    is_request = bool(sentences) and not is_report
    form = 1.0 if is_request and not is_report else 0.0
    if not form:
        problems.append("it reads like a report of what happened, not a user's request")
    words = len(prompt.split())
    length = 1.0 if MIN_WORDS <= words <= MAX_WORDS else 0.5 if 3 <= words <= 150 else 0.0
    if length < 1:
        problems.append(f"it is {words} words long (a request is {MIN_WORDS}–{MAX_WORDS})")
    meta = [w for w in META_WORDS if f" {w}" in f" {lowered}"]
    if meta:
        problems.append(f"it uses words about the process, not the task: {', '.join(meta)}")
    sim = tx.similarity(prompt, original_prompt)
    not_copy = min(1.0, max(0.0, (COPY_SIMILARITY - sim) / (COPY_SIMILARITY - DISTINCT_BELOW)))
    if not_copy < 1:
        problems.append(f"it is close to the original prompt (similarity {sim:.2f})")
    return (form + length + (0.0 if meta else 1.0) + not_copy) / 4, problems, sim, bool(form)


def _as_dict(value: Any) -> dict:
    if isinstance(value, dict):
        return value
    if hasattr(value, "model_dump"):
        return value.model_dump()
    return dict(value)


def score_prompt(
    prompt: str, trajectory: Trajectory, gold: dict, *, exclude_reference: str | None = None
) -> tuple[float, dict[str, float], list[str]]:
    """The score of one accepted prompt for a recoverable run, its components and feedback.

    Any defect makes the prompt unusable and its score 0; a usable prompt scores
    `USABLE_FLOOR` plus its quality. `exclude_reference` leaves one reference out of the
    closeness check (for validating the metric on the references themselves); with no
    reference left, closeness is not scored.
    """
    feedback: list[str] = []
    components: dict[str, float] = {}
    problems = [str(p) for p in check_request(prompt, trajectory)]
    components["grounding"], _ = grounding(prompt, evidence_text(trajectory))
    leaked = leaks(prompt, list(gold.get("must_not_require") or []))
    if leaked:
        problems.append(
            "asks_failed: it asks again for what the run did not achieve: "
            f"{'; '.join(leaked)}. Ask only for what was actually done."
        )
    components["no_leak"] = 0.0 if leaked else 1.0
    components["anchoring"], missed = anchoring(prompt, list(gold.get("key_facts") or []))
    if gold.get("key_facts") and components["anchoring"] == 0:
        problems.append(
            "no_anchor: it names none of the run's key results; mention some of: "
            f"{', '.join(missed[:5])}."
        )
    components["naturalness"], natural_problems, _, _ = naturalness(
        prompt, trajectory.original_prompt
    )
    problems += [f"natural: {p}" for p in natural_problems if "words long" not in p]
    references = [
        r for r in gold.get("reference_hindsight_prompts") or [] if r != exclude_reference
    ]
    if references:
        components["closeness"] = max(tx.token_f1(prompt, r) for r in references)
    components["usable"] = 0.0 if problems else 1.0
    if problems:
        feedback.append("Unusable: " + " ".join(f"{p.rstrip('.')}." for p in problems))
        if references:
            feedback.append(f"A request a reviewer would train on reads like: {references[0]!r}")
        return 0.0, components, feedback
    if components["anchoring"] < 1:
        feedback.append(
            f"Anchoring: name more of the run's key results, e.g. {', '.join(missed[:5])}."
        )
    if references and components["closeness"] < 0.5:
        feedback.append(f"Closeness: a faithful request for this run reads like: {references[0]!r}")
    weights = {k: w for k, w in WEIGHTS.items() if k in components}
    quality = sum(weights[k] * components[k] for k in weights) / sum(weights.values())
    return USABLE_FLOOR + (1 - USABLE_FLOOR) * quality, components, feedback


class JudgeHindsightPrompt(dspy.Signature):
    """Judge a user request written for an agent run: is everything it asks for fully and
    correctly done in the run's observations, and would a real user plausibly ask it?"""

    trajectory: str = dspy.InputField(desc="the agent run: numbered steps and final answer")
    hindsight_prompt: str = dspy.InputField(desc="the request to judge")
    fully_satisfied: bool = dspy.OutputField(desc="the run fully satisfies the request")
    natural: bool = dspy.OutputField(desc="a real user could plausibly ask this")


def make_fidelity_metric(judge_lm: dspy.LM | None = None):
    """The metric, optionally with an LM judge's verdict as one more component."""
    judge = dspy.Predict(JudgeHindsightPrompt) if judge_lm is not None else None

    def relabel_fidelity(example, pred, trace=None, pred_name=None, pred_trace=None):
        trajectory = Trajectory.model_validate(_as_dict(example.trajectory))
        gold = _as_dict(example.gold)
        status = getattr(pred, "status", None)
        relabel = getattr(pred, "relabel", None)
        prompt = getattr(relabel, "hindsight_prompt", "") if status == "accepted" else ""
        components: dict[str, float] = {}
        if not gold.get("recoverable"):
            components["decision"] = 0.0 if prompt else 1.0
            feedback = (
                ["Decision: the run achieved nothing a request could be built on "
                 f"({gold.get('notes') or gold.get('failure_type')}), yet a prompt was accepted: "
                 f"{prompt!r}. Mark such runs not a valid replay."]
                if prompt
                else []
            )  # fmt: skip
            return _prediction(components["decision"], components, feedback)
        if not prompt:
            components["decision"] = 0.0
            refs = gold.get("reference_hindsight_prompts") or []
            example_ref = f" A faithful request exists, e.g. {refs[0]!r}." if refs else ""
            why = getattr(pred, "reason", "") or "no prompt"
            return _prediction(
                0.0,
                components,
                [f"Decision: the run was recoverable but not relabeled ({why}).{example_ref}"],
            )
        components["decision"] = 1.0
        score, parts, feedback = score_prompt(prompt, trajectory, gold)
        components.update(parts)
        if judge is not None:
            from agenther_dspy.modules.render import render_trajectory

            with dspy.context(lm=judge_lm):
                verdict = judge(trajectory=render_trajectory(trajectory), hindsight_prompt=prompt)
            components["judge"] = (float(verdict.fully_satisfied) + float(verdict.natural)) / 2
            if components["judge"] < 1:
                feedback.append(
                    "Judge: the run does not fully satisfy the request"
                    if not verdict.fully_satisfied
                    else "Judge: a real user would not ask this"
                )
            if score > 0:
                score = (1 - JUDGE_WEIGHT) * score + JUDGE_WEIGHT * components["judge"]
        return _prediction(score, components, feedback)

    return relabel_fidelity


def _prediction(score: float, components: dict[str, float], feedback: list[str]) -> dspy.Prediction:
    text = " ".join(feedback) or "All fidelity checks passed."
    return dspy.Prediction(score=round(score, 4), feedback=text, components=components)


relabel_fidelity = make_fidelity_metric()
