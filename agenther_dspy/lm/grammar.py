"""Constrained decoding derived from the request itself.

Small local models rarely follow DSPy's `[[ ## field ## ]]` answer format on their own; with
a grammar that admits only well-formed answers they always do. The grammar is derived from
what the adapter already put in the request (the "Your output fields are:" list of a
ChatAdapter system message, or the JSON schema of a JSONAdapter request), so it never
drifts from the signature and needs no registry of stages.

Every bound here exists because an unbounded field lets a model ramble until `max_tokens`
cuts the answer mid-structure, which the adapter cannot parse. Bounds are in characters and
are sized so that the longest admissible answer fits the token budget at
`CHARS_PER_TOKEN` characters per token (English through these BPE vocabularies averages
3 to 4; 2 leaves room for digit-heavy values).
"""

from __future__ import annotations

import ast
import copy
import json
import re
from dataclasses import dataclass, replace
from typing import Any, Literal

__all__ = [
    "CHARS_PER_TOKEN",
    "Bounds",
    "OutputField",
    "chat_grammar",
    "fit_bounds",
    "grammar_for_request",
    "json_grammar",
    "parse_output_fields",
    "schema_from_fields",
    "worst_case_chars",
]

CHARS_PER_TOKEN = 2.0

FieldKind = Literal["literal", "bool", "float", "int", "list_str", "text", "value"]


@dataclass(frozen=True)
class OutputField:
    """One output field as the adapter described it to the model."""

    name: str
    type_text: str
    kind: FieldKind
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Bounds:
    """Length limits for the open-ended parts of an answer."""

    text_chars: int = 400
    list_items: int = 5
    item_chars: int = 100


DEFAULT_BOUNDS = Bounds()
MIN_BOUNDS = Bounds(text_chars=40, list_items=2, item_chars=30)

_OUTPUT_HEADER = "Your output fields are:"
_SECTION_END = "All interactions will be structured"
_CHAT_MARKER = "[[ ## completed ## ]]"
_JSON_MARKER = "Outputs will be a JSON object"
_FIELD_LINE = re.compile(r"^\s*\d+\. `(?P<name>\w+)` \((?P<rest>.*)$")


# ─── Reading the request ─────────────────────────────────────────────────────


def _classify(node: ast.expr) -> tuple[FieldKind, tuple[str, ...]]:
    """What kind of value a type expression (as DSPy prints it) admits."""
    if isinstance(node, ast.Name):
        simple: dict[str, FieldKind] = {"str": "text", "bool": "bool", "float": "float"}
        if node.id in simple:
            return simple[node.id], ()
        if node.id == "int":
            return "int", ()
        return "value", ()
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
        head = node.value.id
        args = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        if head == "Literal":
            try:
                values = [ast.literal_eval(arg) for arg in args]
            except ValueError:
                return "value", ()
            if all(isinstance(v, str | int | float | bool) for v in values):
                return "literal", tuple(str(v) for v in values)
            return "value", ()
        if head in ("list", "List") and len(args) == 1:
            inner = args[0]
            if isinstance(inner, ast.Name) and inner.id == "str":
                return "list_str", ()
            return "value", ()
        if head in ("Optional", "Union"):
            return _classify_union(args)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _classify_union(_union_members(node))
    return "value", ()


def _union_members(node: ast.expr) -> list[ast.expr]:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return [*_union_members(node.left), *_union_members(node.right)]
    return [node]


def _classify_union(members: list[ast.expr]) -> tuple[FieldKind, tuple[str, ...]]:
    """`X | None` is answered as X; any other union is an open value."""
    kept = [m for m in members if not (isinstance(m, ast.Constant) and m.value is None)]
    kept = [m for m in kept if not (isinstance(m, ast.Name) and m.id in ("None", "NoneType"))]
    if len(kept) == 1:
        return _classify(kept[0])
    return "value", ()


def _split_type(rest: str) -> str | None:
    """The type text at the start of `rest` (`<type>): <desc>` or `<type>)`).

    Types can contain `)` and `:` (Literal values), so try every closing parenthesis and keep
    the shortest prefix that is a valid Python expression.
    """
    for index, char in enumerate(rest):
        if char != ")":
            continue
        if index + 1 < len(rest) and rest[index + 1] != ":":
            continue
        candidate = rest[:index]
        try:
            ast.parse(candidate, mode="eval")
        except SyntaxError:
            continue
        return candidate
    return None


def parse_output_fields(system: str) -> list[OutputField] | None:
    """The output fields a DSPy adapter listed in its system message, in order.

    Returns None when the message has no output-fields section (not a DSPy adapter request).
    A field whose type cannot be read becomes an open `value` field rather than failing.
    """
    lines = system.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == _OUTPUT_HEADER)
    except StopIteration:
        return None
    fields: list[OutputField] = []
    for line in lines[start + 1 :]:
        if line.startswith(_SECTION_END) or (not line.strip() and fields):
            break
        match = _FIELD_LINE.match(line)
        if not match:
            continue
        type_text = _split_type(match["rest"])
        kind: FieldKind = "value"
        choices: tuple[str, ...] = ()
        if type_text is not None:
            kind, choices = _classify(ast.parse(type_text, mode="eval").body)
        fields.append(OutputField(match["name"], type_text or "", kind, choices))
    return fields or None


