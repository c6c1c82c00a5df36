"""Prompt economy: prompt tokens and seconds per trajectory, before and after.

Real agent runs are long, and on a CPU the prompt is most of the cost. This benchmark sends
the four stage prompts (detect, extract, relabel, judge) of real tau2 runs to the embedded
model under three settings, in one process, so the ratios are measured side by side:

  before      every step rendered in full (thought, pretty-printed input, whole observation),
              llama.cpp's prompt cache off: what a straightforward port of AgentHER costs;
  compact     the compact bounded rendering (`modules.render`), prompt cache off;
  after       the compact rendering with the prompt cache on, as `run` uses it.

Each stage is called once per run with inputs that do not depend on earlier answers (the
rule-based outcome feeds the relabeler, the original prompt is the request to judge), so
every setting answers the same requests. DSPy's response cache is off. For every setting it
prints prompt tokens sent, prompt tokens evaluated (sent minus those llama.cpp reused from
its cache) and seconds per trajectory, with the relabeler's request repeated once more (a
second attempt, as the acceptance loop makes) to show what the cache saves on retries.

    python benchmarks/prompt_economy.py [--runs 2] [--model local]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import dspy

from agenther_dspy.formats import read_trajectories
from agenther_dspy.lm.factory import configure_cache
from agenther_dspy.lm.local import build_local_lm
from agenther_dspy.modules.extractor import RuleOutcomeExtractor
from agenther_dspy.modules.render import render_trajectory
from agenther_dspy.schema import Trajectory
from agenther_dspy.signatures import STAGE_SIGNATURES

REAL_FAILED = Path(__file__).resolve().parents[2] / "shared/data/real/tau2_grok_failed.jsonl"


def render_in_full(trajectory: Trajectory) -> str:
    """Every step, untruncated, in the Thought/Action/Action Input/Observation layout."""
    parts: list[str] = []
    for number, step in enumerate(trajectory.steps, 1):
        parts.append(
            f"Step {number}:\nThought: {step.thought}\nAction: {step.action_name}\n"
            f"Action Input: {json.dumps(step.action_input, indent=2, ensure_ascii=False)}\n"
            f"Observation: {step.observation}"
        )
    parts.append(f"Final Answer: {trajectory.final_answer}")
    return "\n\n".join(parts)


def stage_requests(trajectory: Trajectory, rendered: str) -> list[tuple[str, dict[str, Any]]]:
    outcome = RuleOutcomeExtractor()(trajectory=trajectory, rendered=rendered).outcome
    goal = trajectory.original_prompt
    return [
        ("detect", {"failure_reason": trajectory.failure_reason or "(not given)"}),
        ("extract", {"original_prompt": goal}),
        (
            "relabel",
            {
                "achievements": outcome.achievements,
                "key_observations": outcome.key_observations,
                "not_achieved": outcome.limitations,
            },
        ),
        ("relabel", {}),  # the second attempt: same request at another temperature
        ("verify", {"hindsight_prompt": goal}),
    ]


def measure(lm: dspy.LM, trajectories: list[Trajectory], render) -> dict[str, float]:
    sent = evaluated = 0
    started = time.perf_counter()
    for trajectory in trajectories:
        rendered = render(trajectory)
        last: dict[str, Any] = {}
        for attempt, (stage, inputs) in enumerate(stage_requests(trajectory, rendered)):
            inputs = {"trajectory": rendered, **(inputs or last)}
            if stage == "detect":
                inputs["original_prompt"] = trajectory.original_prompt
            last = inputs
            predictor = dspy.Predict(STAGE_SIGNATURES[stage])
            temperature = 0.7 if attempt == 3 else 0.0
            with dspy.context(lm=lm), dspy.track_usage() as usage:
                predictor(**inputs, config={"temperature": temperature, "rollout_id": attempt})
            for entries in usage.usage_data.values():
                for entry in entries:
                    prompt = entry.get("prompt_tokens") or 0
                    cached = (entry.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
                    sent += prompt
                    evaluated += prompt - cached
    seconds = time.perf_counter() - started
    n = len(trajectories)
    return {
        "prompt_tokens_sent": sent / n,
        "prompt_tokens_evaluated": evaluated / n,
        "seconds": seconds / n,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2, help="real failed tau2 runs to use")
    parser.add_argument("--model", default="local")
    parser.add_argument("--data", type=Path, default=REAL_FAILED)
    parser.add_argument("--only", default="after,before,compact", help="settings to measure")
    args = parser.parse_args()

    configure_cache(None, enabled=False)
    records = read_trajectories(args.data)
    trajectories = [r.trajectory for r in records if hasattr(r, "trajectory")][: args.runs]
    print(f"{len(trajectories)} real runs of {args.data.name}, {args.model}")
    # "after" goes first: llama.cpp keeps earlier prompts in host memory, so run after the
    # others it would find every prompt already evaluated.
    settings = [
        ("after", render_trajectory, True),
        ("before", render_in_full, False),
        ("compact", render_trajectory, False),
    ]
    settings = [s for s in settings if s[0] in args.only.split(",")]
    results: dict[str, dict[str, float]] = {}
    for name, render, cache in settings:
        lm = build_local_lm(args.model, cache=False, prompt_cache=cache)
        results[name] = measure(lm, trajectories, render)
        r = results[name]
        print(
            f"{name:8s} prompt tokens sent {r['prompt_tokens_sent']:7.0f}  evaluated "
            f"{r['prompt_tokens_evaluated']:7.0f}  seconds {r['seconds']:6.1f}  per trajectory",
            flush=True,
        )
    if "before" not in results:
        return
    base = results["before"]
    for name in [n for n in ("compact", "after") if n in results]:
        ratios = {key: results[name][key] / base[key] for key in base}
        print(
            f"{name} / before: tokens sent ×{ratios['prompt_tokens_sent']:.2f}, evaluated "
            f"×{ratios['prompt_tokens_evaluated']:.2f}, seconds ×{ratios['seconds']:.2f}"
        )


if __name__ == "__main__":
    main()
