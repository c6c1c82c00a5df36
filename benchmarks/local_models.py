"""Which local model, and which constrained decoding? Quality, speed and memory per model.

For every installed model, in a fresh process each (so peak RSS is that model's own):
  * parse failures, prompt and answer tokens, and seconds per prediction, for each stage's
    Predict called directly on stage prompts, in three decoding modes:
      - `chat`: DSPy's ChatAdapter, with the grammar `lm/grammar.py` derives from the
        output fields its system message lists (the program's path);
      - `json`: DSPy's JSONAdapter, whose request carries the signature as a JSON schema,
        turned into a grammar by llama.cpp's own converter (bounds as `maxLength`);
      - `free`: ChatAdapter with no grammar.
    The prompts are the free relabeler's four stages on the AgentHER example runs and the
    structured relabeler's two steps and the judge on the dev runs that offer a choice of
    goals. DSPy's ChatAdapter→JSONAdapter fallback stays on, so a failure is an answer
    neither adapter could read; `calls` counts the fallbacks too;
  * seconds per trajectory for the whole program (LM detector and extractor, constrained);
  * the hindsight prompts it produced, and how close each is to the failed original (a
    near-copy is the failure the method exists to avoid);
  * peak RSS.
Then, for the default model, trajectories per minute at 1, 2 and 4 concurrent requests
(threads, with as many llama.cpp slots).

DSPy's cache is off throughout; llama.cpp's prompt cache stays on, as in production.

    python benchmarks/local_models.py [--models smollm2-135m,qwen2.5-coder-0.5b] [--runs 4]
    python benchmarks/local_models.py --models qwen2.5-coder-0.5b --no-program --no-throughput
"""

from __future__ import annotations

import argparse
import difflib
import json
import resource
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

EXAMPLES = (
    Path(__file__).resolve().parents[2] / "shared/data/peer/agenther_example_trajectories.json"
)


def _load_examples(path: Path) -> list[Any]:
    from agenther_dspy.schema import Trajectory

    return [Trajectory.model_validate(row) for row in json.loads(path.read_text())]


MODES = ("chat", "json", "free")
STRUCTURED_RUNS = 4  # dev runs that offer a choice of goals


def _stage_inputs(trajectory: Any, rendered: str) -> list[tuple[str, dict[str, Any]]]:
    """The four stage prompts of the free relabeler on one run, with inputs that do not
    depend on earlier answers (rule-based outcome, original prompt as the request to
    verify), so every decoding mode answers exactly the same prompts."""
    from agenther_dspy.modules.extractor import RuleOutcomeExtractor

    outcome = RuleOutcomeExtractor()(trajectory=trajectory, rendered=rendered).outcome
    return [
        (
            "detect",
            {
                "trajectory": rendered,
                "original_prompt": trajectory.original_prompt,
                "failure_reason": trajectory.failure_reason or "(not given)",
            },
        ),
        ("extract", {"trajectory": rendered, "original_prompt": trajectory.original_prompt}),
        (
            "relabel",
            {
                "trajectory": rendered,
                "achievements": outcome.achievements,
                "key_observations": outcome.key_observations,
                "not_achieved": outcome.limitations,
            },
        ),
        ("verify", {"trajectory": rendered, "hindsight_prompt": trajectory.original_prompt}),
    ]


def _structured_inputs(trajectory: Any, rendered: str) -> list[tuple[str, dict[str, Any]]]:
    """The structured relabeler's two LM steps and the judge on one run, from code alone:
    the facts and options it reads, and the template draft as the request to judge."""
    from agenther_dspy.modules.facts import agent_words, run_facts
    from agenther_dspy.modules.goals import candidate_goals, number_options
    from agenther_dspy.modules.structured import template_request, who_text

    facts = run_facts(trajectory)
    said = agent_words(trajectory)
    goals = candidate_goals(facts, said)
    draft = template_request(facts, goals[-1])
    return [
        ("choose_goal", {"facts": facts.render(), "options": number_options(goals)}),
        (
            "phrase_request",
            {
                "user": who_text(facts) or "not known",
                "draft": draft,
                "avoid": "\n".join(f"- {f}" for f in facts.failures) or "nothing",
                "feedback": "",
            },
        ),
        ("verify", {"trajectory": rendered, "hindsight_prompt": draft}),
    ]


