"""The structured relabeler on real runs: checks, feedback to the next attempt, the template
fallback, and the whole program with the second judge, with DSPy's scripted DummyLM."""

from __future__ import annotations

import dspy
import pytest
from conftest import labeled_run
from dspy.utils import DummyLM

from agenther_dspy import HindsightRelabeler
from agenther_dspy.modules.facts import ToolCall, agent_words, run_facts
from agenther_dspy.modules.goals import candidate_goals
from agenther_dspy.modules.structured import (
    StructuredRelabel,
    generic_phrase,
    request_problems,
    template_request,
)
from agenther_dspy.optimizers.saving import load_program, save_program
from agenther_dspy.request_checks import check_request

GOOD = (
    "I'm Aarav Ahmed, user id aarav_ahmed_6699. Please cancel reservations IFOYYZ and NQNU5R, "
    "and move M20IZO to flights HAT057 and HAT146 on 2024-05-22, paid with credit_card_9074831."
)


@pytest.fixture(scope="module")
def airline():
    return labeled_run("tau2-grok-3-airline-task9-trial0-7900e641")


@pytest.fixture(scope="module")
def booking():
    """A clean demonstration: a round trip booked and paid as the agent said."""
    return labeled_run("tau2-grok-3-airline-task24-trial1-57dae868")


def _goal(run, index=-1):
    facts = run_facts(run)
    return facts, candidate_goals(facts, agent_words(run))[index]


def test_checks_catch_cut_ids_a_missing_user_and_agent_speech(airline):
    facts, goal = _goal(airline)
    assert request_problems(GOOD, airline, facts, goal) == []
    cut = GOOD.replace("M20IZO", "M20IZ")
    assert any(
        p.startswith("unknown_id") or "truncated" in p
        for p in request_problems(cut, airline, facts, goal)
    )
    anonymous = GOOD.replace("I'm Aarav Ahmed, user id aarav_ahmed_6699. ", "")
    assert any(p.startswith("no_user") for p in request_problems(anonymous, airline, facts, goal))
    partial = "I'm user aarav_ahmed_6699. Please cancel reservation IFOYYZ for me today."
    assert any(
        p.startswith("missing") and "M20IZO" in p
        for p in request_problems(partial, airline, facts, goal)
    )
    agent = "Your reservation IFOYYZ, NQNU5R and M20IZO are updated, aarav_ahmed_6699."
    assert any(p.startswith("agent_speech") for p in request_problems(agent, airline, facts, goal))


def test_failed_check_is_fed_back_to_the_next_attempt(airline):
    bad = {"request": "Your reservation has been cancelled. Is there anything else?"}
    lm = DummyLM([bad, {"request": GOOD}])
    with dspy.context(lm=lm):
        out = StructuredRelabel(max_attempts=3)(trajectory=airline)
    assert out.source == "lm" and out.request == GOOD
    assert len(out.goal.calls) == 3
    assert [a["outcome"].split(":")[0] for a in out.attempts] == [
        "failed the checks",
        "passed the checks",
    ]
    first, second = lm.history[0], lm.history[1]
    assert "agent_speech" not in first["messages"][-1]["content"].split("feedback ## ]]")[1][:400]
    retry_feedback = second["messages"][-1]["content"].split("feedback ## ]]")[1]
    assert "agent_speech" in retry_feedback and "no_user" in retry_feedback
    assert (second["kwargs"]["temperature"], second["kwargs"]["rollout_id"]) == (0.7, 2)


def test_template_fallback_when_every_attempt_fails(airline):
    bad = {"request": "Yes, let's proceed."}
    lm = DummyLM([bad, bad])
    with dspy.context(lm=lm):
        out = StructuredRelabel(max_attempts=2)(trajectory=airline)
    assert out.source == "template"
    assert out.request == template_request(*_goal(airline))
    assert out.request.startswith(
        "I'm Aarav Ahmed, user id aarav_ahmed_6699. Please cancel reservations IFOYYZ and NQNU5R"
    )
    assert check_request(out.request, airline) == []


def test_template_of_every_achievement_passes_the_checks(airline):
    facts, goal = _goal(airline)
    request = template_request(facts, goal)
    for value in ("aarav_ahmed_6699", "IFOYYZ", "NQNU5R", "M20IZO", "HAT057", "HAT146"):
        assert value in request
    assert check_request(request, airline) == []
    assert request_problems(request, airline, facts, goal) == []


