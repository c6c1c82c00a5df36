"""The grammar derived from a request admits only answers DSPy's adapters can parse."""

from __future__ import annotations

import re
from typing import Literal

import dspy
import pytest
from pydantic import BaseModel

from agenther_dspy.lm.grammar import (
    CHARS_PER_TOKEN,
    MIN_BOUNDS,
    chat_grammar,
    fit_bounds,
    grammar_for_request,
    parse_output_fields,
    worst_case_chars,
)
from agenther_dspy.signatures import (
    STAGE_SIGNATURES,
    DetectFailure,
    ExtractOutcome,
    RelabelTrajectory,
    VerifyRelabel,
)


def _inputs(signature: type[dspy.Signature]) -> dict:
    return {
        name: ["a result"] if "list" in str(field.annotation) else "some text"
        for name, field in signature.input_fields.items()
    }


def _system(signature: type[dspy.Signature], adapter: dspy.Adapter | None = None) -> str:
    adapter = adapter or dspy.ChatAdapter()
    messages = adapter.format(signature, demos=[], inputs=_inputs(signature))
    return messages[0]["content"]


def _rules(grammar: str) -> dict[str, str]:
    return dict(line.split(" ::= ", 1) for line in grammar.splitlines() if " ::= " in line)


@pytest.mark.parametrize("stage", list(STAGE_SIGNATURES))
def test_fields_are_read_in_order_with_their_kinds(stage: str) -> None:
    signature = STAGE_SIGNATURES[stage]
    fields = parse_output_fields(_system(signature))
    assert [f.name for f in fields] == list(signature.output_fields)
    expected = {str: "text", bool: "bool", float: "float", list[str]: "list_str"}
    for field in fields:
        annotation = signature.output_fields[field.name].annotation
        assert field.kind == expected.get(annotation, "literal")


@pytest.mark.parametrize("stage", list(STAGE_SIGNATURES))
def test_grammar_lists_every_field_in_order_and_ends_with_completed(stage: str) -> None:
    signature = STAGE_SIGNATURES[stage]
    grammar = grammar_for_request(_system(signature), None, max_tokens=512)
    root = _rules(grammar)["root"]
    headers = re.findall(r"\[\[ ## (\w+) ## \]\]", root)
    assert headers == [*signature.output_fields, "completed"]
    assert root.rstrip().endswith('"[[ ## completed ## ]]"')


def test_literal_field_admits_exactly_its_values() -> None:
    grammar = grammar_for_request(_system(DetectFailure), None, max_tokens=512)
    rule = _rules(grammar)["field0"]
    values = DetectFailure.output_fields["failure_type"].annotation.__args__
    assert sorted(re.findall(r'"(\w+)"', rule)) == sorted(values)


@pytest.mark.parametrize("stage", list(STAGE_SIGNATURES))
def test_longest_answer_fits_the_token_budget(stage: str) -> None:
    fields = parse_output_fields(_system(STAGE_SIGNATURES[stage]))
    for max_tokens in (256, 512, 1024):
        bounds = fit_bounds(fields, max_tokens)
        fits = worst_case_chars(fields, bounds) <= max_tokens * CHARS_PER_TOKEN
        assert fits or bounds.text_chars == MIN_BOUNDS.text_chars


def test_small_budgets_shrink_text_but_keep_a_floor() -> None:
    fields = parse_output_fields(_system(ExtractOutcome))
    assert fit_bounds(fields, 256).text_chars < fit_bounds(fields, 4096).text_chars
    assert fit_bounds(fields, 8).text_chars == MIN_BOUNDS.text_chars
    assert f"{{0,{fit_bounds(fields, 512).text_chars - 1}}}" in chat_grammar(fields, max_tokens=512)


def _answer(signature: type[dspy.Signature], values: dict[str, str]) -> str:
    body = "".join(f"[[ ## {name} ## ]]\n{values[name]}\n\n" for name in signature.output_fields)
    return body + "[[ ## completed ## ]]"


@pytest.mark.parametrize("weight", ["0", "1", "1.0", "0.5", "0.05", "0.99"])
@pytest.mark.parametrize("flag", ["True", "False"])
def test_every_scalar_the_grammar_admits_parses(weight: str, flag: str) -> None:
    grammar = grammar_for_request(_system(RelabelTrajectory), None, max_tokens=512)
    assert '"True" | "False"' in grammar and '"0." [0-9] [0-9]?' in grammar
    text = 'A run [that] found {3} prices: $4.90/kg, it\'s fine "quoted"' + "x" * 200
    answer = _answer(
        RelabelTrajectory,
        {"hindsight_prompt": text, "is_valid_replay": flag, "confidence": weight},
    )
    parsed = dspy.ChatAdapter().parse(RelabelTrajectory, answer)
    assert parsed["is_valid_replay"] is (flag == "True")
    assert 0.0 <= parsed["confidence"] <= 1.0
    assert parsed["hindsight_prompt"] == text


