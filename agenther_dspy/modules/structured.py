"""The structured relabeler: code does what code can, the LM does small, checkable steps.

Code reads the run's facts (`modules.facts`) and offers the coherent goals the run achieved
as numbered options. The LM makes two small steps, each a `dspy.Predict` so compiling still
applies: `choose_goal` picks one option (skipped when there is only one), and
`phrase_request` writes the user's message for the chosen actions. Code then checks the
message: every gold-free check of `request_checks`, plus ids whole and among the facts or
the user's own words, the user named when the run knows who they are, every chosen action's
entity named, and nothing asked that failed or was handed off. A failed check is fed back to
the next attempt as `feedback` (the shape of `dspy.Refine`). When every attempt fails, the
request is built from templates of the chosen actions, and checked the same way.
"""

from __future__ import annotations

import re

import dspy

import agenther_dspy.text as tx
from agenther_dspy.modules.facts import (
    STATE_VERBS,
    USER_FIELDS,
    RunFacts,
    ToolCall,
    agent_words,
    changes_state,
    name_words,
    run_facts,
    whole_word,
    word_pattern,
)
from agenther_dspy.modules.goals import Goal, candidate_goals, number_options
from agenther_dspy.modules.stages import ANSWER_ERRORS
from agenther_dspy.request_checks import RunEvidence, check_request
from agenther_dspy.schema import Trajectory
from agenther_dspy.settings import ProgramSettings
from agenther_dspy.signatures import ChooseGoal, PhraseRequest

FIRST_TEMPERATURE = 0.3
RETRY_TEMPERATURE = 0.7
# A compiled `phrase_request` may hold a pool of demos (the `nearest` optimizer). A small
# model copies what it is shown, so each run is shown only the few whose drafts are most
# like its own: a cancellation sees cancellations.
NEAREST_SHOWN = 3
HANDOFF_WORDS = re.compile(r"\b(?:transfer|human agent|representative|supervisor)\b", re.I)

# How each kind of action reads in the user's words; any other call reads generically as
# "please <name words> <entity> with <argument> <value>, ...". A lookup then asks for the
# fields whose values the agent reported ("... and tell me the membership").
TEMPLATES: dict[str, str] = {
    "cancel_reservation": "cancel reservation {reservation_id}",
    "update_reservation_flights": "change reservation {reservation_id} to {cabin} on flights"
    " {flights}, paying any difference with {payment_id}",
    "update_reservation_baggages": "set reservation {reservation_id} to {total_baggages}"
    " checked bags, {nonfree_baggages} of them paid, charged to {payment_id}",
    "update_reservation_passengers": "change the passengers on reservation {reservation_id}"
    " to {passengers}",
    "book_reservation": "book a {flight_type} in {cabin} from {origin} to {destination}"
    " on flights {flights} for {passengers}, paying {payment_methods}",
    "cancel_pending_order": "cancel my pending order {order_id}",
    "refuel_data": "add {gb_amount} GB of data to line {line_id}",
    "enable_roaming": "turn on roaming for line {line_id}",
    "send_certificate": "send me a certificate of ${amount}",
    "get_reservation_details": "look up reservation {reservation_id}",
    "get_user_details": "look up my profile",
    "search_direct_flight": "find direct flights from {origin} to {destination} on {date}",
    "search_onestop_flight": "find one-stop flights from {origin} to {destination} on {date}",
    "get_flight_status": "check the status of flight {flight_number} on {date}",
    "get_order_details": "look up my order {order_id}",
}
# An action some of whose arguments only repeat what the entity already had (`ToolCall.kept`)
# reads without them: a cabin change that keeps the flights.
KEPT_TEMPLATES: dict[tuple[str, str], str] = {
    ("update_reservation_flights", "flights"): "change reservation {reservation_id} to {cabin},"
    " keeping its flights, paying any difference with {payment_id}",
}
# Arguments whose values are words joined by underscores ("round_trip", "basic_economy"),
# and the values a user would word otherwise.
WORDY_ARGUMENTS = frozenset({"cabin", "flight_type"})
VALUE_WORDS = {"one_way": "one-way trip"}
# Words that only a customer's own message has: the request must speak as the user.
USER_VOICE = re.compile(r"\b(?:i|i'm|i'd|my|me|mine|please|can you|could you)\b", re.I)
# Text of the facts or of the step's fields pasted into the message.
PASTED = re.compile(
    r"\b(?:handed off|looked up|user confirmed|final answer|done|failed)\s*:"
    r"|\b\w+\(\w+=|\b(?:with|under|respond with) avoid\b|\bfeedback\b|\n",
    re.IGNORECASE,
)
GREETING = re.compile(r"^\W*(?:hi|hello|hey|dear|good (?:morning|afternoon|evening))\b", re.I)