def _structured_runs() -> list[Any]:
    """The first dev runs whose achievements offer more than one goal."""
    from agenther_dspy.eval.dataset import load_labeled, resolve_dataset
    from agenther_dspy.modules.facts import agent_words, run_facts
    from agenther_dspy.modules.goals import candidate_goals
    from agenther_dspy.schema import Trajectory

    runs = []
    for example in load_labeled(resolve_dataset(None, "dev")).examples:
        trajectory = Trajectory.model_validate(example.trajectory)
        if len(candidate_goals(run_facts(trajectory), agent_words(trajectory))) > 1:
            runs.append(trajectory)
        if len(runs) == STRUCTURED_RUNS:
            break
    return runs


def _stage_parse(model: str, mode: str) -> dict[str, Any]:
    import dspy
    from dspy.utils.exceptions import AdapterParseError

    from agenther_dspy.lm.local import build_local_lm
    from agenther_dspy.modules.render import render_trajectory
    from agenther_dspy.signatures import STAGE_SIGNATURES, STRUCTURED_SIGNATURES

    signatures = {**STAGE_SIGNATURES, **STRUCTURED_SIGNATURES}
    adapter = dspy.JSONAdapter() if mode == "json" else dspy.ChatAdapter()
    lm = build_local_lm(f"local:{model}", cache=False, constrained=mode != "free")
    lm("Say OK.")  # loads the weights, so the timings below are steady-state
    calls_before = len(lm.history)
    failures = predictions = 0
    per_stage: dict[str, dict[str, float]] = {}
    relabels: list[dict[str, Any]] = []
    prompts = [(t, _stage_inputs) for t in _load_examples(EXAMPLES)]
    prompts += [(t, _structured_inputs) for t in _structured_runs()]
    start = time.perf_counter()
    for trajectory, inputs_of in prompts:
        rendered = render_trajectory(trajectory)
        for stage, inputs in inputs_of(trajectory, rendered):
            predictions += 1
            seen = len(lm.history)
            began = time.perf_counter()
            with dspy.context(lm=lm, adapter=adapter):
                try:
                    out = dspy.Predict(signatures[stage])(**inputs)
                except (AdapterParseError, ValueError):
                    out = None
            row = per_stage.setdefault(
                stage, {"n": 0, "failed": 0, "prompt_tokens": 0, "answer_tokens": 0, "s": 0.0}
            )
            row["n"] += 1
            row["failed"] += out is None
            row["s"] += time.perf_counter() - began
            for entry in lm.history[seen:]:
                usage = entry.get("usage") or {}
                row["prompt_tokens"] += usage.get("prompt_tokens") or 0
                row["answer_tokens"] += usage.get("completion_tokens") or 0
            if out is None:
                failures += 1
            elif stage == "relabel":
                relabels.append(
                    {
                        "id": trajectory.trajectory_id,
                        "hindsight_prompt": out.hindsight_prompt,
                        "similarity_to_original": _similarity(
                            out.hindsight_prompt, trajectory.original_prompt
                        ),
                        "valid": out.is_valid_replay,
                        "confidence": out.confidence,
                    }
                )
            elif stage == "phrase_request":
                relabels.append({"id": trajectory.trajectory_id, "request": out.request})
    seconds = time.perf_counter() - start
    return {
        "failures": failures,
        "predictions": predictions,
        "calls": len(lm.history) - calls_before,
        "s_per_prediction": seconds / predictions,
        "prompt_tokens": sum(r["prompt_tokens"] for r in per_stage.values()),
        "answer_tokens": sum(r["answer_tokens"] for r in per_stage.values()),
        "stages": per_stage,
        "relabels": relabels,
        "peak_rss_mb": _peak_rss_mb(),
    }


