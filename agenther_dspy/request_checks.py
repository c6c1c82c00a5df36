"""Checks a hindsight request must pass before anyone would train on it. No LM, no gold.

A request is the user's turn of a training row. Read blind, the requests small models write
fail in a few recurring ways that a reviewer spots at once and a similarity score does not:
agent speech in the user's mouth, end tokens, instruction text copied from the prompt, ids
cut short, values the run never shows, a lookup that carries its own answer, a request that
names nothing to act on, a bare reply ("Yes, let's proceed."). Each check here looks at the
request and the run only, so the same code serves the fidelity metric (`eval/metric.py`)
and the program, which can reject or retry a request before it is written.

`check_request(request, trajectory)` returns the problems found, each with the check's name
and a sentence a person or a reflection LM can act on; an empty list means the request passed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

import agenther_dspy.text as tx
from agenther_dspy.schema import Trajectory

# The steps whose observation is the user's own reply (chat-log readers write them so).
USER_TURN_ACTIONS = frozenset({"respond", "respond_to_user", "send_message", "reply"})

AGENT_SPEECH = re.compile(
    r"\b(?:have a (?:great|nice|good|wonderful|safe|pleasant)\b"
    r"|is there anything else|anything else (?:i|we) can"
    r"|let me know\b|feel free\b|(?:i|we) apologi[sz]e|i'?m sorry|sorry for"
    r"|thank you for (?:contacting|reaching|your|choosing|calling|flying|using|\w+ing\b)"
    r"|enjoy your\b"
    r"|thanks for (?:contacting|reaching|your|choosing|calling|flying|using)"
    r"|how (?:can|may) i (?:help|assist)|i (?:can|will|'ll) (?:help|assist|go ahead|proceed)"
    r"|(?<!do )(?<!did )i (?:have|'ve) (?:cancel|book|updat|chang|process|modif|upgrad|add"
    r"|remov|found|complet)"
    r"|here (?:is|are) (?:the|your)|for you\b"
    r"|your (?:reservation|booking|account|order|flight|trip|line|phone|card|data|plan|bill"
    r"|profile|device|membership|refund|ticket|next|upcoming|current|request|issue|payment"
    r"|user id|travel|itinerary|baggage|bags|seat|cabin|subscription))",
    re.IGNORECASE,
)
END_TOKENS = re.compile(
    r"#{2,}|<\|[^|>]{0,40}\|>|</?s>|\[\[|\]\]|\[(?:END|STOP|DONE)\]|<end_of_turn>|<eos>"
    r"|\bTERMINATE\b|\bTRANSFER_TO_HUMAN|\bSTOP\b(?=[\s.!]*$)",
)
BARE_REPLY = re.compile(
    r"^(?:yes|yeah|yep|no|nope|ok|okay|sure|thanks|thank you|great|perfect|alright|correct"
    r"|certainly|absolutely|of course)\b|\blet'?s (?:proceed|go ahead|do it|do that)\b"
    r"|^(?:please )?(?:proceed|go ahead|confirm)\b[^A-Za-z0-9]*(?:with (?:it|that|the \w+))?"
    r"[^A-Za-z0-9]*$",
    re.IGNORECASE,
)
# Words that make a request ask for something to be done rather than looked up: a request
# with one of them may mention a value the run produced ("refund the $430 to my card").
ACTION_WORDS = frozenset(
    """book cancel change update modify upgrade downgrade add remove delete refund rebook move
    transfer send email schedule reserve order buy purchase pay charge create make build write
    install deploy restart reset enable disable turn switch set fix apply register upload
    convert export save draft generate refuel renew exchange return replace toggle submit
    open close merge rename sign""".split()
)
# Rules about writing the request, not the request: "(Do not mention the gift card.)".
ABOUT_REQUEST = re.compile(
    r"\b(?:the|this|a|new) (?:user )?request (?:must|should|may|will|is|covers)\b"
    r"|\b(?:the|these) following (?:actions|calls|facts)\b"
    r"|\b(?:do not|don't|must not|never) (?:mention|require|ask for|include|name)\b"
    r"|\bwithout mentioning\b|\bin the user's voice\b",
    re.IGNORECASE,
)
FIELD_NAMES = re.compile(
    r"\b(?:hindsight_prompt|is_valid_replay|is_valid|not_achieved|key_observations|"
    r"rejection_reason|failure_reason|original_prompt|final_answer|trajectory)\b"
)
INSTRUCTION_NGRAM = 5
MIN_WORDS, MAX_WORDS = 5, 80
MAX_SHOWN = 4


@dataclass(frozen=True)
class Problem:
    """One reason a request is unusable: the check's name and what to do about it."""

    check: str
    detail: str

    def __str__(self) -> str:
        return f"{self.check}: {self.detail}"


