"""Labeled sets: trajectories in the input schema plus a `gold` object.

Any JSONL file in this schema evaluates, not just the shipped set. Rows that do not parse are
reported with file, line and reason, like every other input.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

import dspy
from pydantic import BaseModel, Field, ValidationError

from agenther_dspy.formats.agenther import InputError, InvalidRecord, describe_validation_error
from agenther_dspy.schema import FailureType, Trajectory

SPLITS = ("train", "dev", "test")


class Gold(BaseModel):
    is_failure: bool
    failure_type: FailureType
    recoverable: bool
    severity_weight: float = Field(ge=0.0, le=1.0)
    achievements: list[str]
    key_facts: list[str]
    must_not_require: list[str]
    reference_hindsight_prompts: list[str]
    notes: str = ""


@dataclass
class LabeledSet:
    path: Path
    examples: list[dspy.Example]
    invalid: list[InvalidRecord]

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def shipped_dir() -> Path:
    return Path(str(resources.files("agenther_dspy") / "data" / "labeled"))


def resolve_dataset(dataset: str | Path | None, split: str | None) -> Path:
    """A file as given; a folder (default: the shipped set) with `split` (default: test)."""
    path = Path(dataset) if dataset else shipped_dir()
    if path.is_dir():
        path = path / f"{split or 'test'}.jsonl"
    elif split:
        raise InputError(f"--split applies to a folder of splits; {path} is a file")
    if not path.is_file():
        raise InputError(f"{path}: no such labeled file")
    return path


def load_labeled(path: str | Path) -> LabeledSet:
    path = Path(path)
    examples, invalid = [], []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row, dict):
                raise ValueError(f"expected a JSON object, got {type(row).__name__}")
            if "gold" not in row:
                raise ValueError("gold: Field required")
            gold = Gold.model_validate(row.pop("gold"))
            trajectory = Trajectory.model_validate(row)
        except ValidationError as error:
            invalid.append(InvalidRecord(str(path), number, describe_validation_error(error)))
            continue
        except ValueError as error:  # JSONDecodeError is a ValueError
            invalid.append(InvalidRecord(str(path), number, str(error)))
            continue
        examples.append(
            dspy.Example(
                trajectory=trajectory.model_dump(mode="json"), gold=gold.model_dump()
            ).with_inputs("trajectory")
        )
    return LabeledSet(path, examples, invalid)


def sample_labeled(labeled: LabeledSet, limit: int | None, seed: int = 0) -> LabeledSet:
    """`limit` examples drawn at random with `seed`, kept in file order; the whole set
    without a limit or when it has no more. The same set, limit and seed always give the
    same examples, so quick evaluations can be compared with each other."""
    if limit is None or limit >= len(labeled.examples):
        return labeled
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    chosen = sorted(random.Random(seed).sample(range(len(labeled.examples)), limit))
    return replace(labeled, examples=[labeled.examples[index] for index in chosen])
