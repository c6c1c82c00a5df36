"""The gold-free request checks catch each shape of unusable request a reviewer rejects, and
pass the requests a reviewer signs."""

from __future__ import annotations

import pytest

from agenther_dspy.request_checks import check_request
from agenther_dspy.schema import Trajectory

RUN = Trajectory.model_validate(
    {
        "trajectory_id": "airline-1",
        "original_prompt": "You are aarav_garcia_1177. Move reservation M05KNL one day later "
        "on the cheapest economy flights, and remove passenger Ethan Lopez from H9ZU1C.",
        "steps": [
            {
                "action_name": "get_user_details",
                "action_input": {"user_id": "aarav_garcia_1177"},
                "observation": '{"reservations": ["M05KNL", "H9ZU1C"], '
                '"payment_methods": {"credit_card_7815826": {}}}',
            },
            {
                "action_name": "search_direct_flight",
                "action_input": {"origin": "ATL", "destination": "PHL", "date": "2024-05-24"},
                "observation": '[{"flight_number": "HAT110", "price": 290, "cabin": "economy"}]',
            },
            {
                "action_name": "update_reservation_flights",
                "action_input": {
                    "reservation_id": "M05KNL",
                    "flights": [{"flight_number": "HAT110", "date": "2024-05-24"}],
                    "payment_id": "credit_card_7815826",
                },
                "observation": '{"reservation_id": "M05KNL", "status": "updated"}',
            },
            {
                "action_name": "respond",
                "action_input": {"content": "Anything else?"},
                "observation": "Please also remove Ethan Lopez from H9ZU1C.",
            },
        ],
        "final_answer": "I cannot remove a passenger. Have a great trip! ###STOP###",
        "failure_reason": "passenger removal refused",
    }
)

GOOD = [
    "I'm aarav_garcia_1177. Please move reservation M05KNL to economy flight HAT110 on "
    "2024-05-24 and charge the difference to credit_card_7815826.",
    "I'm aarav_garcia_1177: what is the cheapest economy flight from ATL to PHL on 2024-05-24?",
]
BAD = {
    "agent_speech": "Find the cheapest economy flight for your next reservation. What is the "
    "total cost?",
    "end_token": "I'm aarav_garcia_1177. Please move reservation M05KNL to HAT110. ###STOP###",
    "instruction_text": "Change reservation M05KNL and ask only for things the run achieved, "
    "and never",
    "truncated_id": "I'm aarav_garcia_1177. Please change the reservation under M05K.",
    "ungrounded": "I'm aarav_garcia_1177. Please move reservation M05KNL to flight HAT999.",
    "answer_inside": "I'm aarav_garcia_1177. Find the cheapest economy flight from ATL to PHL "
    "on 2024-05-24. This flight will cost $290.",
    "no_context": "Find the cheapest economy flight for the trip.",
    "bare_reply": "Yes, let's proceed with the update.",
}


@pytest.mark.parametrize("request_text", GOOD)
def test_requests_a_reviewer_signs_pass(request_text):
    assert check_request(request_text, RUN) == []


@pytest.mark.parametrize("check", sorted(BAD))
def test_each_unusable_shape_is_named(check):
    problems = check_request(BAD[check], RUN)
    assert check in {p.check for p in problems}, problems
    assert all(p.detail for p in problems)


def test_a_truncated_id_names_the_whole_one():
    (problem,) = [p for p in check_request(BAD["truncated_id"], RUN) if p.check == "truncated_id"]
    assert "M05KNL" in problem.detail


def test_a_program_field_or_an_instruction_copied_is_instruction_text():
    leaked = "What is the new user request that this agent run fully and correctly satisfies?"
    assert "instruction_text" in {p.check for p in check_request(leaked, RUN)}
    custom = check_request(
        "I'm aarav_garcia_1177: move reservation M05KNL, in the voice of the customer.",
        RUN,
        instructions=["Always write in the voice of the customer who asked."],
    )
    assert {p.check for p in custom} == {"instruction_text"}
    tail = "I'm aarav_garcia_1177. Please move M05KNL. This request is for the following actions:"
    assert "instruction_text" in {p.check for p in check_request(tail, RUN)}


def test_an_action_request_may_name_a_value_the_run_returned():
    request = "I'm aarav_garcia_1177. Move reservation M05KNL to HAT110 for the $290 fare."
    assert check_request(request, RUN) == []


CODE_RUN = Trajectory.model_validate(
    {
        "trajectory_id": "coding-1",
        "original_prompt": "Cache get_user in services/users.py.",
        "steps": [
            {
                "action_name": "edit_file",
                "action_input": {
                    "path": "services/users.py",
                    "patch": "+from cachetools import TTLCache, cached\n"
                    "+_user_cache = TTLCache(maxsize=1024, ttl=300)\n",
                },
                "observation": "Patched services/users.py (+2 -0)",
            }
        ],
        "final_answer": "get_user in services/users.py is now cached for 300 seconds.",
        "failure_reason": "tests were not run",
    }
)


def test_a_request_that_pastes_the_agents_code_is_refused():
    pasted = "Please edit services/users.py, patch +from cachetools import TTLCache, cached"
    assert "pasted_code" in {p.check for p in check_request(pasted, CODE_RUN)}
    said = "Please cache get_user in services/users.py with a TTLCache for 300 seconds."
    assert check_request(said, CODE_RUN) == []


def test_a_one_line_patch_is_what_the_agent_wrote():
    docs = CODE_RUN.model_copy(deep=True)
    docs.steps[0].action_input = {"path": "README.md", "patch": "+ Run `make test` before pushing."}
    pasted = "Could you please edit README.md, patch + Run `make test` before pushing.?"
    assert "pasted_code" in {p.check for p in check_request(pasted, docs)}
    said = "Please add a line to README.md telling contributors to run make test before pushing."
    assert "pasted_code" not in {p.check for p in check_request(said, docs)}
    # A one-line value of any other argument is a value a user may name.
    docs.steps[0].action_input = {"path": "README.md", "title": "Run tests before pushing"}
    titled = "Please edit README.md with the title Run tests before pushing."
    assert "pasted_code" not in {p.check for p in check_request(titled, docs)}


def test_a_request_that_stops_mid_word_is_cut_off():
    cut = "Please cache get_user in services/users.py for 300 sec"
    assert "cut_off" in {p.check for p in check_request(cut, CODE_RUN)}
    assert "cut_off" not in {p.check for p in check_request(cut + "onds", CODE_RUN)}


def test_naming_a_value_by_its_last_word_asks_for_another_thing():
    booked = RUN.model_copy(deep=True)
    booked.steps[2].action_input["cabin"] = "basic_economy"
    part = "I'm aarav_garcia_1177. Please move reservation M05KNL to economy flight HAT110."
    assert "part_of_value" in {p.check for p in check_request(part, booked)}
    whole = part.replace("to economy", "to basic economy")
    assert "part_of_value" not in {p.check for p in check_request(whole, booked)}
    # Where "economy" was itself a value the run acted on, the word alone is no cut.
    booked.steps[1].action_input["cabin"] = "economy"
    assert "part_of_value" not in {p.check for p in check_request(part, booked)}