def test_lists_of_bounded_quoted_strings_parse() -> None:
    grammar = grammar_for_request(_system(ExtractOutcome), None, max_tokens=512)
    rules = _rules(grammar)
    assert rules["field0"].startswith('"[" ("\\"" item-start')
    # An item may hold anything but a quote, a backslash or a control character.
    items = ["MetalWorks Inc - $6.20/kg, MOQ 50kg", "it's {odd} [1]", "x" * 50]
    value = "[" + ", ".join(f'"{item}"' for item in items) + "]"
    answer = _answer(
        ExtractOutcome, {"achievements": value, "key_observations": "[]", "limitations": "None"}
    )
    parsed = dspy.ChatAdapter().parse(ExtractOutcome, answer)
    assert parsed["achievements"] == items
    assert parsed["key_observations"] == []


def test_free_text_cannot_start_with_a_placeholder_or_fence_nor_open_a_header() -> None:
    grammar = grammar_for_request(_system(RelabelTrajectory), None, max_tokens=512)
    rules = _rules(grammar)
    assert rules["field0"].startswith("text-start ")
    assert rules["text-start"] == "[A-Za-z0-9]"  # not `{hindsight_prompt}`, not ```
    # `[` only ever followed by another character that is not `[`: no `[[ ## x ## ]]` inside.
    assert rules["text-char"] == r'[^\x00-\x1f\x7f\[] | "[" [^\x00-\x1f\x7f\[]'


def test_chain_of_thought_reasoning_is_free_text_first() -> None:
    predictor = dspy.ChainOfThought(VerifyRelabel)
    system = _system(predictor.predict.signature)
    fields = parse_output_fields(system)
    assert [f.name for f in fields] == ["reasoning", "is_valid", "confidence"]
    assert fields[0].kind == "text"


class _Plan(BaseModel):
    steps: list[str]


class _Odd(dspy.Signature):
    """Answer with odd types."""

    question: str = dspy.InputField()
    tricky: Literal["a): b", "c'd", "plain"] = dspy.OutputField()
    maybe: str | None = dspy.OutputField()
    count: int = dspy.OutputField()
    numbers: list[int] = dspy.OutputField()
    plan: _Plan = dspy.OutputField()


def test_unusual_types_are_read_or_fall_back_to_open_values() -> None:
    fields = {f.name: f for f in parse_output_fields(_system(_Odd))}
    assert fields["tricky"].kind == "literal"
    assert fields["tricky"].choices == ("a): b", "c'd", "plain")
    assert fields["maybe"].kind == "text"
    assert fields["count"].kind == "int"
    assert fields["numbers"].kind == "value"
    assert fields["plan"].kind == "value"
    grammar = grammar_for_request(_system(_Odd), None, max_tokens=512)
    rules = _rules(grammar)
    assert rules["field4"].startswith("value-start")  # may open a JSON object
    answer = _answer(
        _Odd,
        {
            "tricky": "a): b",
            "maybe": "Yes",
            "count": "-12",
            "numbers": "[1, 2]",
            "plan": '{"steps": ["a"]}',
        },
    )
    parsed = dspy.ChatAdapter().parse(_Odd, answer)
    assert parsed["tricky"] == "a): b" and parsed["count"] == -12 and parsed["plan"].steps == ["a"]


def test_plain_chat_and_other_adapters_get_no_grammar() -> None:
    assert grammar_for_request("You are a helpful assistant.", None) is None
    assert grammar_for_request(None, None) is None
    assert grammar_for_request(_system(VerifyRelabel, dspy.XMLAdapter()), None) is None


def test_json_schema_requests_get_a_bounded_llguidance_grammar() -> None:
    schema = {
        "type": "object",
        "properties": {
            "is_valid": {"type": "boolean"},
            "confidence": {"type": "number"},
            "rejection_reason": {"type": "string"},
        },
        "required": ["is_valid", "confidence", "rejection_reason"],
    }
    response_format = {"type": "json_schema", "schema": schema, "name": "x", "strict": True}
    grammar = grammar_for_request("anything", response_format, max_tokens=512)
    assert grammar.startswith("%llguidance")
    assert '"maxLength"' in grammar and '"minimum":0' in grammar and '"maximum":1' in grammar
    assert "maxLength" not in schema["properties"]["rejection_reason"]  # caller's copy untouched


def test_json_mode_without_schema_builds_one_from_the_listed_fields() -> None:
    system = _system(VerifyRelabel, dspy.JSONAdapter())
    grammar = grammar_for_request(system, {"type": "json_object"}, max_tokens=512)
    assert grammar.startswith("%llguidance")
    for name in VerifyRelabel.output_fields:
        assert f'"{name}"' in grammar
