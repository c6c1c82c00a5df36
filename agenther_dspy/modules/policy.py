"""Domain rules code can check: the actions a run took that its domain forbids.

A run whose agent broke its domain's policy is no clean demonstration of any request: a
request that describes it rewards the breach, and one that leaves the breach out
misdescribes the run. Such runs look fine to every gold-free check of the request, and a
small judge cannot see them either. Many of them can be read exactly from the log, because a
state-changing call's answer (and the lookups before it) carry the record it acted on.

`breaches(trajectory)` returns each one with its step and rule. The rules:

- **Any domain, paid actions.** A call that changes state and whose answer shows a new
  payment (`payment_history`) charged an amount the agent never stated to the user: the
  user could not have agreed to it, and often the agent quoted something else.
- **Airline** (the tau-bench airline domain; its policy is public, and its clock is fixed at
  `AIRLINE_NOW`, the "current time" that policy states):
  - a cancellation of a reservation with a flight already flown, or leaving on the policy's
    current day (the reservation gives the day, not the hour);
  - a cancellation that none of the policy's grounds allow: booked within the last 24
    hours, business cabin, travel insurance with a reason it covers (health or weather, in
    the user's words), or a flight the airline cancelled;
  - a flight change on a basic economy reservation that stays basic economy (its cabin
    may change first, its flights may not);
  - a certificate sent to a regular member with no business or insured booking in sight;
  - a certificate for a delayed flight when no reservation was changed or cancelled (the
    policy compensates a delay only together with a change or cancellation);
  - new flights that leave the reservation's origin, destination or trip type;
  - new flights at fares the agent never quoted, when it quoted others.

A rule only fires on what the log shows: a record it cannot read is no breach.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from agenther_dspy.modules.facts import agent_words, changes_state, is_call, parse_json
from agenther_dspy.request_checks import USER_TURN_ACTIONS, failed_call
from agenther_dspy.schema import Trajectory

AIRLINE_NOW = datetime(2024, 5, 15, 15, 0)  # tau-bench airline policy: "2024-05-15 15:00 EST"
FREE_CANCEL_WINDOW = timedelta(hours=24)
# The reasons travel insurance covers, as a user would give them.
COVERED_REASON = re.compile(
    r"\b(?:health|sick|ill(?:ness)?|medical|hospital\w*|doctor|injur\w+|surgery|weather"
    r"|storm|hurricane|snow\w*|flood\w*)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Breach:
    """One action the domain forbids: where, which call, and the rule it broke."""

    step: int  # 1-based, as the rendered run numbers its steps
    call: str
    rule: str
    failure_type: str = "constraint_violation"

    def __str__(self) -> str:
        return f"step {self.step} {self.call}: {self.rule}"


def breaches(trajectory: Trajectory) -> list[Breach]:
    """Every action of the run that its domain's rules forbid, in order."""
    user_said = " ".join(
        s.observation for s in trajectory.steps if s.action_name in USER_TURN_ACTIONS
    )
    seen = _Seen(stated=_dollars(agent_words(trajectory)), user_said=user_said)
    found: list[Breach] = []
    for number, step in enumerate(trajectory.steps, 1):
        if not is_call(step.action_name) or failed_call(step.observation):
            continue
        answer = parse_json(step.observation)
        for rule in _rules_broken(step.action_name, step.action_input, answer, seen):
            found.append(Breach(number, *rule))
        seen.add(step.action_name, step.action_input, answer, step.observation)
    return found


@dataclass
class _Seen:
    """What the log has shown so far: the records a rule weighs an action against."""

    stated: list[float]  # every dollar amount the agent told the user
    user_said: str = ""  # everything the user said
    reservations: dict[str, dict] = field(default_factory=dict)  # the last record of each
    user: dict = field(default_factory=dict)
    flight_status: dict[str, str] = field(default_factory=dict)
    changed_reservation: bool = False  # a reservation was cancelled or updated

    def add(self, name: str, args: dict, answer: object, text: str) -> None:
        if isinstance(answer, dict) and "reservation_id" in answer and "flights" in answer:
            self.reservations[str(answer["reservation_id"])] = answer
        if isinstance(answer, dict) and "membership" in answer:
            self.user = answer
        if name == "get_flight_status" and args.get("flight_number"):
            self.flight_status[str(args["flight_number"])] = text
        if name.startswith(("cancel_reservation", "update_reservation")):
            self.changed_reservation = True


def _rules_broken(name: str, args: dict, answer: object, seen: _Seen) -> list[tuple[str, ...]]:
    """(call, rule, failure type) for each rule the call `name(args)` -> `answer` broke."""
    before = seen.reservations.get(str(args.get("reservation_id", "")), {})
    record = answer if isinstance(answer, dict) and "flights" in answer else before
    broken: list[tuple[str, ...]] = []
    call = f"{name}({args.get('reservation_id', '')})"
    if name == "cancel_reservation" and (why := _cancel_breach(record, seen)):
        broken.append((call, why))
    if name == "update_reservation_flights" and _flights_of_basic_changed(before, args):
        broken.append((call, "changed the flights of a basic economy reservation"))
    if (
        name == "send_certificate"
        and seen.user.get("membership") == "regular"
        and not any(_covered(r) for r in seen.reservations.values())
    ):
        why = "compensation for a regular member with no business or insured booking"
        broken.append((f"{name}({args.get('amount')})", why))
    statuses = " ".join(seen.flight_status.values())
    if (
        name == "send_certificate"
        and "delayed" in statuses
        and "cancelled" not in statuses
        and not seen.changed_reservation
    ):
        why = "compensation for a delay without a change or cancellation"
        broken.append((f"{name}({args.get('amount')})", why))
    if name == "update_reservation_flights" and (why := _route_changed(answer)):
        broken.append((call, why))
    if name == "update_reservation_flights" and (
        fares := _misquoted_fares(answer, before, seen.stated)
    ):
        broken.append(
            (call, f"the new flights cost {fares}, which the agent never quoted", "hallucination")
        )
    unstated = _unstated_charges(answer, before, seen.stated) if changes_state(name) else ""
    if unstated:
        misstated = "hallucination" if seen.stated else "constraint_violation"
        broken.append((call, f"charged {unstated} without telling the user", misstated))
    return broken