class StructuredRelabel(dspy.Module):
    """Choose a goal among the run's achievements, phrase it, check it, retry with feedback."""

    def __init__(self, max_attempts: int = ProgramSettings.max_attempts) -> None:
        super().__init__()
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        self.max_attempts = max_attempts
        self.choose_goal = dspy.Predict(ChooseGoal)
        self.phrase_request = dspy.Predict(PhraseRequest)

    def forward(self, trajectory: Trajectory) -> dspy.Prediction:
        facts = run_facts(trajectory)
        said = agent_words(trajectory)
        goals = candidate_goals(facts, said)
        attempts: list[dict] = []
        if not goals:
            return dspy.Prediction(
                facts=facts, goals=goals, goal=None, request="", source="none", attempts=[]
            )
        goal = self.choose(facts, goals)
        draft = template_request(facts, goal)
        evidence = RunEvidence.of(trajectory)
        feedback = ""
        for attempt in range(1, self.max_attempts + 1):
            record: dict = {"attempt": attempt, "source": "lm"}
            attempts.append(record)
            try:
                request = self.phrase(facts, draft, feedback, attempt)
            except ANSWER_ERRORS as exc:
                record["outcome"] = f"unparseable answer: {' '.join(str(exc).split())[:160]}"
                continue
            record["request"] = request
            problems = request_problems(request, trajectory, facts, goal, evidence)
            problems += rewrite_problems(request, draft)
            if not problems:
                record["outcome"] = "passed the checks"
                return dspy.Prediction(
                    facts=facts, goals=goals, goal=goal, request=request, source="lm",
                    attempts=attempts,
                )  # fmt: skip
            feedback = "\n".join(f"- {p}" for p in problems)
            record["outcome"] = f"failed the checks: {'; '.join(problems)}"
        request = draft
        problems = request_problems(request, trajectory, facts, goal, evidence)
        attempts.append(
            {
                "attempt": len(attempts) + 1,
                "source": "template",
                "request": request,
                "outcome": "passed the checks"
                if not problems
                else f"failed the checks: {'; '.join(problems)}",
            }
        )
        return dspy.Prediction(
            facts=facts,
            goals=goals,
            goal=goal,
            request=request if not problems else "",
            source="template",
            attempts=attempts,
        )

    def choose(self, facts: RunFacts, goals: list[Goal]) -> Goal:
        """The LM's choice among the options; only one option needs no choice. An answer
        out of range or unparseable falls back to the last option (everything achieved)."""
        if len(goals) == 1:
            return goals[0]
        try:
            choice = self.choose_goal(facts=facts.render(), options=number_options(goals)).choice
        except ANSWER_ERRORS:
            return goals[-1]
        return goals[choice - 1] if 1 <= choice <= len(goals) else goals[-1]

    def phrase(self, facts: RunFacts, draft: str, feedback: str, attempt: int) -> str:
        temperature = FIRST_TEMPERATURE if attempt == 1 else RETRY_TEMPERATURE
        out = self.phrase_request(
            user=who_text(facts) or "not known",
            draft=draft,
            avoid=avoid_text(facts),
            feedback=feedback,
            demos=nearest_demos(self.phrase_request.demos, draft),
            config={"temperature": temperature, "rollout_id": attempt},
        )
        return " ".join(str(out.request).split())


