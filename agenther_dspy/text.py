"""Small, deterministic text checks. No LM, no models.

The fidelity metric is built from them, and the relabeler uses `similarity` to turn down a
near-copy of the prompt the run failed. They live outside `eval/` so that the program's
stages can use them without depending on the evaluation code.
"""

from __future__ import annotations

import re
from difflib import SequenceMatcher

# At or above this `similarity` to the original prompt, a proposed prompt is a near-copy: the
# relabeler spends an attempt on it and the fidelity metric halves its score.
COPY_SIMILARITY = 0.8

STOPWORDS = frozenset(
    """a an the and or but if of to in on at by for with from into onto about as is are was were
    be been being it its this that these those there here i me my we our you your he she they
    them their his her do does did done have has had can could would should will shall may
    might must please all any some each every no not only just also very so than then too up
    down out over under more most less least what which who whom whose when where why how one
    two""".split()
)

# Ids with a letter before a digit (HAT271, L1002) stay whole; "10kg" splits into 10 + kg.
_WORD = re.compile(
    r"[A-Za-z0-9]*[A-Za-z][A-Za-z0-9]*\d[A-Za-z0-9]*|[A-Za-z][A-Za-z'’-]*|\d[\d,]*(?:\.\d+)?"
)
_NUMBER = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?")
_QUOTED = re.compile(r"\"([^\"]{2,80})\"|“([^”]{2,80})”|`([^`]{2,80})`|(?<!\w)'([^']{2,60})'(?!\w)")
_ID = re.compile(r"\b(?=[A-Za-z0-9_-]*\d)(?=[A-Za-z0-9_-]*[A-Za-z])[A-Za-z0-9][A-Za-z0-9_-]{2,}\b")
# A number with a lower-case unit or ordinal ("500-unit", "8th", "503s"): a number, not an id.
_NUMBER_WITH_SUFFIX = re.compile(r"^\d[\d.,]*(?:[a-z]{1,3}|-[a-z]+)+$")
_CODE = re.compile(r"\b[A-Z]{5,}\b")
_CAPITALIZED = re.compile(r"(?<=[a-z0-9,;:] )[A-Z][a-zA-Z]+(?:[A-Z][a-z]+)*\b")


def normalize_number(text: str) -> str:
    text = text.replace(",", "")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def numbers(text: str) -> set[str]:
    return {normalize_number(match) for match in _NUMBER.findall(text)}


def stem(word: str) -> str:
    word = word.lower().strip("'’-")
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def content_tokens(text: str) -> list[str]:
    """Lower-cased, lightly stemmed words and normalised numbers, stopwords removed."""
    tokens = []
    for word in _WORD.findall(text):
        if word[0].isdigit():
            tokens.append(normalize_number(word))
        elif word.lower() not in STOPWORDS:
            tokens.append(stem(word))
    return tokens


def specifics(prompt: str) -> list[tuple[str, str]]:
    """The checkable specifics of a prompt, as (kind, text): quoted values, numbers, ids, names."""
    found: list[tuple[str, str]] = []
    for groups in _QUOTED.findall(prompt):
        found.append(("quoted", next(g for g in groups if g)))
    found += [("number", normalize_number(n)) for n in _NUMBER.findall(prompt)]
    ids = {t for t in _ID.findall(prompt) if not _NUMBER_WITH_SUFFIX.match(t)}
    ids |= set(_CODE.findall(prompt))
    found += [("id", token) for token in sorted(ids) if not token.isdigit()]
    names = {
        word
        for word in _CAPITALIZED.findall(prompt)
        if word.lower() not in STOPWORDS and word not in ids
    }
    found += [("name", name) for name in sorted(names)]
    seen: dict[tuple[str, str], None] = {}
    for item in found:
        seen.setdefault(item, None)
    return list(seen)


def similarity(a: str, b: str) -> float:
    return SequenceMatcher(None, " ".join(a.lower().split()), " ".join(b.lower().split())).ratio()


def token_f1(a: str, b: str) -> float:
    left, right = content_tokens(a), content_tokens(b)
    if not left or not right:
        return 0.0
    common = sum(min(left.count(t), right.count(t)) for t in set(left))
    if not common:
        return 0.0
    precision, recall = common / len(left), common / len(right)
    return 2 * precision * recall / (precision + recall)


def distinct_n(texts: list[str], n: int) -> float:
    """Share of distinct n-grams among all n-grams of the texts (diversity; 0 when none)."""
    grams = []
    for text in texts:
        words = text.lower().split()
        grams += [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0