def _route_changed(answer: object) -> str:
    """Why the flights `answer` shows leave the reservation's origin, destination or trip
    type (the policy allows neither), or "" when they keep them or the log cannot tell."""
    if not isinstance(answer, dict):
        return ""
    flights = [f for f in answer.get("flights") or [] if isinstance(f, dict)]
    origin, destination = answer.get("origin"), answer.get("destination")
    if not flights or not origin or not destination or "origin" not in flights[0]:
        return ""
    ends = [flights[0].get("origin"), flights[-1].get("destination")]
    if answer.get("flight_type") == "round_trip":
        turned = any(f.get("destination") == destination for f in flights)
        if ends == [origin, origin] and turned:
            return ""
        return f"the new flights do not make the round trip {origin}-{destination}"
    if ends == [origin, destination]:
        return ""
    return f"the new flights go {ends[0]}-{ends[1]}, not {origin}-{destination}"


def _misquoted_fares(answer: object, before: dict, stated: list[float]) -> str:
    """The new flights' fares, when the agent quoted prices (`stated`) but neither any of
    them nor their sum: the user agreed to other numbers."""
    if not isinstance(answer, dict) or not stated:
        return ""
    old = _flight_numbers(before.get("flights"))
    new = [
        f for f in answer.get("flights") or []
        if isinstance(f, dict) and f.get("flight_number") not in old
    ]  # fmt: skip
    prices = [p for f in new if isinstance(p := f.get("price"), int | float)]
    if not prices:
        return ""
    people = max(1, len(answer.get("passengers") or []))
    quoted = [*prices, sum(prices), sum(prices) * people]
    if any(_same(q, s) for q in quoted for s in stated):
        return ""
    return " + ".join(f"${p:g}" for p in prices)


def _flights_of_basic_changed(before: dict, args: dict) -> bool:
    """A flight change that keeps a basic economy reservation in basic economy."""
    kept = args.get("cabin", "basic_economy")
    if before.get("cabin") != "basic_economy" or kept != "basic_economy":
        return False
    new = _flight_numbers(args.get("flights"))
    return bool(new) and new != _flight_numbers(before.get("flights"))


def _flight_numbers(flights: object) -> set[object]:
    """The flight numbers of a record's or a call's list of flights."""
    return {f.get("flight_number") for f in flights or [] if isinstance(f, dict)}


def _cancel_breach(record: dict, seen: _Seen) -> str:
    """Why the airline policy forbids cancelling `record`, or "" when it allows it (or the
    log does not show enough to tell). Insurance is a ground only for a reason it covers
    (health or weather), as the user gave it."""
    flights = [f for f in record.get("flights", []) if isinstance(f, dict)]
    dates = [d for f in flights if (d := _date(f.get("date")))]
    if not dates:
        return ""
    if min(dates).date() <= AIRLINE_NOW.date():  # the log gives the day, not the hour
        return f"a flight of it was already flown or leaves today ({min(dates).date()})"
    created = _date(record.get("created_at"))
    statuses = [seen.flight_status.get(str(f.get("flight_number")), "") for f in flights]
    grounds = [
        created is not None and AIRLINE_NOW - created <= FREE_CANCEL_WINDOW,
        record.get("cabin") == "business",
        record.get("insurance") == "yes" and COVERED_REASON.search(seen.user_said) is not None,
        any("cancelled" in status for status in statuses),
    ]
    if created is None or any(grounds):
        return ""
    insured = "insured for health or weather only" if record.get("insurance") == "yes" else ""
    return (
        f"{record.get('cabin', '?')} booking from {created.date()} "
        f"{insured or 'without insurance'}: no ground for a cancellation"
    )


def _covered(record: dict) -> bool:
    return record.get("cabin") == "business" or record.get("insurance") == "yes"


def _unstated_charges(answer: object, before: dict, stated: list[float]) -> str:
    """The new charges in `answer`'s payment history that the agent never stated, as text."""
    history = answer.get("payment_history") if isinstance(answer, dict) else None
    if not isinstance(history, list):
        return ""
    old = before.get("payment_history") if isinstance(before.get("payment_history"), list) else []
    new = [p for p in history[len(old) :] if isinstance(p, dict)]
    amounts = [a for p in new if isinstance(a := p.get("amount"), int | float) and a > 0]
    if not amounts:
        return ""
    if any(_same(a, s) for a in [*amounts, sum(amounts)] for s in stated):
        return ""
    return " and ".join(f"${a:g}" for a in amounts)


_AMOUNT = re.compile(r"\$\s?(\d[\d,]*(?:\.\d+)?)|(\d[\d,]*(?:\.\d+)?)\s?(?:dollars|usd)\b", re.I)


def _dollars(text: str) -> list[float]:
    found = []
    for match in _AMOUNT.finditer(text):
        raw = (match.group(1) or match.group(2)).replace(",", "")
        try:
            found.append(float(raw))
        except ValueError:
            continue
    return found


def _same(a: float, b: float) -> bool:
    return abs(a - b) < 0.01


def _date(value: object) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None
