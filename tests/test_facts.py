"""The facts code reads from real runs: calls, the user, what failed, the candidate goals."""

from __future__ import annotations

import pytest
from conftest import SHARED, labeled_run

from agenther_dspy.formats import read_trajectories
from agenther_dspy.modules.facts import agent_words, changes_state, run_facts
from agenther_dspy.modules.goals import candidate_goals, reported_fields, spoke_of
from agenther_dspy.request_checks import failed_call
from agenther_dspy.schema import Trajectory

WHOANDWHEN = SHARED / "data" / "real" / "whoandwhen_pool.jsonl"


def _run(path, trajectory_id):
    for record in read_trajectories(path):
        if record.trajectory.trajectory_id == trajectory_id:
            return record.trajectory
    raise LookupError(trajectory_id)


@pytest.fixture(scope="module")
def tau2_airline():
    # Two cancellations and a flight change, confirmed by the user, for aarav_ahmed_6699.
    return labeled_run("tau2-grok-3-airline-task9-trial0-7900e641")


@pytest.mark.parametrize(
    "name,acts",
    [
        ("cancel_reservation", True),
        ("update_reservation_flights", True),
        ("book_reservation", True),
        ("refuel_data", True),
        ("enable_roaming", True),
        ("send_certificate", True),
        ("get_reservation_details", False),
        ("search_onestop_flight", False),
        ("list_all_airports", False),
        ("calculate", False),
        ("transfer_to_human_agents", False),
        ("WebSurfer", False),
        ("execute_code", False),
        ("subscription_change", True),  # a noun, then the verb
        ("sheets.write_formula", True),
        ("list_open_orders", False),  # a verb of looking leads: "open" is an adjective here
        ("order_lookup", False),  # a lookup of an order, not an order
        ("refund_policy", False),  # it reads a policy
        ("get_order_status", False),
        ("issue_store_credit", True),
    ],
)
def test_state_changing_calls_are_told_from_lookups_by_name(name, acts):
    assert changes_state(name) is acts


def test_tau2_airline_run_facts(tau2_airline):
    facts = run_facts(tau2_airline)
    assert facts.user["user_id"] == "aarav_ahmed_6699"
    assert facts.user["name"] == "Aarav Ahmed"
    done = [(c.name, c.arguments.get("reservation_id")) for c in facts.state_changes]
    assert done == [
        ("cancel_reservation", "IFOYYZ"),
        ("cancel_reservation", "NQNU5R"),
        ("update_reservation_flights", "M20IZO"),
    ]
    update = facts.state_changes[-1]
    assert update.arguments["payment_id"] == "credit_card_9074831"
    assert update.returned["reservation_id"] == "M20IZO"
    assert not facts.failed_calls
    assert any("cancel" in reply and "NQNU5R" in reply for reply in facts.confirmations)
    text = facts.render()
    assert len(text) <= 900
    for value in ("aarav_ahmed_6699", "IFOYYZ", "NQNU5R", "M20IZO", "HAT057"):
        assert value in text


def test_a_run_that_changed_state_offers_one_goal_every_change(tau2_airline):
    """A request for one reservation of three would leave the other two changes in the
    demonstration, unrequested: the only goal is all of them."""
    facts = run_facts(tau2_airline)
    (goal,) = candidate_goals(facts, agent_words(tau2_airline))
    assert [call.describe().split(",")[0] for call in goal.calls] == [
        "cancel_reservation(reservation_id=IFOYYZ)",
        "cancel_reservation(reservation_id=NQNU5R)",
        "update_reservation_flights(reservation_id=M20IZO",
    ]


def test_a_run_that_only_looked_things_up_offers_each_reported_lookup():
    run = labeled_run("tau2-grok-3-mini-airline-task8-trial2-369f3973")
    facts = run_facts(run)
    goals = candidate_goals(facts, agent_words(run))
    assert not facts.state_changes and len(goals) == 5
    assert all(len(goal.calls) == 1 and goal.asks for goal in goals)


def test_tau2_telecom_user_from_phone_and_lookup_and_handoff_is_no_goal():
    run = labeled_run(
        "tau2-grok-3-telecom-task[mobile_data_issue]data_saver_mode_on|data_usage_exceeded"
        "[PERSONA:Easy]-trial0-05368b82"
    )
    facts = run_facts(run)
    assert facts.user["phone_number"] == "555-123-2002"
    assert facts.user["customer_id"] == "C1001"
    assert facts.user["name"] == "John Smith"
    assert [c.describe() for c in facts.state_changes] == [
        "refuel_data(customer_id=C1001, line_id=L1002, gb_amount=2.0)"
    ]
    assert facts.state_changes[0].returned["charge"] == "4.0"
    assert "handed off: transfer_to_human_agents" in facts.failures
    goals = candidate_goals(facts, agent_words(run))
    assert all("transfer" not in goal.label for goal in goals)