# ─── Sizing ──────────────────────────────────────────────────────────────────


def _header(name: str) -> str:
    return f"[[ ## {name} ## ]]\n"


def _fixed_chars(field: OutputField) -> int:
    """Characters of a field that do not depend on the bounds (header, separators, scalars)."""
    size = len(_header(field.name)) + 2
    if field.kind == "literal":
        size += max(len(choice) for choice in field.choices)
    elif field.kind == "bool":
        size += 5
    elif field.kind == "float":
        size += 4
    elif field.kind == "int":
        size += 10
    elif field.kind == "list_str":
        size += 2
    return size


def _flexible_chars(field: OutputField, bounds: Bounds) -> int:
    """Worst-case characters of a field's open-ended part under `bounds`."""
    if field.kind in ("text", "value"):
        # A `[` inside text is always followed by one more character: at most 2 per step.
        return 2 * bounds.text_chars
    if field.kind == "list_str":
        return bounds.list_items * (bounds.item_chars + 4)
    return 0


def worst_case_chars(fields: list[OutputField], bounds: Bounds) -> int:
    """The length of the longest answer the chat grammar admits."""
    fixed = sum(_fixed_chars(f) for f in fields) + len(_CHAT_MARKER)
    return fixed + sum(_flexible_chars(f, bounds) for f in fields)


def fit_bounds(fields: list[OutputField], max_tokens: int) -> Bounds:
    """The default bounds, shrunk until the longest answer fits `max_tokens`: lengths first,
    evenly, then the number of list items; never below `MIN_BOUNDS`."""
    budget = int(max_tokens * CHARS_PER_TOKEN)
    if worst_case_chars(fields, DEFAULT_BOUNDS) <= budget:
        return DEFAULT_BOUNDS
    fixed = worst_case_chars(fields, Bounds(0, 0, 0))
    flexible = worst_case_chars(fields, DEFAULT_BOUNDS) - fixed
    scale = max(0.0, (budget - fixed) / flexible)
    bounds = Bounds(
        text_chars=max(MIN_BOUNDS.text_chars, int(DEFAULT_BOUNDS.text_chars * scale)),
        list_items=DEFAULT_BOUNDS.list_items,
        item_chars=max(MIN_BOUNDS.item_chars, int(DEFAULT_BOUNDS.item_chars * scale)),
    )
    while worst_case_chars(fields, bounds) > budget and bounds.list_items > MIN_BOUNDS.list_items:
        bounds = replace(bounds, list_items=bounds.list_items - 1)
    return bounds


# ─── GBNF for ChatAdapter answers ────────────────────────────────────────────


def _literal(text: str) -> str:
    """A GBNF string literal."""
    return json.dumps(text, ensure_ascii=False)


# One character of free text: no control characters (so no newline) and no `[[`, which would
# let the text open a field header of its own.
_TEXT_RULES = r"""
text-char ::= [^\x00-\x1f\x7f\[] | "[" [^\x00-\x1f\x7f\[]
text-start ::= [A-Za-z0-9]
value-start ::= [^\x00-\x20\x7f\[] | "[" [^\x00-\x20\x7f\[]
item-char ::= [^\x00-\x1f\x7f"\\]
item-start ::= [^\x00-\x20\x7f"\\{]
unit ::= "0" | "1" | "1.0" | "0." [0-9] [0-9]?
int ::= "0" | "-"? [1-9] [0-9]{0,8}
bool ::= "True" | "False"
""".strip()


def _value_rule(field: OutputField, bounds: Bounds) -> str:
    if field.kind == "literal":
        return " | ".join(_literal(choice) for choice in field.choices)
    if field.kind == "bool":
        return "bool"
    if field.kind == "float":
        return "unit"
    if field.kind == "int":
        return "int"
    if field.kind == "list_str":
        item = f'"\\"" item-start item-char{{0,{bounds.item_chars - 1}}} "\\""'
        more = f'(", " {item}){{0,{bounds.list_items - 1}}}'
        return f'"[" ({item} {more})? "]"'
    start = "text-start" if field.kind == "text" else "value-start"
    return f"{start} text-char{{0,{bounds.text_chars - 1}}}"