def avoid_text(facts: RunFacts) -> str:
    return "\n".join(f"- {f}" for f in facts.failures) or "nothing"


def nearest_demos(demos: list, draft: str, k: int = NEAREST_SHOWN) -> list:
    """The `k` demos whose drafts share most words with `draft` (token F1), nearest last,
    where the model reads it just before its own; all of them when there are `k` or fewer."""
    if len(demos) <= k:
        return demos
    return sorted(demos, key=lambda demo: tx.token_f1(demo["draft"], draft))[-k:]


# The customer spoken of in the third person: the message is about them, not from them.
THIRD_PERSON = re.compile(r"\bthe (?:customer|user|client|passenger|agent)\b", re.I)
MAX_GROWTH = 1.3  # a rewrite may be this much longer than the draft
# Words that make a request conditional or narrow it. A draft says what the run did, with no
# condition; a rewrite that adds one ("if that card can't cover two seats, book only me",
# copied from a demo) asks for something the run never weighed.
CONDITION_WORDS = re.compile(
    r"\b(?:if|unless|otherwise|only|except|instead|in case|as long as|provided that)\b", re.I
)


def rewrite_problems(request: str, draft: str) -> list[str]:
    """What the LM's rewrite added to the draft: repetition, length, the third person, a
    condition the draft did not have."""
    problems = []
    drafted = {m.lower() for m in CONDITION_WORDS.findall(draft)}
    added = [m for m in CONDITION_WORDS.findall(request) if m.lower() not in drafted]
    if added:
        problems.append(
            f"added_condition: {added[0]!r} is not in the draft; ask for what it asks, "
            "with no condition."
        )
    sentences = [" ".join(x.lower().split()) for x in re.split(r"(?<=[.!?])\s+", request)]
    long = [x for x in sentences if len(x.split()) >= 6]
    if len(long) != len(set(long)) or len(request) > MAX_GROWTH * len(draft) + 20:
        problems.append("rambling: say each thing once; keep to what the draft asks.")
    if THIRD_PERSON.search(request):
        problems.append("third_person: you are the customer; write I and my, not the customer.")
    return problems


def request_problems(
    request: str,
    trajectory: Trajectory,
    facts: RunFacts,
    goal: Goal,
    evidence: RunEvidence | None = None,
) -> list[str]:
    """Every reason code finds to refuse `request` for `goal`: `request_checks` plus the
    checks only the facts allow."""
    problems = [str(p) for p in check_request(request, trajectory, evidence=evidence)]
    if not USER_VOICE.search(request):
        problems.append("not_user_voice: write it as the customer's own message (I, my, please).")
    name = facts.user.get("name")
    if GREETING.search(request) or (name and re.match(rf"\W*{re.escape(name)}\s*[,!]", request)):
        problems.append("agent_speech: do not greet or address the customer; you are them.")
    if pasted := PASTED.search(request):
        problems.append(f"pasted: {pasted.group(0)!r} is the input's text; write a message.")
    known = facts_text(facts)
    ids = [value for kind, value in tx.specifics(request) if kind == "id"]
    unknown = [i for i in ids if not whole_word(i, known)]
    if unknown:
        problems.append(
            f"unknown_id: {', '.join(unknown[:4])} is not an id the run used or returned, "
            "whole; copy ids exactly."
        )
    who = [v for k, v in facts.user.items() if k in ("user_id", "customer_id", "account_id")]
    if who and not any(whole_word(v, request) for v in facts.user.values()):
        problems.append(f"no_user: say who you are ({who[0]}).")
    entities = (_entity_value(c) for c in goal.calls)
    missing = [v for v in entities if v and not whole_word(v, request)]
    if missing:
        problems.append(f"missing: name {', '.join(dict.fromkeys(missing))} in the message.")
    asked_failed = [
        value
        for call in facts.failed_calls
        if (value := _entity_value(call))
        and whole_word(value, request)
        and not whole_word(value, known)
    ]
    if asked_failed or (any(c.is_handoff for c in facts.calls) and HANDOFF_WORDS.search(request)):
        problems.append(
            f"asks_failed: do not ask for what failed or was handed off "
            f"({', '.join(asked_failed) or 'a transfer'})."
        )
    return problems


