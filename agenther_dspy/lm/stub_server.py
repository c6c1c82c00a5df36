"""An OpenAI-compatible chat-completions server for tests and benchmarks, on 127.0.0.1 only.

It answers DSPy ChatAdapter requests with well-formed `[[ ## field ## ]]` sections for the
output fields the request asks for, with a fixed latency, a fixed number of concurrent slots,
and optional injected faults (HTTP 429/500 and malformed answers) from a seeded RNG. It
exercises the real HTTP client path; it is not a language model and makes no claim of one.
Asked for `logprobs`, it returns them as OpenAI does: every token of the answer is certain
except a boolean value, whose alternatives carry `p_true` (default 0.9, the confidence it
writes) for `True`.

    with StubServer(latency=0.05, slots=4) as server:
        lm = build_lm("openai/stub", base_url=server.base_url)
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import re
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_FIELDS_SECTION = re.compile(
    r"Your output fields are:\n(.*?)\n(?:All interactions|In adhering)", re.DOTALL
)
_FIELD_LINE = re.compile(r"^\d+\. `(\w+)` \((.+?)\)(?::|$)", re.MULTILINE)

Responder = Callable[[dict[str, str], list[dict[str, Any]]], dict[str, Any]]


def requested_fields(messages: list[dict[str, Any]]) -> dict[str, str]:
    """Output field names and their type text, from a ChatAdapter system message."""
    system = next((m["content"] for m in messages if m.get("role") == "system"), "")
    if isinstance(system, list):  # content parts
        system = " ".join(part.get("text", "") for part in system)
    section = _FIELDS_SECTION.search(system)
    return dict(_FIELD_LINE.findall(section.group(1))) if section else {}


def default_value(name: str, type_text: str) -> Any:
    if type_text.startswith("Literal["):
        return re.findall(r"'([^']*)'", type_text)[0]
    if type_text == "bool":
        return True
    if type_text == "float":
        return 0.9
    if type_text == "int":
        return 1
    if type_text.startswith("list"):
        return [f"{name} item"]
    return f"{name.replace('_', ' ')} from the stub server"


def default_responder(fields: dict[str, str], messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {name: default_value(name, type_text) for name, type_text in fields.items()}


def format_answer(values: dict[str, Any]) -> str:
    parts = []
    for name, value in values.items():
        text = json.dumps(value) if isinstance(value, list | dict) else str(value)
        parts.append(f"[[ ## {name} ## ]]\n{text}\n")
    parts.append("[[ ## completed ## ]]")
    return "\n".join(parts)


class StubServer:
    def __init__(
        self,
        *,
        latency: float = 0.0,
        slots: int = 64,
        error_rate: float = 0.0,
        rate_limit_rate: float = 0.0,
        malformed_rate: float = 0.0,
        seed: int = 0,
        responder: Responder = default_responder,
        port: int = 0,
        p_true: float = 0.9,
    ) -> None:
        self.p_true = p_true
        self.latency = latency
        # Each answer draws at most one fault, with these probabilities.
        self.faults = {"429": rate_limit_rate, "500": error_rate, "malformed": malformed_rate}
        self.responder = responder
        self._slots = threading.BoundedSemaphore(slots)
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> StubServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _fault(self) -> str | None:
        with self._lock:
            roll = self._rng.random()
        for fault, rate in self.faults.items():
            if roll < rate:
                return fault
            roll -= rate
        return None

    def answer(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.requests.append(body)
        with self._slots:
            if self.latency:
                time.sleep(self.latency)
            fault = self._fault()
        if fault == "429":
            return 429, {"error": {"message": "rate limited by the stub", "type": "rate_limit"}}
        if fault == "500":
            return 500, {"error": {"message": "injected server error", "type": "server_error"}}
        messages = body.get("messages", [])
        if fault == "malformed":
            content = "I am not following the format this time."
        else:
            content = format_answer(self.responder(requested_fields(messages), messages))
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in messages)
        return 200, {
            "id": "chatcmpl-stub",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "stub"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                    **({"logprobs": self.logprobs(content)} if body.get("logprobs") else {}),
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": len(content.split()),
                "total_tokens": prompt_tokens + len(content.split()),
            },
        }

    def logprobs(self, content: str) -> dict[str, Any]:
        """OpenAI-shaped token log probabilities of `content`, split at white space."""
        tokens = []
        for token in re.findall(r"\s+|\S+", content):
            if token in ("True", "False"):
                chosen = self.p_true if token == "True" else 1.0 - self.p_true
                top = [
                    {"token": "True", "logprob": math.log(max(self.p_true, 1e-9))},
                    {"token": "False", "logprob": math.log(max(1.0 - self.p_true, 1e-9))},
                ]
                tokens.append(
                    {"token": token, "logprob": math.log(max(chosen, 1e-9)), "top_logprobs": top}
                )
            else:
                tokens.append(
                    {
                        "token": token,
                        "logprob": 0.0,
                        "top_logprobs": [{"token": token, "logprob": 0.0}],
                    }
                )
        return {"content": tokens}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out at once

            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/models"):
                    self._send(200, {"object": "list", "data": [{"id": "stub", "object": "model"}]})
                else:
                    self._send(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except json.JSONDecodeError:
                    self._send(400, {"error": {"message": "body is not JSON"}})
                    return
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(404, {"error": {"message": f"no route {self.path}"}})
                    return
                self._send(*server.answer(body))

        return Handler


def main() -> None:
    """`python -m agenther_dspy.lm.stub_server [--port N] [--latency S]`: serve until Ctrl-C."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--slots", type=int, default=64)
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument("--malformed-rate", type=float, default=0.0)
    args = parser.parse_args()
    server = StubServer(
        latency=args.latency,
        slots=args.slots,
        error_rate=args.error_rate,
        malformed_rate=args.malformed_rate,
        port=args.port,
    )
    with server:
        print(f"serving {server.base_url}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
