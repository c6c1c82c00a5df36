"""`agenther-dspy review`: one static HTML page to judge a batch or an evaluation by eye.

The page opens from disk with no server and reaches no network: the records are embedded as
JSON in a `<script type="application/json">` block (with `<`, `>` and `&` written as `\\u003c`
etc., so no log text can close the block), and a small script renders them with
`textContent` only, a page at a time. A Content-Security-Policy allows that one script and
that one style sheet, by hash, and nothing else.

A batch's results file holds, per record, the status, the reason, the confidences, the new
request and every attempt; the run itself (goal, failure, steps) is read again from the input
file each result names. An `evaluate --report` holds the same per row, plus the gold
annotation and the metric's score and feedback; its runs come from the labeled set it names.
Long texts are cut in the middle with the cut marked, so a 10,000-record batch stays a page a
browser opens.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from collections import Counter
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import typer

from agenther_dspy.formats import InputError, open_reader

# Characters kept of each text; the rest is cut from the middle and the cut marked.
GOAL_CHARS = 1500
FAILURE_CHARS = 800
STEP_TEXT_CHARS = 280
ARGS_CHARS = 200
RATIONALE_CHARS = 400
# Steps kept per run: the first and last half of this, with the gap marked.
MAX_STEPS = 40
STATUSES = ("accepted", "rejected", "skipped", "error", "invalid")


class ReviewError(Exception):
    """The file cannot be reviewed; the message says why."""


def default_review_path(source: str | Path) -> Path:
    """`out.results.jsonl` → `out.review.html`; `report.json` → `report.review.html`."""
    source = Path(source)
    stem = source.name.removesuffix(".jsonl").removesuffix(".json").removesuffix(".results")
    return source.with_name(f"{stem}.review.html")


def write_review(source: str | Path, output: str | Path | None = None) -> Path:
    """Write the review page of a results file or an evaluation report; return its path."""
    source = Path(source)
    output = Path(output) if output else default_review_path(source)
    page = render_page(build_data(source))
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    partial.write_text(page, encoding="utf-8")
    partial.replace(output)
    return output


def review_command(
    results: Annotated[Path, typer.Argument(help="a run's results file or an evaluate report")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="the page")] = None,
) -> None:
    """Write one static HTML page to review a batch or an evaluation; it opens from disk."""
    from agenther_dspy.display import console, failing_on

    with failing_on(ReviewError, InputError, OSError):
        page = write_review(results, output)
    console.print(f"Review page: {page.resolve()}", highlight=False)


def announce(console: Any, source: str | Path, *, run_id: str, tracking_uri: str | None) -> None:
    """The end of `run` and `evaluate`: write the review page and say where it and the MLflow
    run are. A page that cannot be written is reported, never fatal."""
    try:
        page = write_review(source)
        console.print(f"Review page: {page.resolve()} (open it in a browser)", highlight=False)
    except (OSError, ReviewError, InputError) as error:
        console.print(f"[yellow]no review page:[/yellow] {error}", highlight=False)
    if run_id:
        from agenther_dspy.tracking import run_location

        try:
            where = run_location(run_id, tracking_uri)
        except Exception as error:  # the run is recorded; only its address could not be read
            where = f"MLflow run {run_id} (its address could not be read: {error})"
        console.print(where, highlight=False, soft_wrap=True)


# ---------------------------------------------------------------------------- the data


def build_data(source: Path) -> dict[str, Any]:
    """Everything the page shows, from a results file (JSON lines) or a report (one object)."""
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ReviewError(f"{source}: cannot read ({error})") from None
    head = text.lstrip()[:1]
    if head == "{":
        try:
            report = json.loads(text)
        except json.JSONDecodeError:
            report = None  # JSON lines: one object per line
        if isinstance(report, dict) and "rows" in report and "summary" in report:
            return _evaluation_data(source, report)
    if head not in ("{", ""):
        raise ReviewError(f"{source}: neither a results file (JSON lines) nor a report")
    return _batch_data(source, text)


def _batch_data(source: Path, text: str) -> dict[str, Any]:
    results: dict[str, dict] = {}  # by key, in file order; a later line for a key wins
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            result = json.loads(line)
        except json.JSONDecodeError:
            raise ReviewError(f"{source}:{number}: not JSON; is this a results file?") from None
        if not isinstance(result, dict) or "status" not in result:
            raise ReviewError(f"{source}:{number}: no status; is this a results file?")
        results[str(result.get("key", number))] = result
    notes: list[str] = []
    runs = _input_runs(results.values(), notes)
    requests = _requests_beside(source, results.values())
    records = []
    for result in results.values():
        run = runs.get((result.get("file", ""), result.get("trajectory_id", "")))
        request = result.get("hindsight_prompt") or requests.get(result.get("trajectory_id", ""))
        records.append(_record(result, run, request or ""))
    counts = Counter(r["status"] for r in records)
    counts["single_judge"] = sum(r["single_judge"] for r in records)
    return _page_data("batch", source, records, counts, notes)


def _evaluation_data(source: Path, report: dict) -> dict[str, Any]:
    notes: list[str] = []
    params = report.get("params") or {}
    runs: dict[str, dict] = {}
    dataset = params.get("dataset")
    if dataset and Path(dataset).is_file():
        for line in Path(dataset).read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
                runs[str(row.get("trajectory_id", ""))] = row
            except (json.JSONDecodeError, AttributeError):
                continue
    else:
        notes.append(f"labeled set {dataset or '(not named)'} not found: goals and steps left out")
    records = []
    for row in report.get("rows") or []:
        run = runs.get(row.get("trajectory_id", ""))
        record = _record(row, run, row.get("hindsight_prompt", ""))
        gold = row.get("gold") or (run or {}).get("gold") or {}
        record["gold"] = _gold(gold, row)
        record["score"] = row.get("score")
        record["components"] = row.get("components") or {}
        record["feedback"] = row.get("feedback", "")
        records.append(record)
    counts = Counter(r["status"] for r in records)
    counts["single_judge"] = sum(r["single_judge"] for r in records)
    data = _page_data("evaluation", source, records, counts, notes)
    summary = report.get("summary") or {}
    data["metrics"] = {
        key: summary.get(key)
        for key in (
            "examples",
            "fidelity",
            "fidelity_ci95",
            "acceptance_precision",
            "acceptance_recall",
            "failure_type_accuracy",
            "accepted",
        )
    }
    data["params"] = {k: params.get(k) for k in ("model", "dataset", "program_file") if k in params}
    return data


def _page_data(kind: str, source: Path, records: list, counts: Counter, notes: list) -> dict:
    types = sorted({r["failure_type"] for r in records if r["failure_type"]})
    return {
        "kind": kind,
        "source": str(source.resolve()),
        "generated": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "counts": {key: counts.get(key, 0) for key in (*STATUSES, "single_judge")},
        "failure_types": types,
        "notes": notes,
        "records": records,
    }


def _input_runs(results, notes: list[str]) -> dict[tuple[str, str], dict]:
    """The runs behind the results, read again from the input files the results name."""
    wanted: dict[str, set[str]] = {}
    for result in results:
        if result.get("trajectory_id") and result.get("file"):
            wanted.setdefault(result["file"], set()).add(result["trajectory_id"])
    runs: dict[tuple[str, str], dict] = {}
    for file, ids in wanted.items():
        if not Path(file).is_file():
            notes.append(f"input file {file} not found: its goals and steps are left out")
            continue
        try:
            for record in open_reader(file):
                trajectory = getattr(record, "trajectory", None)
                if trajectory is not None and trajectory.trajectory_id in ids:
                    runs[(file, trajectory.trajectory_id)] = trajectory.model_dump(mode="json")
        except (InputError, OSError) as error:
            notes.append(f"input file {file} could not be read again ({error})")
    return runs


def _requests_beside(source: Path, results) -> dict[str, str]:
    """Accepted requests from the training rows beside a results file written before results
    lines carried them (`out.results.jsonl` → `out.jsonl`)."""
    if all(r.get("hindsight_prompt") or r.get("status") != "accepted" for r in results):
        return {}
    rows = source.with_name(source.name.replace(".results.jsonl", ".jsonl"))
    requests: dict[str, str] = {}
    if rows != source and rows.is_file():
        for line in rows.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
                requests[row["source_trajectory_id"]] = row["hindsight_prompt"]
            except (json.JSONDecodeError, KeyError, TypeError):
                continue
    return requests


def _record(result: dict, run: dict | None, request: str) -> dict[str, Any]:
    attempts = result.get("attempt_log")
    if attempts is None:  # an evaluation row
        attempts = result.get("attempts") if isinstance(result.get("attempts"), list) else []
    record: dict[str, Any] = {
        "id": result.get("trajectory_id") or f"{result.get('file', '')}:{result.get('line', '')}",
        "status": result.get("status", ""),
        "single_judge": bool(result.get("single_judge")),
        "stage": result.get("stage", ""),
        "reason": result.get("reason", ""),
        "failure_type": result.get("failure_type") or "",
        "severity": result.get("severity_weight"),
        "confidence": result.get("confidence"),
        "relabel_confidence": result.get("relabel_confidence"),
        "judge_confidence": result.get("judge_confidence"),
        "request": request,
        "attempts": [_attempt(a) for a in attempts if isinstance(a, dict)],
    }
    if run is not None:
        record["goal"] = cut(run.get("original_prompt", ""), GOAL_CHARS)
        record["failure"] = cut(run.get("failure_reason", ""), FAILURE_CHARS)
        record["final_answer"] = cut(run.get("final_answer", ""), STEP_TEXT_CHARS)
        record["steps"] = _steps(run.get("steps") or [])
    return record


def _steps(steps: list[dict]) -> list[Any]:
    numbered = list(enumerate(steps, 1))
    gap = 0
    if len(numbered) > MAX_STEPS:
        half = MAX_STEPS // 2
        gap = len(numbered) - MAX_STEPS
        numbered = [*numbered[:half], (0, {}), *numbered[-half:]]
    shown: list[Any] = []
    for number, step in numbered:
        if number == 0:
            shown.append({"gap": gap})
            continue
        args = step.get("action_input") or {}
        shown.append(
            {
                "n": number,
                "action": str(step.get("action_name", "")),
                "args": cut(json.dumps(args, ensure_ascii=False) if args else "", ARGS_CHARS),
                "thought": cut(step.get("thought", ""), STEP_TEXT_CHARS),
                "observation": cut(step.get("observation", ""), STEP_TEXT_CHARS),
            }
        )
    return shown


def _attempt(attempt: dict) -> dict[str, Any]:
    relabel = attempt.get("relabel") or {}
    verdict = attempt.get("verdict")
    shown: dict[str, Any] = {
        "n": attempt.get("attempt"),
        "outcome": attempt.get("outcome", ""),
        "request": relabel.get("hindsight_prompt", ""),
        "valid": relabel.get("is_valid_replay"),
        "confidence": relabel.get("confidence"),
        "temperature": relabel.get("temperature"),
        "rationale": cut(relabel.get("rationale", ""), RATIONALE_CHARS),
    }
    if isinstance(verdict, dict):
        shown["judge"] = {
            "valid": verdict.get("is_valid"),
            "confidence": verdict.get("confidence"),
            "reason": cut(verdict.get("rejection_reason", ""), RATIONALE_CHARS),
        }
    return shown


def _gold(gold: dict, row: dict) -> dict[str, Any]:
    return {
        "recoverable": gold.get("recoverable", row.get("gold_recoverable")),
        "failure_type": gold.get("failure_type", row.get("gold_failure_type")),
        "severity": gold.get("severity_weight"),
        "achievements": list(gold.get("achievements") or []),
        "key_facts": list(gold.get("key_facts") or []),
        "must_not_require": list(gold.get("must_not_require") or []),
        "references": list(gold.get("reference_hindsight_prompts") or []),
        "notes": gold.get("notes", ""),
    }


def cut(text: Any, limit: int) -> str | list:
    """`text` if it fits in `limit` characters, else `[head, characters cut, tail]`: the page
    shows the cut as a marked gap between the two ends."""
    text = "" if text is None else str(text)
    if len(text) <= limit:
        return text
    head = limit * 2 // 3
    tail = limit - head
    return [text[:head], len(text) - head - tail, text[-tail:]]


# ---------------------------------------------------------------------------- the page

_SLOT = re.compile(r"__(TITLE|CSP|STYLE|SCRIPT|DATA)__")


def embed_json(data: Any) -> str:
    """JSON that is inert inside a `<script>` element: no `<`, `>` or `&` left to parse."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    for char, escape in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e")):
        text = text.replace(char, escape)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _asset(name: str) -> str:
    return (resources.files("agenther_dspy") / "data" / "review" / name).read_text("utf-8")


def _sha256_source(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def render_page(data: dict[str, Any]) -> str:
    script, style = _asset("review.js"), _asset("review.css")
    csp = (
        f"default-src 'none'; script-src {_sha256_source(script)}; "
        f"style-src {_sha256_source(style)}; base-uri 'none'; form-action 'none'"
    )
    kind = "evaluation" if data["kind"] == "evaluation" else "batch"
    values = {
        "TITLE": html.escape(f"agenther-dspy {kind} review: {Path(data['source']).name}"),
        "CSP": html.escape(csp),
        "STYLE": style,
        "SCRIPT": script,
        "DATA": embed_json(data),
    }
    # One pass, so nothing inserted is scanned again for slots.
    return _SLOT.sub(lambda match: values[match.group(1)], _asset("review.html"))