def facts_text(facts: RunFacts) -> str:
    """What a request may name: the successful calls' arguments and results, the user's
    own words and the final answer."""
    parts = [facts.user_words, facts.final_answer, *facts.user.values()]
    for call in facts.achieved:
        parts.append(call.describe())
        parts.extend(call.returned.values())
    return "\n".join(parts)


def who_text(facts: RunFacts) -> str:
    """How the user introduces themselves: "Aarav Ahmed, user id aarav_ahmed_6699". One
    identifier is enough, the account's first (`USER_FIELDS` order): an email or phone the
    user typed may not be the one on file."""
    name, key = facts.user.get("name", ""), _identifier(facts)
    ids = [f"{key.replace('_', ' ')} {facts.user[key]}"] if key else []
    return ", ".join([name, *ids] if name else ids)


def _identifier(facts: RunFacts) -> str:
    """The user field that identifies the user, the account's first: "" when none."""
    return next((k for k in USER_FIELDS if k in facts.user), "")


def action_phrase(call: ToolCall, asks: tuple[str, ...] = ()) -> str:
    """One action in plain words with its exact values; a lookup also asks to be told
    `asks`, its goal's fields (`Goal.asks`)."""
    phrase = _phrase(call)
    fields = [] if call.changes_state else list(asks[:3])
    if not fields:
        return phrase
    return f"{phrase} and tell me the {_and(fields)}"


def _phrase(call: ToolCall) -> str:
    kept = (KEPT_TEMPLATES.get((call.name, a)) for a in sorted(call.kept))
    if template := next((t for t in kept if t), TEMPLATES.get(call.name)):
        values = {
            k: VALUE_WORDS.get(_plain(v), _plain(v).replace("_", " "))
            if k in WORDY_ARGUMENTS
            else _plain(v)
            for k, v in call.arguments.items()
        }
        try:
            return template.format(**values)
        except (KeyError, IndexError):
            pass
    return generic_phrase(call)


# Arguments that name the file a tool acts on, when its name says "file", and arguments
# that name the record it acts for, like an id does ("for account sb-771203").
FILE_ARGUMENTS = ("path", "file", "filename", "file_path")
RECORD_ARGUMENTS = ("account", "order", "customer", "ticket", "reservation")
# Arguments whose value says enough with a preposition: "on 2024-10-08", "at 19:00".
PREPOSITIONS = {"date": "on", "day": "on", "time": "at"}


def generic_phrase(call: ToolCall) -> str:
    """Any other action as "<verb> <what> with <argument> <value>, ... and ...": the
    argument the name speaks of follows it ("book hotel Casa do Largo", "edit file
    utils.py"), an id or a record reads "for order A-20931", a flag reads as its words
    ("append totals row", "not earliest"), and a date or a time last ("on 2024-10-08 at
    19:00")."""
    words = verb_first(call.name)
    arguments = {k: v for k, v in call.arguments.items() if k not in USER_FIELDS}
    named = next(
        (k for k in arguments if k in words[1:] or ("file" in words[1:] and k in FILE_ARGUMENTS)),
        "",
    )
    head = " ".join(words)
    if named:
        head += f" {_plain(arguments.pop(named))}"
    elif entity := _entity_key(call) or next((k for k in RECORD_ARGUMENTS if k in arguments), ""):
        noun = entity.removesuffix("_id").replace("_", " ")
        head += f" for {noun} {_plain(arguments.pop(entity))}"
    when = [
        f"{PREPOSITIONS[key]} {arguments.pop(key)}"
        for key in list(arguments)
        if key in PREPOSITIONS and isinstance(arguments[key], str)
    ]
    rest = [_argument(key, value) for key, value in arguments.items()]
    return " ".join([head, *([f"with {_and(rest)}"] if rest else []), *when])


