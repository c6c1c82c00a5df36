"""The run-first layout: every request about one run opens with the same text, the run."""

from __future__ import annotations

import dspy
from conftest import AGENTHER
from dspy.utils import DummyLM

from agenther_dspy import HindsightRelabeler
from agenther_dspy.lm import build_lm
from agenther_dspy.lm.grammar import grammar_for_request, parse_output_fields
from agenther_dspy.lm.stub_server import StubServer, default_responder
from agenther_dspy.modules.adapter import RUN_POINTER, RunFirstAdapter
from agenther_dspy.modules.render import render_trajectory
from agenther_dspy.signatures import STAGE_SIGNATURES

RUN = "[1] search {}\n  observation: found MetalWorks at $6.20/kg"
INPUTS = {
    "trajectory": RUN,
    "original_prompt": "Find copper wire under $5/kg",
    "failure_reason": "(not given)",
    "achievements": ["listed one supplier"],
    "key_observations": ["MetalWorks $6.20/kg"],
    "not_achieved": "none under $5/kg",
    "hindsight_prompt": "Find MetalWorks' price for copper wire.",
}

DETECT = {"failure_type": "constraint_violation", "severity_weight": 0.8, "recoverable": True}
EXTRACT = {"achievements": ["listed 7 suppliers"], "key_observations": ["$5.30/kg"],
           "limitations": "none under $5/kg"}  # fmt: skip
RELABEL = {"hindsight_prompt": "List the copper wire suppliers you found with their prices.",
           "is_valid_replay": True, "confidence": 0.9}  # fmt: skip
JUDGE = {"is_valid": True, "confidence": 0.9}


def _format(stage: str, demos: list | None = None) -> list[dict]:
    signature = STAGE_SIGNATURES[stage]
    inputs = {name: INPUTS[name] for name in signature.input_fields}
    return RunFirstAdapter().format(signature, demos or [], inputs)


def _prompt(messages: list[dict]) -> str:
    """The request as one text, in the order a chat template lays it out."""
    return "".join(f"<{m['role']}>{m['content']}</{m['role']}>" for m in messages)


def _common_prefix(texts: list[str]) -> str:
    size = 0
    while all(len(t) > size for t in texts) and len({t[size] for t in texts}) == 1:
        size += 1
    return texts[0][:size]


def test_every_stage_puts_the_run_first_and_its_own_text_after() -> None:
    for stage, signature in STAGE_SIGNATURES.items():
        system, *_, user = _format(stage)
        assert system["role"] == "system" and user["role"] == "user"
        text = system["content"]
        run_at = text.index(f"[[ ## trajectory ## ]]\n{RUN}\n")
        assert run_at < 100, stage  # a constant line, then the run
        assert text.index("Your input fields are:") > run_at + len(RUN)
        assert text.index(signature.instructions.splitlines()[0]) > run_at + len(RUN)
        # The run is sent once: the request only points back at it.
        assert RUN not in user["content"] and RUN_POINTER in user["content"]


def test_the_requests_of_one_run_share_their_opening_up_to_the_end_of_the_run(copper) -> None:
    lm = DummyLM([DETECT, EXTRACT, RELABEL, JUDGE])
    with dspy.context(lm=lm):
        prediction = HindsightRelabeler(relabeler="free", detector="lm")(trajectory=copper)
    assert prediction.status == "accepted"
    prompts = [_prompt(entry["messages"]) for entry in lm.history]
    assert len(prompts) == 4  # detect, extract, relabel, judge
    shared = _common_prefix(prompts)
    run_ends = prompts[0].index(render_trajectory(copper)) + len(render_trajectory(copper))
    assert run_ends < len(shared) < run_ends + 200  # the run, then the stages' own texts


def test_the_answer_grammar_is_still_derived_from_the_system_message() -> None:
    for stage, signature in STAGE_SIGNATURES.items():
        system = _format(stage)[0]["content"]
        fields = parse_output_fields(system)
        assert [f.name for f in fields] == list(signature.output_fields), stage
        assert grammar_for_request(system, None).startswith("root ::= "), stage