def test_the_lm_chooses_among_lookups_and_out_of_range_takes_the_last():
    """A run that only looked things up offers each reported lookup; the LM's choice picks
    one, and a choice out of range falls back to the last option."""
    run = labeled_run("tau2-grok-3-mini-airline-task8-trial2-369f3973")
    goals = candidate_goals(run_facts(run), agent_words(run))
    bad = {"request": "Yes, let's proceed."}
    for choice, expected in ((2, goals[1]), (9, goals[-1])):
        with dspy.context(lm=DummyLM([{"choice": choice}, bad])):
            out = StructuredRelabel(max_attempts=1)(trajectory=run)
        assert out.goal == expected


MIA = (
    "I'm Mia Kim, user id mia_kim_4397. Please book a round trip in basic economy from EWR to "
    "LAX on flights HAT041 on 2024-05-20 and HAT012 on 2024-05-25, paying $39 with "
    "gift_card_7359776 and $124 with gift_card_7773485."
)


def test_structured_variant_end_to_end(booking, tmp_path):
    lm = DummyLM([{"request": MIA}, {"is_valid": True, "confidence": 0.9}])
    program = HindsightRelabeler(relabeler="structured")
    with dspy.context(lm=lm):
        prediction = program(trajectory=booking)
    assert prediction.status == "accepted", prediction.reason
    assert prediction.relabel.hindsight_prompt == MIA
    assert prediction.confidence == pytest.approx(0.95)
    assert prediction.outcome.achievements[0].startswith("book_reservation(user_id=mia_kim_4397")
    names = [name for name, _ in program.named_predictors()]
    assert {"structured.choose_goal", "structured.phrase_request", "relabeler.judge"} <= set(names)

    save_program(program, path := tmp_path / "structured.json")
    assert load_program(path).relabeler_kind == "structured"
    save_program(HindsightRelabeler(relabeler="free"), free := tmp_path / "free.json")
    loaded = load_program(free)
    assert loaded.relabeler_kind == "free" and not hasattr(loaded, "structured")


def test_structured_variant_rejects_when_the_judge_and_the_rule_say_no(booking):
    lm = DummyLM([{"request": MIA}, {"is_valid": False, "confidence": 0.9}])
    program = HindsightRelabeler(relabeler="structured", single_judge_fallback=False)
    with dspy.context(lm=lm):
        prediction = program(trajectory=booking)
    assert prediction.status == "rejected" and prediction.stage == "judge"


def test_a_run_with_nothing_to_ask_for_is_rejected_without_lm_calls():
    run = labeled_run("whoandwhen-hand-crafted-2")
    lm = DummyLM([])
    with dspy.context(lm=lm):
        out = StructuredRelabel()(trajectory=run)
    assert out.request == "" and out.source == "none" and not lm.history


@pytest.mark.slow
def test_structured_variant_on_the_embedded_model(booking):
    from agenther_dspy.settings import LMSettings

    lm = LMSettings(model="local:smollm2-135m").build()
    with dspy.context(lm=lm):
        prediction = HindsightRelabeler(relabeler="structured")(trajectory=booking)
    assert prediction.status in ("accepted", "rejected"), prediction.reason
    relabel_attempts = [a for a in prediction.attempts if "request" in a]
    assert relabel_attempts  # the model's answers parsed, or the template stood in
    if prediction.status == "accepted":
        request = prediction.relabel.hindsight_prompt
        assert check_request(request, booking) == []
        assert "mia_kim_4397" in request


def test_checks_catch_greetings_echoed_facts_and_a_message_not_in_the_users_voice(airline):
    facts, goal = _goal(airline)

    def problems(request: str) -> list[str]:
        return [p.split(":")[0] for p in request_problems(request, airline, facts, goal)]

    assert "agent_speech" in problems("Hi Aarav Ahmed, user id aarav_ahmed_6699! " + GOOD)
    assert "pasted" in problems(GOOD + " handed off: transfer_to_human_agents")
    listed = (
        "Aarav Ahmed, user id aarav_ahmed_6699, cancel reservation IFOYYZ, cancel reservation "
        "NQNU5R, update reservation flights for reservation M20IZO with flights HAT057 and HAT146."
    )
    assert "not_user_voice" in problems(listed)