def _similarity(a: str, b: str) -> float:
    return round(difflib.SequenceMatcher(None, a.lower(), b.lower()).ratio(), 2)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _run_program(lm: Any, trajectory: Any) -> dict[str, Any]:
    import dspy

    from agenther_dspy.modules.program import HindsightRelabeler

    # The LM comes from dspy.context, never from module state.
    program = HindsightRelabeler(detector="lm", llm_extractor=True)
    start = time.perf_counter()
    with dspy.context(lm=lm):
        try:
            result = program(trajectory=trajectory)
            error = ""
        except Exception as exc:  # a benchmark records the failure and goes on
            result, error = None, f"{type(exc).__name__}: {exc}"[:200]
    seconds = time.perf_counter() - start
    relabel = getattr(result, "relabel", None) if result is not None else None
    prompt = relabel.hindsight_prompt if relabel is not None else ""
    similarity = _similarity(prompt, trajectory.original_prompt)
    return {
        "id": trajectory.trajectory_id,
        "seconds": seconds,
        "status": getattr(result, "status", "error") if result is not None else "error",
        "stage": getattr(result, "stage", "") if result is not None else "",
        "reason": (getattr(result, "reason", "") if result is not None else error)[:160],
        "hindsight_prompt": prompt,
        "similarity_to_original": similarity if prompt else None,
    }


def measure_program(model: str) -> dict[str, Any]:
    """The whole program (LM detector and extractor, constrained) on every example run."""
    from agenther_dspy.lm.local import build_local_lm

    examples = _load_examples(EXAMPLES)
    load_start = time.perf_counter()
    lm = build_local_lm(f"local:{model}", cache=False)
    lm("Say OK.")
    load_s = time.perf_counter() - load_start
    runs = [_run_program(lm, trajectory) for trajectory in examples]
    return {
        "load_s": load_s,
        "program": runs,
        "s_per_trajectory": sum(r["seconds"] for r in runs) / len(runs),
        "peak_rss_mb": _peak_rss_mb(),
    }


def measure_stages(model: str, mode: str) -> dict[str, Any]:
    return _stage_parse(model, mode)


def measure_throughput(model: str, threads: int, runs: int) -> dict[str, Any]:
    """Trajectories per minute with `threads` concurrent program runs and as many slots."""
    from agenther_dspy.lm.local import build_local_lm

    examples = _load_examples(EXAMPLES)
    lm = build_local_lm(f"local:{model}", cache=False, n_parallel=threads)
    lm("Say OK.")
    work = [examples[i % len(examples)] for i in range(runs)]
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        results = list(pool.map(lambda t: _run_program(lm, t), work))
    seconds = time.perf_counter() - start
    return {
        "model": model,
        "threads": threads,
        "runs": runs,
        "seconds": seconds,
        "per_minute": 60 * runs / seconds,
        "errors": sum(r["status"] == "error" for r in results),
    }