@dataclass(frozen=True)
class RunEvidence:
    """What a run shows, split by who could know it before asking."""

    shown: str  # observations, action inputs and final answer: anything the run shows
    known: str  # what the user or the agent supplied: action inputs and the user's own words
    returned: str  # what tools and the final answer returned
    succeeded: str = ""  # everything but the steps whose tool call failed
    goal: str = ""  # the original prompt: the user knew the places and names it mentions
    # The lines of the multi-line values the agent passed to its tools (code, patches, file
    # contents): what it wrote, which no user would dictate in a request.
    written: tuple[str, ...] = ()
    # The word-values the successful calls were given ("basic_economy", "round_trip"): what
    # the run did, named exactly.
    chosen: frozenset[str] = frozenset()

    @classmethod
    def of(cls, trajectory: Trajectory) -> RunEvidence:
        inputs, user, returned = [], [], [trajectory.final_answer]
        succeeded = [trajectory.final_answer]
        written: list[str] = []
        chosen: set[str] = set()
        for step in trajectory.steps:
            step_input = json.dumps(step.action_input, ensure_ascii=False)
            inputs.append(step_input)
            written += _written_lines(step.action_input.items())
            if step.action_name in USER_TURN_ACTIONS:
                user.append(step.observation)
                succeeded += [step_input, step.observation]
            else:
                returned.append(step.observation)
                if not failed_call(step.observation):
                    succeeded += [step_input, step.observation]
                    chosen |= {v.lower() for v in step.action_input.values() if _is_word_value(v)}
        user.append(str(trajectory.metadata.get("initial_user_message") or ""))
        user.append(trajectory.original_prompt)  # the user's goal: they knew all of it
        known = "\n".join(inputs + user)
        shown = "\n".join([*inputs, *user[:-1]])
        returned_text = "\n".join(returned)
        return cls(
            shown=f"{shown}\n{returned_text}",
            known=known,
            returned=returned_text,
            succeeded="\n".join([*succeeded, *user[:-1]]),
            goal=trajectory.original_prompt,
            written=tuple(dict.fromkeys(written)),
            chosen=frozenset(chosen),
        )


def _is_word_value(value: object) -> bool:
    return isinstance(value, str) and _WORD_VALUE.fullmatch(value) is not None


_WORD_VALUE = re.compile(r"[a-z]+(?:_[a-z]+)*")


def _part_of_value(text: str, evidence: RunEvidence) -> str:
    """A word-value the run's calls were given, named by its last word alone: "economy" for
    the `basic_economy` the run booked. Said so, the request asks for another thing than the
    run did. A last word that was itself a value of a successful call is fine."""
    for value in sorted(evidence.chosen):
        *head, tail = value.split("_")
        if not head or tail in evidence.chosen:
            continue
        whole = r"[\s_-]+".join(map(re.escape, value.split("_")))
        if re.search(rf"\b{re.escape(tail)}\b", text, re.I) and not re.search(whole, text, re.I):
            return f"{tail!r} for the run's {value!r}"
    return ""


MIN_WRITTEN_LINE = 15  # shorter lines ("return x", "}") are too common to say it pasted
# Arguments that hold what the agent wrote even on one line: a one-line patch or snippet is
# as much the agent's text as a long one ("patch": "+ Run `make test` before pushing.").
WRITTEN_ARGUMENTS = frozenset(
    {"patch", "diff", "code", "content", "contents", "script", "source", "snippet"}
)


def _written_lines(arguments: Iterable[tuple[str, object]]) -> list[str]:
    lines = []
    for key, value in arguments:
        if isinstance(value, str) and ("\n" in value.strip() or key in WRITTEN_ARGUMENTS):
            lines += [" ".join(line.split()) for line in value.splitlines()]
    return [line for line in lines if len(line) >= MIN_WRITTEN_LINE]