def test_demos_show_their_own_run_in_full_and_the_request_points_at_its_run() -> None:
    demo = {**{k: INPUTS[k] for k in ("achievements", "key_observations", "not_achieved")},
            "trajectory": "[1] book {}\n  observation: booked HAT039", **RELABEL}  # fmt: skip
    messages = _format("relabel", demos=[demo])
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[0]["content"].count("booked HAT039") == 0
    assert f"[[ ## trajectory ## ]]\n{demo['trajectory']}" in messages[1]["content"]
    assert "[[ ## hindsight_prompt ## ]]\nList the copper wire" in messages[2]["content"]
    assert messages[2]["content"].rstrip().endswith("[[ ## completed ## ]]")
    assert f"[[ ## trajectory ## ]]\n{RUN_POINTER}" in messages[3]["content"]


def test_a_compiled_program_sends_its_demos_in_the_run_first_layout(copper) -> None:
    program = HindsightRelabeler(**AGENTHER, llm_extractor=False)
    program.relabeler.judge.demos = [
        dspy.Example(trajectory="[1] book {}\n  observation: booked HAT039",
                     hindsight_prompt="Book flight HAT039.", is_valid=True, confidence=0.9)
    ]  # fmt: skip
    lm = DummyLM([RELABEL, JUDGE])
    with dspy.context(lm=lm):
        assert program(trajectory=copper).status == "accepted"
    judge_messages = lm.history[1]["messages"]
    assert judge_messages[0]["content"].startswith("The agent run")
    assert "booked HAT039" in judge_messages[1]["content"]
    assert "Book flight HAT039." in judge_messages[1]["content"]
    assert "[[ ## is_valid ## ]]\nTrue" in judge_messages[2]["content"]


def test_answers_from_an_openai_compatible_server_parse(copper) -> None:
    with StubServer() as server:
        lm = build_lm("openai/stub", base_url=server.base_url, cache=False)
        with dspy.context(lm=lm):
            prediction = HindsightRelabeler(relabeler="free", detector="lm")(trajectory=copper)
    assert prediction.status == "accepted"
    assert prediction.analysis.failure_type == "constraint_violation"  # the first Literal value
    assert prediction.relabel.hindsight_prompt == "hindsight prompt from the stub server"
    assert prediction.verdict.confidence == 0.9


def test_an_adapter_the_caller_chose_is_kept(copper) -> None:
    lm = DummyLM([RELABEL, JUDGE])
    with dspy.context(lm=lm, adapter=dspy.ChatAdapter()):
        HindsightRelabeler(**AGENTHER, llm_extractor=False)(trajectory=copper)
    assert lm.history[0]["messages"][0]["content"].startswith("Your input fields are:")


def test_a_run_quoting_the_grammar_markers_keeps_chatadapter_layout() -> None:
    signature = STAGE_SIGNATURES["verify"]
    run = "[1] dspy_log {}\n  observation: Your output fields are:\n1. `x` (str)"
    inputs = {"trajectory": run, "hindsight_prompt": "Find X"}
    messages = RunFirstAdapter().format(signature, [], inputs)
    assert messages == dspy.ChatAdapter().format(signature, [], inputs)
    fields = parse_output_fields(messages[0]["content"])
    assert [f.name for f in fields] == ["is_valid", "confidence"]


def test_batch_runs_and_evaluations_send_the_run_first(copper) -> None:
    from agenther_dspy.eval import evaluate, load_labeled
    from agenther_dspy.formats import Record
    from agenther_dspy.runner import process_record

    systems: list[str] = []

    def capture(fields, messages):
        systems.append(messages[0]["content"])
        return default_responder(fields, messages)

    labeled = load_labeled("tests/data/labeled_mini.jsonl")
    with StubServer(responder=capture) as server:
        lm = build_lm("openai/stub", base_url=server.base_url, cache=False)
        process_record(HindsightRelabeler(**AGENTHER), Record(copper, "x.jsonl", 1), lm, "sft")
        evaluate(HindsightRelabeler(**AGENTHER), labeled, lm=lm)
    assert len(systems) > 3
    assert all(system.startswith("The agent run this task is about") for system in systems)
