"""Writing training rows as a Hugging Face dataset, with a card that says how they were made.

The folder holds the dataset twice: `save_to_disk`'s Arrow files, for
`datasets.load_from_disk(DIR)`, and one Parquet file under `data/`, for
`datasets.load_dataset("parquet", data_files="DIR/data/*.parquet")` and for the Hub, where the
card's YAML header declares it the `train` split. (`load_dataset(DIR)` itself refuses a folder
written by `save_to_disk`.) The card (`README.md`) states the source files, the model, the
program hash, θ, δ, K and the acceptance counts; `agenther_card.json` holds the same facts for
programs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

PARQUET_PATH = "data/train-00000-of-00001.parquet"
CARD_JSON = "agenther_card.json"

# The facts a card must state, in the order it states them: (key, label).
CARD_FIELDS = (
    ("source_files", "Source files"),
    ("model", "Model"),
    ("program_hash", "Program hash"),
    ("min_confidence", "θ (min_confidence: both judges' confidence to accept)"),
    ("severity_threshold", "δ (severity_threshold: runs below it are skipped)"),
    ("max_attempts", "K (max_attempts: relabeling attempts per run)"),
    ("counts", "Acceptance counts"),
)


def _no_empty_objects(value: Any) -> Any:
    """`{}` becomes None, at any depth: Parquet cannot store a struct without fields."""
    if isinstance(value, dict):
        return {k: _no_empty_objects(v) for k, v in value.items()} if value else None
    if isinstance(value, list):
        return [_no_empty_objects(v) for v in value]
    return value


def _show(value: Any) -> str:
    if value is None or value == "" or value == [] or value == {}:
        return "not given"
    if isinstance(value, list):
        return ", ".join(f"`{v}`" for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{v} {k}" for k, v in value.items())
    return f"`{value}`"


def render_card(card: dict[str, Any], rows: int, columns: list[str]) -> str:
    """The dataset card: a YAML header declaring the Parquet split, then the facts."""
    lines = [
        "---",
        "configs:",
        "- config_name: default",
        "  data_files:",
        "  - split: train",
        f"    path: {PARQUET_PATH}",
        "tags:",
        "- agenther",
        "- hindsight-relabeling",
        "- agent-trajectories",
        "---",
        "",
        f"# {card.get('title') or 'Hindsight-relabeled agent trajectories'}",
        "",
        "Training rows made by agenther-dspy: failed agent runs relabeled with the goal they did "
        "achieve (hindsight relabeling, as in AgentHER), accepted only when two judges agreed.",
        "",
        f"- Rows: {rows}",
        f"- Columns: {', '.join(f'`{c}`' for c in columns) or 'none'}",
    ]
    if card.get("output_format"):
        lines.append(f"- Row format: `{card['output_format']}`")
    lines += ["", "## How it was made", "", "| | |", "|---|---|"]
    for key, label in CARD_FIELDS:
        lines.append(f"| {label} | {_show(card.get(key))} |")
    known = {key for key, _ in CARD_FIELDS} | {"title", "output_format"}
    for key, value in card.items():
        if key not in known:
            lines.append(f"| {key} | {_show(value)} |")
    lines += [
        "",
        "## Loading",
        "",
        "```python",
        "from datasets import load_dataset, load_from_disk",
        'rows = load_from_disk("path/to/this/folder")  # the Arrow files',
        'rows = load_dataset("parquet", data_files="path/to/this/folder/data/*.parquet", '
        'split="train")',
        "```",
        "",
    ]
    return "\n".join(lines)


def write_hf_dataset(
    rows: Iterable[dict[str, Any]], out_dir: str | Path, card: dict[str, Any]
) -> Path:
    """Write `rows` to `out_dir` as a Hugging Face dataset (Arrow + Parquet) with its card.

    `card` holds what the card states: `source_files` (list), `model`, `program_hash`,
    `min_confidence` (θ), `severity_threshold` (δ), `max_attempts` (K), `counts` (status →
    number), and optionally `output_format`, `title`, `columns` (the column names to give an
    empty dataset) and any other fact, listed as given.
    Returns `out_dir`.
    """
    from datasets import Dataset, Features, Value, disable_progress_bars, enable_progress_bars
    from datasets.utils.tqdm import are_progress_bars_disabled

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = [_no_empty_objects(dict(row)) for row in rows]
    bars_were_off = are_progress_bars_disabled()
    disable_progress_bars()
    try:
        if table:
            dataset = Dataset.from_list(table)
        else:  # no rows to infer a schema from: string columns, named by the card if it can
            names = card.get("columns") or ["source_trajectory_id"]
            features = Features({name: Value("string") for name in names})
            dataset = Dataset.from_dict({name: [] for name in names}, features=features)
        dataset.save_to_disk(str(out_dir), num_shards=1 if not table else None)
        parquet = out_dir / PARQUET_PATH
        parquet.parent.mkdir(parents=True, exist_ok=True)
        dataset.to_parquet(str(parquet))
    finally:
        if not bars_were_off:
            enable_progress_bars()
    text = render_card(card, len(table), list(dataset.column_names))
    (out_dir / "README.md").write_text(text, encoding="utf-8")
    facts = {**card, "rows": len(table), "columns": list(dataset.column_names)}
    (out_dir / CARD_JSON).write_text(
        json.dumps(facts, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8"
    )
    return out_dir


def read_rows(path: str | Path) -> Iterator[dict[str, Any]]:
    """The training rows of a JSON-lines output file, one at a time: a resumed batch's file
    holds every run's rows, and the dataset is written from all of them."""
    with Path(path).open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)
