"""What a run established, read by code: the facts the structured relabeler works from.

A small model asked to read a whole log and write a request mixes agent speech into the
user's voice, cuts ids and asks for what failed. Most of what it needs is in the log in a
form code can read exactly: which tools were called with which arguments, whether each call
succeeded, the ids and amounts it returned, what the user said and confirmed. `run_facts`
extracts them (no LM), `goals.candidate_goals` groups the successful calls into a few
coherent goals, and `RunFacts.render` gives the LM steps a compact text of a few hundred characters
instead of the whole log.

Calls are sorted by name into three kinds:

- *state-changing* (`changes_state`): the name's leading verb is one of `STATE_VERBS`
  (book_reservation, cancel_reservation, update_reservation_flights, refuel_data,
  enable_roaming, send_certificate, toggle_..., ...), or the name leads with a noun and a
  later word is one (subscription_change, sheets.write_formula) — but never a name that
  leads with a verb of looking (`LOOKUP_VERBS`: list_open_orders looks);
- *hand-offs*: `transfer_*` calls pass the user to someone else and are never a goal;
- *lookups*: everything else that is a tool (get_/search_/list_/find_/check/calculate,
  web browsing, code execution), since a tool whose verb is unknown is safer read as
  looking something up than as acting on the user's behalf.

The conversational steps (`USER_TURN_ACTIONS`: the agent speaks and the observation is the
user's reply) and notes to self (`think`) are not calls at all.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from agenther_dspy.request_checks import USER_TURN_ACTIONS, failed_call
from agenther_dspy.schema import Trajectory

STATE_VERBS = frozenset(
    """book cancel update modify change upgrade downgrade add remove delete refund rebook
    move send create make set enable disable toggle turn reset refuel renew exchange return
    replace pay charge purchase buy order reserve schedule submit apply register suspend
    resume activate deactivate write save upload install deploy restart open close merge
    rename edit post grant revoke assign issue""".split()
)
LOOKUP_VERBS = frozenset(
    """get search list find check read fetch query lookup look view show calculate compute
    count describe inspect verify validate browse retrieve""".split()
)
# Nouns that name information, not an act: a name that ends in one reads something
# (refund_policy, order_status, account_balance), whatever verb-like word leads it.
INFO_NOUNS = frozenset(
    """policy policies status info information details balance history report summary
    availability quote quotes rates options eligibility""".split()
)
NOT_CALLS = frozenset({"think", "final_answer", "assistant"})
HANDOFF_PREFIX = "transfer"

# The returned fields worth keeping: ids, amounts, dates, names, statuses.
_KEY_FIELD = re.compile(
    r"(?:^|_)(?:id|number|code|amount|price|total|cost|charge|fee|balance|refund|date|name"
    r"|status|cabin|message|result|plan|membership|tier|level)s?$"
    r"|^(?:first_name|last_name|email|phone_number)$",
    re.IGNORECASE,
)
MAX_VALUES_PER_CALL = 12  # every flight of a reservation, for `reported_fields`
MAX_VALUE_CHARS = 40
MAX_OUTPUT_CHARS = 120
MAX_FAILURES = 6

# A user reply that agrees to what the agent proposed.
_CONFIRMS = re.compile(
    r"^\W*(?:yes|yeah|yep|sure|ok(?:ay)?|correct|confirm(?:ed)?)\b|\b(?:please (?:go ahead|proceed"
    r"|do)|go ahead|proceed|i confirm|that'?s (?:right|correct)|sounds good)\b",
    re.IGNORECASE,
)
# The agent declining a request ("I'm sorry, but I cannot ...").
_REFUSAL = re.compile(
    r"\b(?:(?:i|we) (?:cannot|can't|can not|am unable to|are unable to|won't be able to)"
    r"|(?:i'?m|we'?re) (?:not able|unable) to|not (?:allowed|permitted|eligible))\b[^.!?\n]{0,120}",
    re.IGNORECASE,
)
# Who the user says they are, in their own words.
_SAID_ID = re.compile(
    r"\b(?:user|customer|member|account) ?id(?: is|:)?\s+'?"
    r"((?=[A-Za-z0-9_-]*[\d_])[A-Za-z0-9_-]{3,})",  # an id has a digit or an underscore
    re.IGNORECASE,
)
_SAID_NAME = re.compile(r"\bmy name is ([A-Z][a-z]+(?: [A-Z][a-z]+){0,2})")
_PHONE = re.compile(r"(?<!\d)(?:\+?1[ -]?)?\(?\d{3}\)?[ -]\d{3}-\d{4}(?!\d)")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# Argument names that say who the user is.
USER_FIELDS = ("user_id", "customer_id", "account_id", "member_id", "phone_number", "email")


@dataclass(frozen=True)
class ToolCall:
    """One tool call: what was asked, whether it worked and the key values it returned."""

    step: int  # 1-based, as the rendered run numbers its steps
    name: str
    arguments: dict[str, Any]
    succeeded: bool
    changes_state: bool
    returned: dict[str, str] = field(default_factory=dict)
    error: str = ""
    # The arguments whose values the entity already had, by the last record of it the log
    # showed before the call: an update that "changes" the flights to the same flights.
    kept: frozenset[str] = frozenset()
    options: int = 0  # how many results a search-like answer listed (a JSON list: 0 if not)
    # For an action, the arguments its own answer records otherwise ("cabin: economy asked,
    # business recorded"): what it asked for is not what the log shows done.
    contradicted: tuple[str, ...] = ()

    @property
    def is_handoff(self) -> bool:
        return self.name.lower().startswith(HANDOFF_PREFIX)

    @property
    def verb(self) -> str:
        return name_words(self.name)[0] if name_words(self.name) else self.name

    def describe(self) -> str:
        """`cancel_reservation(reservation_id=IFOYYZ)`: the call with its exact values."""
        return f"{self.name}({_args_text(self.arguments)})"


@dataclass(frozen=True)
class RunFacts:
    """What a run shows, by code: its calls, the user, what they confirmed, what failed."""

    calls: tuple[ToolCall, ...]
    user: dict[str, str]  # user_id / customer_id / name / phone_number / email
    confirmations: tuple[str, ...]  # the user's replies that agreed to something
    final_answer: str
    failures: tuple[str, ...]  # errored calls and the agent's refusals
    user_words: str  # everything the user said, and their goal: what they knew

    @property
    def achieved(self) -> list[ToolCall]:
        """The calls that worked as asked: no error, no hand-off, no argument contradicted."""
        return [c for c in self.calls if c.succeeded and not c.is_handoff and not c.contradicted]

    @property
    def state_changes(self) -> list[ToolCall]:
        return [c for c in self.achieved if c.changes_state]

    @property
    def lookups(self) -> list[ToolCall]:
        return [c for c in self.achieved if not c.changes_state]

    @property
    def failed_calls(self) -> list[ToolCall]:
        return [c for c in self.calls if not c.succeeded]

    def who(self) -> str:
        """The user as they would introduce themselves, or "" when the run does not say."""
        parts = [f"{key.replace('_', ' ')} {value}" for key, value in self.user.items()]
        return ", ".join(parts)

    def render(self, limit: int = 900) -> str:
        """The facts in a few hundred characters, for the LM steps."""
        lines = []
        if who := self.who():
            lines.append(f"user: {who}")
        for call in self.state_changes:
            lines.append(f"done: {call.describe()}")
        for call in self.lookups[-4:]:
            got = ", ".join(f"{k}={v}" for k, v in list(call.returned.items())[:3])
            asked = _clip(call.describe(), 120)
            lines.append(f"looked up: {asked}" + (f" -> {got}" if got else ""))
        for failure in self.failures[:3]:
            lines.append(f"failed: {_clip(failure, 140)}")
        if self.confirmations:
            lines.append(f"user confirmed: {self.confirmations[-1]}")
        if self.final_answer:
            lines.append(f"final answer: {_clip(self.final_answer, 160)}")
        text = "\n".join(lines)
        return text if len(text) <= limit else text[: limit - 1] + "…"


def changes_state(name: str) -> bool:
    """Whether a tool's name says it acts (cancel_reservation, subscription_change) rather
    than looks: a verb of looking anywhere (get_user, order_lookup), or a name that ends in
    what it reads (refund_policy), never acts."""
    words = name_words(name)
    if not words or name.lower().startswith(HANDOFF_PREFIX) or words[-1] in INFO_NOUNS:
        return False
    if any(w in LOOKUP_VERBS for w in words):
        return False
    return any(w in STATE_VERBS for w in words)


def is_call(name: str) -> bool:
    return name not in USER_TURN_ACTIONS and name.lower() not in NOT_CALLS


def parse_json(text: str) -> object:
    """A tool's answer as JSON, or None when it is plain text."""
    try:
        return json.loads(text)
    except (ValueError, TypeError):
        return None


