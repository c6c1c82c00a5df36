"""Synthetic AgentHER-format input for the batch benchmarks, and an instant in-process LM.

Records are copies of the three example runs with their own ids and a case marker in the
prompt and final answer (so no two are identical requests to the LM). With the rule
detector, copies of the first two go on to the LM stages and copies of the third are
skipped at detection without an LM call.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import dspy
from dspy.lm15 import Message, Response, TextPart, Usage

from agenther_dspy.lm.stub_server import (
    StubServer,
    default_responder,
    format_answer,
    requested_fields,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "shared" / "data" / "peer"
EXAMPLES = EXAMPLES / "agenther_example_trajectories.json"
TEMPLATES: list[dict[str, Any]] = json.loads(EXAMPLES.read_text())
LM_TEMPLATES = (0, 1)  # accepted by the stub: 3 LM calls with the LM extractor
SKIPPED_TEMPLATE = 2  # skipped by the rule detector: no LM call


def record(i: int, template: int) -> dict[str, Any]:
    item = copy.deepcopy(TEMPLATES[template])
    item["trajectory_id"] = f"syn-{i:07d}"
    item["original_prompt"] = f"[case-{i:07d}] {item['original_prompt']}"
    item["final_answer"] = f"[case-{i:07d}] {item['final_answer']}"
    return item


def write_input(path: Path, n: int, *, lm_every: int = 1) -> Path:
    """n records; every `lm_every`-th one goes to the LM, the others are skipped at detect."""
    with path.open("w", encoding="utf-8") as out:
        for i in range(n):
            template = LM_TEMPLATES[i % 2] if i % lm_every == 0 else SKIPPED_TEMPLATE
            out.write(json.dumps(record(i, template)) + "\n")
    return path


class NoDelayStub(StubServer):
    """The stub server with TCP_NODELAY on its connections.

    Its handler sends the headers and the body of an answer in two writes; with Nagle's
    algorithm on, the second waits for the client's delayed ACK, which adds about 40 ms to
    every call on loopback (measured here: 50 ms per call at 0 latency, 3.5 ms without
    Nagle). Real servers (uvicorn under vLLM, llama.cpp's server) set TCP_NODELAY.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # A client killed mid-request is expected here, not a traceback worth printing.
        self._httpd.handle_error = lambda request, client_address: None

    def _handler_class(self):
        handler = super()._handler_class()
        handler.disable_nagle_algorithm = True
        return handler


class InstantEngine:
    """A DSPy custom engine answering at once, in process, like the stub server does over
    HTTP: well-formed values for whatever output fields the request asks for."""

    def complete(self, request: Any) -> Response:
        system = request.system if isinstance(request.system, str) else ""
        if not isinstance(request.system, str) and request.system is not None:
            system = "".join(getattr(part, "text", "") for part in request.system)
        messages = [{"role": "system", "content": system}]
        text = format_answer(default_responder(requested_fields(messages), messages))
        return Response(
            id=None,
            model="instant",
            message=Message.assistant([TextPart(text)]),
            finish_reason="stop",
            usage=Usage(input_tokens=len(system.split()), output_tokens=len(text.split())),
        )

    def stream(self, request: Any):
        from dspy.lm15 import response_to_events

        return response_to_events(self.complete(request))

    def close(self) -> None:
        pass


class AsyncInstantEngine:
    def __init__(self) -> None:
        self.sync = InstantEngine()

    async def complete(self, request: Any) -> Response:
        return self.sync.complete(request)

    async def aclose(self) -> None:
        pass


def instant_lm() -> dspy.LM:
    return dspy.LM(
        "local/instant", engine=InstantEngine(), async_engine=AsyncInstantEngine(), cache=False
    )