def _pasted(text: str, evidence: RunEvidence) -> str:
    """A line of what the agent wrote (`RunEvidence.written`) that `text` repeats."""
    return next((line for line in evidence.written if line in text), "")


_LAST_WORD = re.compile(r"([A-Za-z0-9]+)$")


def _cut_word(text: str, evidence: RunEvidence) -> str:
    """The last word of `text` when it is the start of a longer word of the run and no word
    of the run itself: a message that stops mid-word ("... and G" for "Gion")."""
    if not (match := _LAST_WORD.search(text)):
        return ""
    word = re.escape(match.group(1))
    edge = r"(?<![A-Za-z0-9])"
    if re.search(rf"{edge}{word}(?![A-Za-z0-9])", evidence.shown, re.IGNORECASE):
        return ""
    return match.group(1) if re.search(rf"{edge}{word}[A-Za-z0-9]", evidence.shown, re.I) else ""


_FAILURE = re.compile(
    r"^\s*(?:\{?\s*\"?error|error\b|exception|traceback|exitcode: [1-9])"
    r"|\b(?:execution failed|command not found|no such file"
    r"|permission denied|not authori[sz]ed|forbidden|timed out|status(?: code)?:? [45]\d\d)\b"
    r"|\b[45]\d\d (?:client|server) error\b"
    r"|^\s*[\w.\- ]{0,40}\b(?:rejected|refused|denied|failed)\s*:",  # "Patch rejected: ..."
    re.IGNORECASE,
)


def failed_call(observation: str) -> bool:
    """Whether a tool's answer says the call failed (an error, not an empty result)."""
    return bool(_FAILURE.search(observation[:400]))


def _occurs(kind: str, value: str, text: str, numbers: set[str]) -> bool:
    if kind == "number":
        return value in numbers
    if kind in ("id", "name"):  # whole words only: "DF89" is not in a run that shows "DF89BM"
        pattern = rf"(?<![A-Za-z0-9]){re.escape(value)}(?![A-Za-z0-9])"
        return re.search(pattern, text, re.IGNORECASE) is not None
    return value.lower() in text.lower()


# File names, paths and slug-like names (sdk/client.py, payments-api, ab_test_events):
# specifics the shared text helpers do not list, and the commonest context in technical runs.
_NAMED = re.compile(
    r"https?://[^\s)\]>,]+|(?<![\w/.-])(?:[\w-]+/)*[\w-]+(?:\.[A-Za-z]\w{0,5})+\b|\b[a-z]+(?:[-_][a-z0-9]+)+\b"
)
# A value given after a colon at the very end ("... detected: English"): an answer.
_TRAILING_VALUE = re.compile(r":\s*([^:]{1,40}?)[.!]?$")