def key_values(observation: str, data: object = None) -> dict[str, str]:
    """The ids, amounts, dates and names a call returned: a handful, each short. `data` is
    the answer already parsed (`parse_json`), when the caller has it."""
    text = observation.strip()
    if data is None:
        data = parse_json(text)
    found: dict[str, str] = {}
    if isinstance(data, dict | list):
        _walk(data, found)
    elif text:
        output = text.split("Code output:", 1)[-1].strip()  # code execution: keep the output
        found["output"] = _clip(" ".join(output.split()), MAX_OUTPUT_CHARS)
    return found


def run_facts(trajectory: Trajectory) -> RunFacts:
    """The facts of one run, by code alone."""
    calls: list[ToolCall] = []
    user: dict[str, str] = {}
    confirmations: list[str] = []
    failures: list[str] = []
    user_words = [
        trajectory.original_prompt,
        str(trajectory.metadata.get("initial_user_message") or ""),
    ]
    records: dict[str, dict] = {}  # the last record the log showed of each id
    for number, step in enumerate(trajectory.steps, 1):
        if step.action_name in USER_TURN_ACTIONS:
            reply = step.observation.strip()
            user_words.append(reply)
            if reply and _CONFIRMS.search(reply[:200]):
                confirmations.append(_clip(reply, 120))
            said = str(step.action_input.get("content") or "")
            if refusal := _REFUSAL.search(said):
                failures.append(f"agent declined: {_clip(refusal.group(0), 100)}")
            continue
        if not is_call(step.action_name):
            continue
        ok = bool(step.observation.strip()) and not failed_call(step.observation)
        data = parse_json(step.observation) if ok else None
        acts = changes_state(step.action_name)
        call = ToolCall(
            step=number,
            name=step.action_name,
            arguments=dict(step.action_input),
            succeeded=ok,
            changes_state=acts,
            returned=key_values(step.observation, data) if ok else {},
            error="" if ok else _clip(" ".join(step.observation.split()), 100),
            kept=_kept(step.action_input, records),
            options=len(data) if isinstance(data, list) else 0,
            contradicted=_contradicted(step.action_input, data) if acts else (),
        )
        calls.append(call)
        if isinstance(data, dict):
            _remember(data, records)
        if not ok:
            failures.append(_clip(f"{call.describe()}: {call.error or 'no answer'}", 200))
        elif call.contradicted:
            failures.append(_clip(f"{call.describe()}: {call.contradicted[0]}", 200))
        for key in USER_FIELDS:
            value = step.action_input.get(key)
            if isinstance(value, str) and value.strip() and key not in user:
                user[key] = value.strip()
        names = (call.returned.get("first_name"), call.returned.get("last_name"))
        full = " ".join(str(n) for n in names) if all(names) else call.returned.get("full_name")
        looks_up_user = not call.changes_state and any(k in call.arguments for k in USER_FIELDS)
        if call.succeeded and full and looks_up_user and "name" not in user:
            user["name"] = full  # the account's holder, as the lookup of the user returned it
        if call.is_handoff:
            failures.append(f"handed off: {call.name}")
    said = "\n".join(user_words[2:])
    if "user_id" not in user and "customer_id" not in user and (m := _SAID_ID.search(said)):
        user["user_id"] = m.group(1)
    if m := _SAID_NAME.search(said):
        user.setdefault("name", m.group(1))
    if "phone_number" not in user and (m := _PHONE.search(said)):
        user["phone_number"] = m.group(0)
    if "email" not in user and (m := _EMAIL.search(said)):
        user["email"] = m.group(0)
    return RunFacts(
        calls=tuple(calls),
        user=user,
        confirmations=tuple(confirmations),
        final_answer=trajectory.final_answer.strip(),
        failures=tuple(dict.fromkeys(failures))[:MAX_FAILURES],
        user_words="\n".join(w for w in user_words if w),
    )


