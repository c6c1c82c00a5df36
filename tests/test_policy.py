"""Domain rules read from the log: real runs that broke the airline policy, real runs that
did not, and the certificate rule on a small hand-made run."""

from __future__ import annotations

import json

from conftest import labeled_run

from agenther_dspy.modules.detector import clear_cut
from agenther_dspy.modules.policy import breaches
from agenther_dspy.schema import Trajectory


def test_cancellations_without_ground_and_of_flown_trips_are_breaches():
    run = labeled_run("taubench-gpt-4o-airline-task29-trial1")
    found = breaches(run)
    assert [b.call for b in found] == [
        "cancel_reservation(UDMOP1)",
        "cancel_reservation(4XGCCM)",
    ]
    assert "basic_economy booking from 2024-05-09 without insurance" in found[0].rule
    assert "already flown or leaves today (2024-05-03)" in found[1].rule
    analysis = clear_cut(run)
    assert analysis is not None and not analysis.recoverable
    assert analysis.failure_type == "constraint_violation"


def test_a_charge_the_agent_misstated_is_a_breach():
    """The agent quoted $495; the update charged $1302."""
    run = labeled_run("taubench-gpt-4o-airline-task17-trial2")
    [found] = breaches(run)
    assert found.rule == "charged $1302 without telling the user"
    assert found.failure_type == "hallucination"


def test_clean_runs_break_no_rule():
    booking = labeled_run("tau2-grok-3-airline-task24-trial1-57dae868")  # paid as stated
    assert breaches(booking) == []
    # A basic economy booking upgraded to economy in the same call that moved its flights:
    # the policy lets the cabin change, so the flight change is allowed.
    upgraded = labeled_run("taubench-gpt-4o-airline-task22-trial1")
    assert breaches(upgraded) == []


def _certificate_run(membership: str, insurance: str = "no") -> Trajectory:
    user = {"user_id": "u_1", "membership": membership, "reservations": ["ABC123"]}
    reservation = {
        "reservation_id": "ABC123",
        "cabin": "economy",
        "insurance": insurance,
        "flights": [{"flight_number": "HAT001", "date": "2024-05-20"}],
    }
    steps = [
        ("get_user_details", {"user_id": "u_1"}, user),
        ("get_reservation_details", {"reservation_id": "ABC123"}, reservation),
        ("send_certificate", {"user_id": "u_1", "amount": 100}, "Certificate sent."),
    ]
    return Trajectory(
        original_prompt="My flight was delayed.",
        steps=[
            {"action_name": name, "action_input": args, "observation": json.dumps(out)}
            for name, args, out in steps
        ],
        failure_reason="compensation given without grounds",
    )


def test_a_certificate_needs_a_membership_or_a_covered_booking():
    [found] = breaches(_certificate_run("regular"))
    assert found.call == "send_certificate(100)"
    assert breaches(_certificate_run("silver")) == []
    assert breaches(_certificate_run("regular", insurance="yes")) == []


def test_a_change_that_leaves_the_route_is_a_breach():
    """An ATL-PHL reservation moved onto flights that end at EWR."""
    [found] = breaches(labeled_run("taubench-gpt-4o-airline-task7-trial0"))
    assert found.rule == "the new flights go ATL-EWR, not ATL-PHL"


def test_new_flights_at_fares_the_agent_never_quoted_are_a_breach():
    """The agent quoted $207 for the pair; the booked fares were $105 and $190."""
    [found] = breaches(labeled_run("tau2-grok-3-airline-task16-trial0-14495763"))
    assert found.rule == "the new flights cost $105 + $190, which the agent never quoted"
    assert found.failure_type == "hallucination"


def test_insurance_is_a_ground_only_for_a_reason_it_covers():
    """A basic economy booking made 12 days before, insured, cancelled for a change of plan."""
    [found] = breaches(labeled_run("taubench-gpt-4o-airline-task39-trial1"))
    assert found.call == "cancel_reservation(H8Q05L)"
    assert "insured for health or weather only" in found.rule