def chat_grammar(fields: list[OutputField], *, max_tokens: int = 512) -> str:
    """A GBNF grammar admitting exactly `[[ ## field ## ]]\\nvalue\\n\\n` per field, in order,
    then `[[ ## completed ## ]]`, with each value restricted to what its type parses from."""
    bounds = fit_bounds(fields, max_tokens)
    root: list[str] = []
    rules: list[str] = []
    for index, field in enumerate(fields):
        rule = f"field{index}"
        root.append(f"{_literal(_header(field.name))} {rule} {_literal(chr(10) * 2)}")
        rules.append(f"{rule} ::= {_value_rule(field, bounds)}")
    root.append(_literal(_CHAT_MARKER))
    return "\n".join([f"root ::= {' '.join(root)}", *rules, _TEXT_RULES]) + "\n"


# ─── JSON answers ────────────────────────────────────────────────────────────


def schema_from_fields(fields: list[OutputField]) -> dict[str, Any]:
    """A JSON schema for a JSONAdapter answer when the request carried none (JSON mode)."""
    properties: dict[str, Any] = {}
    for field in fields:
        if field.kind == "literal":
            properties[field.name] = {"enum": list(field.choices)}
        elif field.kind == "bool":
            properties[field.name] = {"type": "boolean"}
        elif field.kind == "float":
            properties[field.name] = {"type": "number"}
        elif field.kind == "int":
            properties[field.name] = {"type": "integer"}
        elif field.kind == "list_str":
            properties[field.name] = {"type": "array", "items": {"type": "string"}}
        elif field.kind == "text":
            properties[field.name] = {"type": "string"}
        else:
            properties[field.name] = {}
    return {
        "type": "object",
        "properties": properties,
        "required": [f.name for f in fields],
        "additionalProperties": False,
    }


def _bounded_schema(schema: dict[str, Any], bounds: Bounds) -> dict[str, Any]:
    """A copy of `schema` where open strings and arrays have lengths and the top-level numbers
    lie in [0, 1] (every float this program asks for is a confidence or a weight)."""
    bounded = copy.deepcopy(schema)

    def visit(node: Any) -> None:
        if isinstance(node, list):
            for value in node:
                visit(value)
            return
        if not isinstance(node, dict):
            return
        kind = node.get("type")
        if kind == "string" and "enum" not in node and "const" not in node:
            node.setdefault("maxLength", bounds.text_chars)
        elif kind == "array":
            node.setdefault("maxItems", bounds.list_items)
            items = node.get("items")
            if isinstance(items, dict) and items.get("type") == "string":
                items.setdefault("maxLength", bounds.item_chars)
        for value in node.values():
            visit(value)

    visit(bounded)
    for prop in (bounded.get("properties") or {}).values():
        if isinstance(prop, dict) and prop.get("type") == "number":
            prop.setdefault("minimum", 0)
            prop.setdefault("maximum", 1)
    return bounded


def _schema_fields(schema: dict[str, Any]) -> list[OutputField]:
    """Stand-in fields for sizing a JSON answer: strings as text, arrays as lists."""
    kinds: dict[str, FieldKind] = {"string": "text", "array": "list_str"}
    return [
        OutputField(
            name, "", kinds.get(prop.get("type"), "float") if isinstance(prop, dict) else "value"
        )
        for name, prop in (schema.get("properties") or {}).items()
    ]


def json_grammar(schema: dict[str, Any], *, max_tokens: int = 512) -> str:
    """An llguidance grammar for a JSON answer: llama.cpp's own converter, which (unlike the
    request's `json_schema` parameter) enforces `minimum`/`maximum` and lengths."""
    import xllamacpp

    fields = _schema_fields(schema)
    bounds = fit_bounds(fields, max_tokens) if fields else DEFAULT_BOUNDS
    return xllamacpp.json_schema_to_grammar(_bounded_schema(schema, bounds))


# ─── The request ─────────────────────────────────────────────────────────────


def _response_schema(response_format: dict[str, Any] | None) -> dict[str, Any] | None:
    if not response_format:
        return None
    if response_format.get("type") == "json_schema":
        inner = response_format.get("json_schema", response_format)
        schema = inner.get("schema")
        return schema if isinstance(schema, dict) else None
    return None


def grammar_for_request(
    system: str | None, response_format: dict[str, Any] | None, *, max_tokens: int = 512
) -> str | None:
    """The grammar that constrains the answer to this request, or None to leave it free.

    A JSON schema in the request wins; otherwise the adapter's system message decides: a
    ChatAdapter message gets the field-section grammar, a JSON-mode message a schema built
    from its listed fields. Anything else (a plain chat, another adapter) is left free.
    """
    schema = _response_schema(response_format)
    if schema is not None:
        return json_grammar(schema, max_tokens=max_tokens)
    fields = parse_output_fields(system or "")
    if fields is None:
        return None
    wants_json = bool(response_format) or _JSON_MARKER in (system or "")
    if wants_json:
        return json_grammar(schema_from_fields(fields), max_tokens=max_tokens)
    if _CHAT_MARKER in (system or ""):
        return chat_grammar(fields, max_tokens=max_tokens)
    return None