def _remember(data: dict, records: dict[str, dict]) -> None:
    """Keep a returned record under each of its top-level ids (reservation_id=...)."""
    for key, value in data.items():
        if key.endswith("_id") and key not in USER_FIELDS and isinstance(value, str | int):
            records[f"{key}={value}"] = data


def _kept(arguments: dict[str, Any], records: dict[str, dict]) -> frozenset[str]:
    """The arguments whose values the record of the call's entity already held."""
    record = next(
        (records[f"{k}={v}"] for k, v in arguments.items() if f"{k}={v}" in records), None
    )
    if record is None:
        return frozenset()
    return frozenset(
        key
        for key, value in arguments.items()
        if not key.endswith("_id") and key in record and _same_value(value, record[key])
    )


def _contradicted(arguments: dict[str, Any], answer: object) -> tuple[str, ...]:
    """The scalar arguments that the answer's own record holds with another value."""
    if not isinstance(answer, dict):
        return ()
    return tuple(
        f"{key}: {value} asked, {answer[key]} recorded"
        for key, value in arguments.items()
        if isinstance(value, str | int | float)
        and isinstance(answer.get(key), str | int | float)
        and str(value).lower() != str(answer[key]).lower()
    )


def _same_value(given: object, held: object) -> bool:
    """Whether an argument equals a record's field; items of a list compare on the fields
    the argument gives ({flight_number, date} against the full flight record)."""
    if isinstance(given, list) and isinstance(held, list):
        return len(given) == len(held) and all(
            _same_value(g, h) for g, h in zip(given, held, strict=True)
        )
    if isinstance(given, dict) and isinstance(held, dict):
        return all(k in held and str(held[k]) == str(v) for k, v in given.items())
    return str(given) == str(held)