def test_taubench_run_facts():
    run = labeled_run("taubench-gpt-4o-airline-task7-trial0")
    facts = run_facts(run)
    assert facts.user == {"user_id": "aarav_garcia_1177", "name": "Aarav Garcia"}
    (change,) = [c for c in facts.calls if c.changes_state]
    # The update asked for economy and the reservation it returned still says business: the
    # log does not show it done, so it is no achievement.
    assert change.contradicted == ("cabin: economy asked, business recorded",)
    assert facts.state_changes == [] and any("business recorded" in f for f in facts.failures)
    assert change.name == "update_reservation_flights"
    assert change.arguments["reservation_id"] == "M05KNL"
    assert change.arguments["payment_id"] == "gift_card_8887175"
    assert "HAT004" in change.describe() and "HAT142" in change.describe()
    lookups = [c.name for c in facts.lookups]
    assert lookups.count("search_onestop_flight") == 2
    assert facts.confirmations[-1].startswith("Yes, please proceed")


@pytest.mark.needs_shared
def test_whoandwhen_failed_code_runs_are_failures():
    run = _run(WHOANDWHEN, "whoandwhen-algorithm-generated-7")
    facts = run_facts(run)
    assert facts.user == {}
    assert [c.step for c in facts.calls] == [2, 6, 7]
    assert [c.succeeded for c in facts.calls] == [True, False, False]
    assert "Continual Learning in Practice" in facts.calls[0].returned["output"]
    assert any("Hiccup_Fish_Diet.pdf" in f for f in facts.failures)
    assert any(f.startswith("agent declined") for f in facts.failures)


def test_failed_call_knows_code_execution_failures():
    assert failed_call("exitcode: 1 (execution failed)\nCode output: Traceback ...")
    assert failed_call("exitcode: 124 (execution failed)\nCode output: \nTimeout")
    assert not failed_call("exitcode: 0 (execution succeeded)\nCode output: 42")
    assert failed_call("Patch rejected: hunk 2 does not apply at sdk/uploader.py:41")
    assert not failed_call("Patched sdk/client.py (+9 -7)")


def test_a_lookup_is_a_goal_only_when_it_told_the_user_something_new():
    """The telecom agent looked the customer up by phone and reported their name back:
    nothing a request could ask to be told."""
    run = labeled_run(
        "tau2-grok-3-telecom-workflow-task[mobile_data_issue]bad_network_preference|bad_vpn"
        "|data_mode_off|data_saver_mode_on[PERSONA:None]-trial0-9e4ee934"
    )
    facts = run_facts(run)
    assert facts.lookups and candidate_goals(facts, agent_words(run)) == []


def test_a_lookup_is_a_goal_only_when_the_user_spoke_of_what_it_told():
    """The agent read Noah Muller's profile and told him his membership on the way to a
    delay claim he never got: he came about a flight, and "tell me my membership" is no
    goal of his."""
    run = labeled_run("taubench-gpt-4o-airline-task45-trial1")
    facts = run_facts(run)
    assert reported_fields(facts.lookups[0], agent_words(run)) == ["membership"]
    assert not spoke_of("membership", facts.user_words)
    assert candidate_goals(facts, agent_words(run)) == []
    assert spoke_of("membership", "I'm sure I'm a Gold member.")
    assert spoke_of("flight number", "What are my flight numbers?")
    assert not spoke_of("flight number", "My flight was delayed; what number do I call?")


def test_the_user_id_said_in_any_case_is_who_the_user_is():
    run = Trajectory(
        original_prompt="Change a passenger name.",
        steps=[
            {
                "action_name": "respond",
                "action_input": {"content": "May I have your user id?"},
                "observation": "Sure, my user ID is anya_garcia_5901 and the reservation 3RK2T9.",
            },
            {
                "action_name": "respond",
                "action_input": {"content": "Anything else?"},
                "observation": "My user ID is not something I remember.",
            },
        ],
        failure_reason="none",
    )
    assert run_facts(run).user == {"user_id": "anya_garcia_5901"}


def test_a_lookup_asks_for_a_field_only_when_every_value_of_it_was_told():
    from agenther_dspy.modules.facts import ToolCall
    from agenther_dspy.modules.goals import reported_fields

    call = ToolCall(
        step=1,
        name="get_reservation_details",
        arguments={"reservation_id": "3JA7XV"},
        succeeded=True,
        changes_state=False,
        returned={"cabin": "business", "flight_number": "HAT045", "flight_number_2": "HAT194"},
    )
    assert reported_fields(call, "Flight HAT045 has business seats left.") == []  # a mere word
    told_one = "Your booking 3JA7XV is in the business cabin and includes flight HAT045."
    assert reported_fields(call, told_one) == ["cabin"]
    told_both = told_one + " It continues on HAT194."
    assert reported_fields(call, told_both) == ["cabin", "flight number"]


def test_a_search_that_listed_options_is_no_goal():
    """The agent searched flights and listed what it found: a step toward a choice the user
    never made, not an answer a request could ask for."""
    run = labeled_run("tau2-grok-3-airline-task14-trial0-4f631c8b")
    facts = run_facts(run)
    searches = [c for c in facts.lookups if c.name == "search_onestop_flight"]
    assert searches and all(c.options >= 1 for c in searches)
    goals = candidate_goals(facts, agent_words(run))
    assert not any(c.name.startswith("search_") for goal in goals for c in goal.calls)