def _child(args: list[str]) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter and read its JSON answer."""
    command = [sys.executable, __file__, *args]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = done.stderr.strip().splitlines()[-5:]
        return {"error": f"exit {done.returncode}: " + " | ".join(tail)}
    return json.loads(lines[-1])


def _print_tables(rows: list[dict[str, Any]], throughput: list[dict[str, Any]]) -> None:
    print("\n## Stage prompts: failed/predictions, LM calls, s/prediction, tokens/prediction\n")
    print("| model | mode | failed | LM calls | s/pred | prompt tok/pred | answer tok/pred |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        for mode in MODES:
            m = row.get(mode) or {"error": row.get("error", "not run")}
            if "error" in m:
                print(f"| {row['model']} | {mode} | error: {m['error']} | | | | |")
                continue
            n = m["predictions"]
            print(
                f"| {row['model']} | {mode} | {m['failures']}/{n} | {m['calls']} "
                f"| {m['s_per_prediction']:.1f} | {m['prompt_tokens'] / n:.0f} "
                f"| {m['answer_tokens'] / n:.0f} |"
            )
    print("\n## Per stage: failed/n, s/pred, answer tok/pred (chat | json | free)\n")
    for row in rows:
        stages = (row.get("chat") or {}).get("stages", {})
        for stage in stages:
            cells = []
            for mode in MODES:
                r = (row.get(mode) or {}).get("stages", {}).get(stage)
                cells.append(
                    f"{r['failed']}/{r['n']}, {r['s'] / r['n']:.1f} s, "
                    f"{r['answer_tokens'] / r['n']:.0f}"
                    if r
                    else "-"
                )
            print(f"- {row['model']} {stage}: " + " | ".join(cells))
    print("\n## Requests and relabels from the stage prompts\n")
    for row in rows:
        for mode in MODES:
            for r in (row.get(mode) or {}).get("relabels", []):
                if "request" in r:
                    print(f"- {row['model']} {mode} {r['id']}: {r['request']!r}")
                    continue
                print(
                    f"- {row['model']} {mode} {r['id']}: valid={r['valid']} "
                    f"c={r['confidence']} similarity {r['similarity_to_original']}: "
                    f"{r['hindsight_prompt']!r}"
                )
    print("\n## What the whole program produced (constrained)\n")
    for row in rows:
        for run in row.get("program", []):
            print(
                f"- {row['model']} {run['id']}: {run['status']} at {run['stage']} "
                f"({run['seconds']:.0f} s), similarity to original "
                f"{run['similarity_to_original']}: {run['hindsight_prompt']!r}"
                + (f" — {run['reason']}" if run["status"] != "accepted" else "")
            )
    if throughput:
        print("\n## Throughput of the whole program, default model\n")
        print("| model | concurrent requests | runs | seconds | trajectories/min | errors |")
        print("|---|---|---|---|---|---|")
        for t in throughput:
            if "error" in t:
                print(f"| ? | ? | | error: {t['error']} | | |")
                continue
            print(
                f"| {t['model']} | {t['threads']} | {t['runs']} | {t['seconds']:.0f} "
                f"| {t['per_minute']:.2f} | {t['errors']} |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", help="comma-separated names (default: every installed one)")
    parser.add_argument("--runs", type=int, default=3, help="program runs per throughput level")
    parser.add_argument("--threads", default="1,2,4", help="concurrency levels for throughput")
    parser.add_argument("--no-throughput", action="store_true")
    parser.add_argument("--no-program", action="store_true", help="skip the whole-program runs")
    parser.add_argument("--json", type=Path, help="also write every measurement here")
    parser.add_argument("--stages", help=argparse.SUPPRESS)
    parser.add_argument("--program", help=argparse.SUPPRESS)
    parser.add_argument("--throughput-one", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.stages:
        model, mode = args.stages.split("@")
        print(json.dumps(measure_stages(model, mode)))
        return
    if args.program:
        print(json.dumps(measure_program(args.program)))
        return
    if args.throughput_one:
        model, threads = args.throughput_one.split("@")
        print(json.dumps(measure_throughput(model, int(threads), args.runs)))
        return

    from agenther_dspy.lm.models import DEFAULT_MODEL, list_models

    installed = [m["name"] for m in list_models() if m["installed"]]
    models = args.models.split(",") if args.models else installed
    rows: list[dict[str, Any]] = []
    throughput: list[dict[str, Any]] = []

    def save() -> None:
        # After every measurement: a long run that is stopped still leaves its numbers.
        if args.json:
            args.json.write_text(json.dumps({"models": rows, "throughput": throughput}, indent=2))

    for model in models:
        # Each measurement in a fresh process: its own peak RSS, and no prompt cache carried
        # over from the other decoding mode.
        row: dict[str, Any] = {"model": model}
        for mode in MODES:
            print(f"{model}: stage prompts, {mode}...", file=sys.stderr, flush=True)
            row[mode] = _child(["--stages", f"{model}@{mode}"])
        if not args.no_program:
            print(f"{model}: whole program...", file=sys.stderr, flush=True)
            row.update(_child(["--program", model]))
        parts = [row] + [row[mode] for mode in MODES]
        errors = [m.get("error") for m in parts if "error" in m]
        if errors:
            row["error"] = "; ".join(errors)
        else:
            row["peak_rss_mb"] = max(m.get("peak_rss_mb", 0.0) for m in parts)
        rows.append(row)
        save()
    if not args.no_throughput and DEFAULT_MODEL in installed:
        for threads in (int(t) for t in args.threads.split(",")):
            print(f"throughput {DEFAULT_MODEL} x{threads}...", file=sys.stderr, flush=True)
            throughput.append(
                _child(["--throughput-one", f"{DEFAULT_MODEL}@{threads}", "--runs", str(args.runs)])
            )
            save()
    _print_tables(rows, throughput)


if __name__ == "__main__":
    main()