def word_pattern(value: str) -> str:
    """A regex for `value` as a whole word: "DF89" does not match inside "DF89BM"."""
    return rf"(?<![A-Za-z0-9_]){re.escape(value)}(?![A-Za-z0-9_])"


def whole_word(value: str, text: str) -> bool:
    return re.search(word_pattern(value), text, re.IGNORECASE) is not None


def agent_words(trajectory: Trajectory) -> str:
    """What the agent told the user, and its final answer: where a lookup gets reported."""
    said = [
        str(step.action_input.get("content") or "")
        for step in trajectory.steps
        if step.action_name in USER_TURN_ACTIONS
    ]
    return "\n".join([*said, trajectory.final_answer])


def _walk(node: object, found: dict[str, str]) -> None:
    if len(found) >= MAX_VALUES_PER_CALL:
        return
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, dict | list):
                _walk(value, found)
            elif (
                isinstance(value, str | int | float)
                and not isinstance(value, bool)
                and _KEY_FIELD.search(str(key))
                and str(value).strip()
            ):
                name, n = str(key), 1
                while name in found:  # the same field of a later item: flight_number_2
                    n += 1
                    name = f"{key}_{n}"
                found[name] = _clip(str(value), MAX_VALUE_CHARS)
    elif isinstance(node, list):
        for item in node[:3]:
            _walk(item, found)


def name_words(name: str) -> list[str]:
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", name)
    return [w.lower() for w in re.split(r"[\s_\-.]+", spaced) if w]


def _args_text(arguments: dict[str, Any], limit: int = 240) -> str:
    parts = [f"{key}={compact(value)}" for key, value in arguments.items()]
    return _clip(", ".join(parts), limit)


def compact(value: object) -> str:
    """A value without JSON punctuation: [HAT057 2024-05-22, HAT146 2024-05-22]."""
    if isinstance(value, dict):
        return " ".join(compact(v) for v in value.values())
    if isinstance(value, list):
        return "[" + ", ".join(compact(v) for v in value) + "]"
    return str(value)


def _clip(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"