_STRICT = re.compile(r"https?://[^\s)\]>,'\"]+[^\s)\]>,'\".?!]|[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


def mentions(text: str) -> list[tuple[str, str]]:
    """The checkable specifics of a text plus its URLs, emails, file names, paths and slugs."""
    found = [("id", m) for m in _STRICT.findall(text)]
    found += [f for f in tx.specifics(text) if not any(f[1] in m for _, m in found)]
    text = _STRICT.sub(" ", text)
    found += [("slug", m) for m in _NAMED.findall(text) if ("id", m) not in found]
    return found


def _numbers(text: str) -> set[str]:
    """The text's numbers, with "05" also as "5" so "4 May" matches "2024-05-04"."""
    found = tx.numbers(text)
    return found | {n.lstrip("0") or "0" for n in found}


def _ids_in(text: str) -> set[str]:
    return {token for kind, token in tx.specifics(text) if kind == "id"}


def instruction_ngrams(texts: Iterable[str], n: int = INSTRUCTION_NGRAM) -> set[tuple[str, ...]]:
    """Word n-grams of the program's own instructions: a request sharing one copied them."""
    grams: set[tuple[str, ...]] = set()
    for text in texts:
        words = re.findall(r"[a-z']+", text.lower())
        grams.update(tuple(words[i : i + n]) for i in range(len(words) - n + 1))
    return grams


def default_instructions() -> list[str]:
    """Every stage's instruction and field descriptions, as the uncompiled program says them."""
    from agenther_dspy.signatures import STAGE_SIGNATURES, STRUCTURED_SIGNATURES

    texts = []
    for signature in (*STAGE_SIGNATURES.values(), *STRUCTURED_SIGNATURES.values()):
        texts.append(signature.instructions)
        for field in (*signature.input_fields.values(), *signature.output_fields.values()):
            desc = (field.json_schema_extra or {}).get("desc")
            if desc:
                texts.append(str(desc))
    return texts


_DEFAULT_GRAMS: set[tuple[str, ...]] | None = None


def _default_grams() -> set[tuple[str, ...]]:
    global _DEFAULT_GRAMS
    if _DEFAULT_GRAMS is None:
        _DEFAULT_GRAMS = instruction_ngrams(default_instructions())
    return _DEFAULT_GRAMS


# A question followed by its answer: "Which flight did I take? It's HAT271."
_ANSWER_AFTER_QUESTION = re.compile(
    r"\?\s*\(?(?:(?:it|that|this|they|these|the answer)(?:'s|’s| is| was| are| were| will be)"
    r"|about|around)\b"
    r"|\b(?:should|ought to) be (?:about |around )?[$€£]?\d",
    re.IGNORECASE,
)
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
_STATING = re.compile(
    r"\b(?:is|are|was|were|costs?|will cost|totals?|comes? to|equals?|came to|returned|shows?)"
    r"\s+(?:about |around |only |just )?[$€£]?$",
    re.IGNORECASE,
)


def _stated(number: str, request: str) -> bool:
    """Whether a number is given as a fact (a later statement, "it costs $290") not as input."""
    sentences = _SENTENCE.split(request)
    for index, sentence in enumerate(sentences):
        for match in re.finditer(r"(?<![\w.])\d[\d,]*(?:\.\d+)?", sentence):
            if tx.normalize_number(match.group(0)) != number:
                continue
            question = sentence.rstrip().endswith("?")
            if not question and _STATING.search(sentence[: match.start()]):
                return True
            opening = sentence.split(" ", 1)[0].lower().strip(",.:;!?")
            if index > 0 and not sentence.rstrip().endswith("?") and opening not in _ASKING:
                return True
    return False


_ASKING = frozenset(
    "please can could would will i i'd i'm my also and then what which how when where who "
    "find show list tell give check get look".split()
)


GENERIC_WORDS = frozenset(
    """find show list tell give get check look want need like know help please thing things
    detail details information info result results update change request question answer""".split()
)


def _topic_known(request: str, evidence: RunEvidence) -> bool:
    """A request with no specific still has context when it names the topic in words the
    user or the agent used (a QA run about "crayfish and isopods"), unless the run had
    specifics of its own to name (ids, names, amounts the user gave)."""
    if any(kind in ("id", "number") for kind, _ in tx.specifics(evidence.known)):
        return False
    known = set(tx.content_tokens(evidence.known))
    words = {t for t in tx.content_tokens(request) if len(t) > 3 and t not in GENERIC_WORDS}
    return len(words & known) >= 2


def is_lookup(request: str) -> bool:
    """A request that asks to be told something rather than to have something done."""
    words = {tx.stem(w) for w in re.findall(r"[A-Za-z']+", request.lower())}
    return not words & {tx.stem(w) for w in ACTION_WORDS}


def check_request(
    request: str,
    trajectory: Trajectory,
    *,
    instructions: Iterable[str] | None = None,
    evidence: RunEvidence | None = None,
) -> list[Problem]:
    """Every gold-free reason `request` would not be trained on, for the run it describes.

    `instructions` are the texts the request must not copy (default: the program's own stage
    instructions and field descriptions).
    """
    evidence = evidence or RunEvidence.of(trajectory)
    text = " ".join(request.split())
    problems: list[Problem] = []

    def add(check: str, detail: str) -> None:
        problems.append(Problem(check, detail))

    if not text:
        return [Problem("empty", "the request is empty.")]
    words = len(text.split())
    if not MIN_WORDS <= words <= MAX_WORDS:
        add("length", f"it is {words} words long; a request is {MIN_WORDS}-{MAX_WORDS} words.")
    if match := END_TOKENS.search(text):
        add("end_token", f"it contains the control text {match.group(0)!r}; remove it.")
    if match := AGENT_SPEECH.search(text):
        add(
            "agent_speech",
            f"{match.group(0)!r} is the agent talking; write only what the user would say, "
            "about 'my' things, in the first person or as an instruction.",
        )
    if BARE_REPLY.search(text):
        add("bare_reply", "it is a reply inside a conversation, not a request that stands alone.")
    if match := FIELD_NAMES.search(text) or ABOUT_REQUEST.search(text):
        add("instruction_text", f"it carries instruction text ({match.group(0)!r}).")
    else:
        grams = _default_grams() if instructions is None else instruction_ngrams(list(instructions))
        copied = instruction_ngrams([text]) & grams
        if copied:
            add(
                "instruction_text",
                f"it copies the instructions ({' '.join(sorted(copied)[0])!r}); "
                "write the user's request, not the rules for writing one.",
            )

    if pasted := _pasted(text, evidence):
        add(
            "pasted_code",
            f"it pastes what the agent wrote ({pasted[:40]!r}); say in words what to write "
            "or change.",
        )
    if cut := _cut_word(text, evidence):
        add("cut_off", f"it stops mid-word ({cut!r}); end it where a sentence ends.")

    if part := _part_of_value(text, evidence):
        add("part_of_value", f"it names {part}; name what the run did in full.")

    shown_numbers, known_numbers = _numbers(evidence.shown), _numbers(evidence.known)
    shown_ids = _ids_in(evidence.shown)
    specifics = mentions(text)
    succeeded_numbers = _numbers(evidence.succeeded)
    truncated, absent, answers, failed_only, context = [], [], [], [], 0
    for kind, value in specifics:
        if kind == "slug":  # a file or slug counts as context when known, else says nothing
            context += value.lower() in evidence.known.lower()
            continue
        if kind == "name" and value.isupper() and len(value) <= 4:
            continue  # an acronym (HTTP, SSO, USB) is vocabulary, not a value to ground
        where = f"{evidence.shown}\n{evidence.goal}" if kind == "name" else evidence.shown
        if not _occurs(kind, value, where, shown_numbers):
            whole = [
                i for i in shown_ids if i != value and value.lower() in i.lower() and len(i) > 3
            ]
            if kind == "id" and whole:
                truncated.append(f"{value} (the run has {sorted(whole)[0]})")
            else:
                absent.append(value)
            continue
        if not _occurs(kind, value, evidence.succeeded, succeeded_numbers):
            failed_only.append(value)
        if _occurs(kind, value, evidence.known, known_numbers):
            context += 1
        elif kind == "number" and _stated(value, text):
            answers.append(value)
    if truncated:
        add(
            "truncated_id",
            f"ids are cut short: {', '.join(truncated[:MAX_SHOWN])}; write ids whole.",
        )
    if absent:
        add(
            "ungrounded",
            f"it names values the run never shows: {', '.join(absent[:MAX_SHOWN])}; "
            "use only values from the run's observations, inputs and final answer.",
        )
    if failed_only:
        add(
            "asks_failed",
            f"it names {', '.join(failed_only[:MAX_SHOWN])}, which the run only used in tool "
            "calls that failed; ask only for what succeeded.",
        )
    trailing = _TRAILING_VALUE.search(text)
    if (
        trailing
        and trailing.group(1).lower() in evidence.returned.lower()
        and trailing.group(1).lower() not in evidence.known.lower()
    ):
        answers.append(trailing.group(1))
    if (match := _ANSWER_AFTER_QUESTION.search(text)) and is_lookup(text):
        answers.append(match.group(0).strip("? ("))
    if answers and is_lookup(text):
        add(
            "answer_inside",
            f"it asks for something and already states the answer "
            f"({', '.join(answers[:MAX_SHOWN])}); ask the question without its answer.",
        )
    if not context and not _topic_known(text, evidence):
        add(
            "no_context",
            "it names nothing the user could know before asking (an id, a name, a date, an "
            "amount they supplied): say who the user is and what to act on.",
        )
    return problems
