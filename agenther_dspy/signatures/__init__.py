"""One DSPy signature per stage.

Each class docstring is the stage's instruction and each field's `desc` is its only
description: the signature is the prompt's single source of truth. The compiled program
rewrites these instructions; the field names and types are the contract, hashed into
every saved program (see `signature_hash`).

Every stage that reads the run receives it as `trajectory`, its first input field, rendered
by `modules.render.render_trajectory`, so the same text leads every request about one run.
"""

from __future__ import annotations

import hashlib
import json

import dspy

from agenther_dspy.schema import FailureType


class DetectFailure(dspy.Signature):
    """Classify why an agent run failed its user's goal and judge whether it is salvageable.

    Failure types: constraint_violation (a stated constraint or policy broken), wrong_result
    (done on the wrong object or with a wrong answer), incomplete (part done, the rest
    abandoned), tool_error (tool failures blocked the goal), hallucination (results or rules
    stated with no support in any observation), off_topic (worked on something else).
    A run is recoverable only when the whole run, every step, is a correct demonstration of
    some other reasonable request: real results that reached the user, no policy broken, no
    false claim, no unrequested action. The severity weight says how far the run is from its
    original goal: 0 a slight miss, 1 a complete miss."""

    trajectory: str = dspy.InputField(desc="the agent run: numbered steps and final answer")
    original_prompt: str = dspy.InputField(desc="the goal the user originally gave the agent")
    failure_reason: str = dspy.InputField(desc="why the run was judged a failure, if known")
    failure_type: FailureType = dspy.OutputField(desc="the main way the run failed")
    severity_weight: float = dspy.OutputField(desc="between 0 and 1")
    recoverable: bool = dspy.OutputField(desc="does the run hold results worth relabeling")


class ExtractOutcome(dspy.Signature):
    """List what the agent run really achieved, whatever its original goal was.

    Report only what the observations show: results returned by tools, actions that
    succeeded, facts the run established. Quote the concrete values (names, numbers, ids)
    exactly as they appear. Do not count what the agent merely claimed or planned."""

    trajectory: str = dspy.InputField(desc="the agent run: numbered steps and final answer")
    original_prompt: str = dspy.InputField(desc="the goal the user originally gave the agent")
    achievements: list[str] = dspy.OutputField(desc="what the run accomplished, one per item")
    key_observations: list[str] = dspy.OutputField(
        desc="concrete values the run found, exactly as observed"
    )
    limitations: str = dspy.OutputField(desc="what the run did not achieve")


class RelabelTrajectory(dspy.Signature):
    """Write the request a user could have made that this agent run fully and correctly satisfies.

    The new request must be satisfied by what the run actually did and found, as shown in
    its observations: ask only for things the run achieved, and never for what it did not
    achieve. Write it as a natural request in the user's voice ("Find…", "Book…", "What
    is…?"), naming the concrete values the run worked with, not as a report of what happened.
    If nothing in the run is a useful result, mark it not a valid replay. Confidence is how
    sure you are that the run fully satisfies the request."""

    trajectory: str = dspy.InputField(desc="the agent run: numbered steps and final answer")
    achievements: list[str] = dspy.InputField(desc="what the run accomplished")
    key_observations: list[str] = dspy.InputField(desc="concrete values the run found")
    not_achieved: str = dspy.InputField(desc="what the run did not achieve: never ask for it")
    hindsight_prompt: str = dspy.OutputField(desc="the new user request")
    is_valid_replay: bool = dspy.OutputField(desc="does the run fully satisfy the new request")
    confidence: float = dspy.OutputField(desc="between 0 and 1")


class VerifyRelabel(dspy.Signature):
    """Independently check whether an agent run fully and correctly satisfies a user request.

    Judge only from the run's observations and final answer. The run satisfies the request
    when everything the request asks for was actually done or found, with the values the
    request names. If anything requested is missing, wrong or only claimed, it is not valid."""

    trajectory: str = dspy.InputField(desc="the agent run: numbered steps and final answer")
    hindsight_prompt: str = dspy.InputField(desc="the user request to check")
    is_valid: bool = dspy.OutputField(desc="does the run fully satisfy the request")
    confidence: float = dspy.OutputField(desc="between 0 and 1")


class ChooseGoal(dspy.Signature):
    """Choose what the user most plausibly came to the agent for, among what the run looked up.

    Each option is a lookup that succeeded and whose answer the agent told the user. Prefer
    the one the user asked about."""

    facts: str = dspy.InputField(desc="what the run did, looked up and failed, read from its log")
    options: str = dspy.InputField(desc="the numbered goals the run achieved")
    choice: int = dspy.OutputField(desc="the number of the chosen option")


class PhraseRequest(dspy.Signature):
    """Rewrite the draft as the one message a customer sends to ask for exactly these actions.

    Speak as the customer, in the first person: say who you are, keep every id, date and
    amount of the draft exactly as written, and ask for each action. Add nothing: ask for
    nothing under avoid, and state no result the agent would look up. Fix every problem
    listed in feedback."""

    user: str = dspy.InputField(desc="who the customer is")
    draft: str = dspy.InputField(desc="a plain request for the actions, with their exact values")
    avoid: str = dspy.InputField(desc="what the run failed or refused")
    feedback: str = dspy.InputField(desc="problems of the previous message; empty at first")
    request: str = dspy.OutputField(desc="the customer's message")


STAGE_SIGNATURES: dict[str, type[dspy.Signature]] = {
    "detect": DetectFailure,
    "extract": ExtractOutcome,
    "relabel": RelabelTrajectory,
    "verify": VerifyRelabel,
}
# The structured relabeler's two steps. Hashed only into the programs that use them, so a
# saved free-relabeler program keeps its key.
STRUCTURED_SIGNATURES: dict[str, type[dspy.Signature]] = {
    "choose_goal": ChooseGoal,
    "phrase_request": PhraseRequest,
}


def signature_hash(structured: bool = False) -> str:
    """A hash of every stage's field names and types: a saved program's compatibility key.

    Instructions are excluded on purpose: compiling rewrites them, and a saved program
    carries its own. Field names, order and types are what a saved program depends on.
    `structured` adds the structured relabeler's steps, for the programs that have them.
    """
    signatures = {**STAGE_SIGNATURES, **(STRUCTURED_SIGNATURES if structured else {})}
    shape = {
        name: {
            kind: [(field, str(info.annotation)) for field, info in fields.items()]
            for kind, fields in (("in", sig.input_fields), ("out", sig.output_fields))
        }
        for name, sig in signatures.items()
    }
    return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:16]