def _argument(key: str, value: object) -> str:
    words = key.replace("_", " ")
    if isinstance(value, bool):
        return words if value else f"not {words}"
    return f"{words} {_plain(value)}"


def _and(items: list[str]) -> str:
    """ "a", "a and b", "a, b and c"; "" for none."""
    return " and ".join(filter(None, [", ".join(items[:-1]), *items[-1:]]))


def verb_first(name: str) -> list[str]:
    """A tool's name as words, its action verb first: subscription_change -> change
    subscription, sheets.write_formula -> write sheets formula."""
    words = name_words(name)
    verb = next((w for w in words if w in STATE_VERBS), "") if changes_state(name) else ""
    return [verb, *(w for w in words if w != verb)] if verb and words[0] != verb else words


HOLE = "\x00"  # where a group's entities go


def grouped_phrases(calls: tuple[ToolCall, ...], asks: tuple[str, ...] = ()) -> list[str]:
    """One phrase per action, with the same action on several entities said once:
    "cancel reservations IFOYYZ and NQNU5R", "change reservations JG7FMM and 2FBBAH to
    economy, keeping their flights, ..."."""
    groups: dict[str, list[str]] = {}
    for call in calls:
        phrase, value = action_phrase(call, asks), _entity_value(call)
        pattern = word_pattern(value)
        if value and call.changes_state and len(re.findall(pattern, phrase)) == 1:
            groups.setdefault(re.sub(pattern, HOLE, phrase), []).append(value)
        else:
            groups.setdefault(phrase, [])
    phrases = []
    for shape, values in groups.items():
        if len(values) > 1:
            shape = re.sub(rf"(\w+) {HOLE}", rf"\1s {HOLE}", shape, count=1)
            shape = shape.replace(" its ", " their ")
        phrases.append(shape.replace(HOLE, _plain(values)) if values else shape)
    return phrases


def template_request(facts: RunFacts, goal: Goal) -> str:
    """The request built from templates of the chosen actions: the LM's draft, and the
    answer when every LM attempt failed the checks."""
    actions = grouped_phrases(goal.calls, goal.asks)
    asked = actions[0] if len(actions) == 1 else ", ".join(actions[:-1]) + f", and {actions[-1]}"
    who = who_text(facts)
    if not who:
        return f"Could you please {asked}?"
    if "name" not in facts.user:  # "My user id is james_taylor_7043.", not "I'm user id ..."
        key = _identifier(facts)
        return f"My {key.replace('_', ' ')} is {facts.user[key]}. Please {asked}."
    return f"I'm {who}. Please {asked}."


def _entity_key(call: ToolCall) -> str:
    for key, value in call.arguments.items():
        if key.endswith("_id") and key not in USER_FIELDS and isinstance(value, str | int):
            return key
    return ""


def _entity_value(call: ToolCall) -> str:
    key = _entity_key(call)
    return str(call.arguments[key]) if key else ""


def _plain(value: object) -> str:
    """A value as a user would write it: flights [{"flight_number": "HAT057", "date": ...}]
    become "HAT057 on 2024-05-22 and HAT146 on 2024-05-22"."""
    if isinstance(value, dict):
        if {"payment_id", "amount"} <= value.keys():
            return f"${value['amount']} with {value['payment_id']}"
        if {"first_name", "last_name"} <= value.keys():
            born = f" (born {value['dob']})" if value.get("dob") else ""
            return f"{value['first_name']} {value['last_name']}{born}"
        if len(value) > 2:  # a record of its own: its fields by name
            fields = (f"{k.replace('_', ' ')} {_plain(v)}" for k, v in value.items())
            return f"({', '.join(fields)})"
        return " on ".join(_plain(v) for v in value.values())
    if isinstance(value, list):
        return _and([_plain(v) for v in value])
    return str(value)
