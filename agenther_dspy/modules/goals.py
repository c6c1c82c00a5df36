"""The goals a request could ask for: every change the run made, or one lookup it reported.

`candidate_goals` is the menu the LM chooses from (`ChooseGoal`). Each goal is a coherent
group of successful calls: every action the run took, or, when nothing changed state, one
lookup whose answer the agent reported and the user asked about. A goal never holds a failed
call, a hand-off or an action whose own answer contradicts it (`RunFacts.achieved`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agenther_dspy.modules.facts import (
    USER_FIELDS,
    RunFacts,
    ToolCall,
    compact,
    whole_word,
)

MAX_REQUESTABLE_ARG = 80  # longer arguments are code or instructions, not a user's words


@dataclass(frozen=True)
class Goal:
    """A coherent group of what the run achieved: one option the LM may choose."""

    label: str
    calls: tuple[ToolCall, ...]
    asks: tuple[str, ...] = ()  # a lookup's fields to be told, in words ("membership")


def candidate_goals(facts: RunFacts, reported: str = "") -> list[Goal]:
    """The goals a request could ask for.

    - When the run changed state: one goal, every successful state-changing call. A request
      for part of them (one reservation of five) leaves the other changes in the
      demonstration as actions nobody asked for, and reviewers turn such a pair down.
    - Otherwise, each successful lookup that returned a record, not a list of results (a
      search is a step toward a choice, not an answer to ask for), and something the agent
      reported to the user (in `reported`: what the agent said, and the final answer) beyond
      the user's own identity and arguments (`reported_fields`), that the user spoke of
      (`spoke_of`). A lookup that reported nothing new is no request: "look up my profile"
      asks for nothing. Nor is one the user never spoke of: an agent reads the profile first
      in nearly every run, and "tell me my membership" is no goal of a user who came about a
      delayed flight.
    """
    if facts.state_changes:
        return [Goal(_label(facts.state_changes), tuple(facts.state_changes))]
    goals: list[Goal] = []  # one call each, so no two goals are the same
    said = reported or facts.final_answer
    for call in facts.lookups:
        if not _requestable(call) or call.options:
            continue
        asks = [f for f in reported_fields(call, said) if spoke_of(f, facts.user_words)]
        if asks:
            goals.append(Goal(_label([call]), (call,), tuple(asks)))
    return goals


# Fields a lookup request does not ask for: who the user is, which they already know.
# A bare "id" is some record's key, not something a user asks to be told.
IDENTITY_FIELDS = frozenset(
    {*USER_FIELDS, "first_name", "last_name", "name", "full_name", "dob", "id"}
)
# Fields named for their place, not their meaning: what a request would call them.
FIELD_WORDS = {"output": "result", "message": "result"}


def reported_fields(call: ToolCall, said: str) -> list[str]:
    """The fields of `call`'s answer whose values the agent reported in `said`, all of them
    when the answer lists several, in words ("membership", "flight number"), leaving out the
    user's identity and any value the user supplied as an argument: what a lookup request
    asks to be told."""
    given = " ".join(compact(v) for v in call.arguments.values())
    values: dict[str, list[str]] = {}  # flight_number, flight_number_2, ... under one field
    for key, value in call.returned.items():
        values.setdefault(re.sub(r"_\d+$", "", key), []).append(value)
    fields = []
    for base, found in values.items():
        if base in IDENTITY_FIELDS or any(len(v) < 2 or whole_word(v, given) for v in found):
            continue
        if all(_told(base, v, said) for v in found):  # every flight number, not one of four
            words = base.replace("_", " ")
            fields.append(FIELD_WORDS.get(words, words))
    return list(dict.fromkeys(fields))


def spoke_of(field: str, words: str) -> bool:
    """Whether `words` speak of `field` (in words, as `reported_fields` gives it): a
    one-word field by its stem ("member" for membership), a longer one whole ("flight
    number"), since its last word alone ("number") could be anything."""
    return _says(field, words) if " " in field else _says(field[:STEM], words)


def _told(field: str, value: str, said: str) -> bool:
    """Whether the agent told `value` of `field`. A plain word ("available", "silver") is
    only told where what it is is said too ("status", "member"): alone it is just a word."""
    if not whole_word(value, said):
        return False
    if re.fullmatch(r"[a-z][a-z ]*", value.lower()) and value.lower() == value:
        return _says(field.split("_")[-1][:STEM], said)
    return True


STEM = 6  # a field word's stem: "member" for membership, "status" for statuses


def _says(start: str, text: str) -> bool:
    """Whether a word of `text` starts with `start`, in any case."""
    return re.search(rf"\b{re.escape(start)}", text, re.IGNORECASE) is not None


def number_options(goals: list[Goal]) -> str:
    return "\n".join(f"{i}. {goal.label}" for i, goal in enumerate(goals, 1))


def _requestable(call: ToolCall) -> bool:
    """A call a user could ask for by its arguments: not one driven by the agent's own code
    or instructions (Who&When's execute_code and WebSurfer), which no user would write."""
    return all(len(str(v)) <= MAX_REQUESTABLE_ARG for v in call.arguments.values())


def _label(calls: list[ToolCall]) -> str:
    return "; ".join(call.describe() for call in calls)