def test_a_lookup_draft_asks_for_what_the_agent_reported():
    run = labeled_run("tau2-grok-3-airline-task3-trial0-c594c77e")  # membership told, then transfer
    facts = run_facts(run)
    goal = candidate_goals(facts, agent_words(run))[0]
    request = template_request(facts, goal)
    assert request == (
        "I'm Anya Garcia, user id anya_garcia_5901. Please look up my profile and tell me the "
        "membership."
    )
    assert request_problems(request, run, facts, goal) == []


def test_a_rewrite_that_repeats_grows_or_speaks_of_the_customer_is_sent_back(airline):
    from agenther_dspy.modules.structured import rewrite_problems

    assert rewrite_problems(GOOD, GOOD) == []
    assert rewrite_problems(GOOD + " " + GOOD, GOOD)[0].startswith("rambling")
    noted = GOOD + " Please note that the customer has already reserved a flight."
    assert [p.split(":")[0] for p in rewrite_problems(noted, GOOD)] == ["third_person"]
    copied = GOOD.replace("Please cancel", "If that card can't cover it, only cancel")
    assert [p.split(":")[0] for p in rewrite_problems(copied, GOOD)] == ["added_condition"]
    kept = "If it is free, " + GOOD.lower()
    assert rewrite_problems(kept, "if it is free, " + GOOD) == []
    bad = {"request": GOOD + " " + GOOD}
    with dspy.context(lm=DummyLM([bad, bad, bad])):
        out = StructuredRelabel()(trajectory=airline)
    assert out.source == "template" and "rambling" in out.attempts[0]["outcome"]


def test_a_run_that_broke_policy_is_skipped_before_any_lm_call(airline):
    """The agent cancelled a basic economy booking with no ground: no request may describe
    it, so the program stops at the detector."""
    lm = DummyLM([])
    with dspy.context(lm=lm):
        prediction = HindsightRelabeler(relabeler="structured")(trajectory=airline)
    assert prediction.status == "skipped"
    assert "IFOYYZ" in prediction.reason and "no ground" in prediction.reason
    assert lm.history == []


def test_the_same_action_on_several_entities_is_said_once():
    """Five cabin downgrades that keep each reservation's flights read as one action."""
    run = labeled_run("tau2-grok-3-airline-task18-trial0-680ebcd5")
    facts = run_facts(run)
    goal = candidate_goals(facts, agent_words(run))[-1]
    assert all(call.kept == {"flights"} for call in goal.calls)
    assert template_request(facts, goal) == (
        "I'm Omar Davis, user id omar_davis_3817. Please change reservations JG7FMM, 2FBBAH, "
        "X7BYG1, EQ1G6C and BOH180 to economy, keeping their flights, paying any difference "
        "with credit_card_2929732."
    )
    assert request_problems(template_request(facts, goal), run, facts, goal) == []


def _call(name, **arguments):
    return ToolCall(step=1, name=name, arguments=arguments, succeeded=True, changes_state=True)


def test_an_action_without_a_template_reads_as_a_user_would_say_it():
    hotel = _call("book_hotel", hotel="Casa do Largo", room="double", check_in="2024-06-12")
    assert (
        generic_phrase(hotel) == "book hotel Casa do Largo with room double and check in 2024-06-12"
    )
    plan = _call("subscription_change", account="sb-771203", plan="Basic", effective="immediate")
    assert generic_phrase(plan) == (
        "change subscription for account sb-771203 with plan Basic and effective immediate"
    )
    edit = _call("edit_file", path="README.md", patch="+ Run tests.")
    assert generic_phrase(edit) == "edit file README.md with patch + Run tests."
    table = _call("book_table", restaurant="Gion Karyo", date="2024-10-08", time="19:00", party=2)
    assert generic_phrase(table) == (
        "book table with restaurant Gion Karyo and party 2 on 2024-10-08 at 19:00"
    )
    order = _call("create_po_draft", items=[{"sku": "CF258A", "qty": 40, "unit_price": 89.5}])
    assert (
        generic_phrase(order) == "create po draft with items (sku CF258A, qty 40, unit price 89.5)"
    )
    visit = _call("schedule_technician", ticket_id="T-9", earliest=True, weekend=False)
    assert (
        generic_phrase(visit) == "schedule technician for ticket T-9 with earliest and not weekend"
    )
