"""An in-process llama.cpp model as a DSPy 3.4 custom engine.

`build_local_lm("local:<model>")` gives a `dspy.LM` whose requests never leave the process:
each one goes to `xllamacpp.Server.handle_chat_completions`, which applies the model's own
chat template, reuses the KV cache of a shared prompt prefix (`cache_prompt`) and, by
default, decodes under a grammar derived from the request (see `grammar.py`), which is what
makes models this small produce answers the adapters can parse.

A loaded model is shared per process: every engine, LM copy and thread that asks for the same
file with the same settings talks to one server, and concurrent requests are served through
llama.cpp's parallel slots. On a CPU-only machine one slot is as fast as several (compute is
the limit, and slots split the context and the prompt cache), hence `n_parallel=1`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import dspy
from dspy.clients.engines.base import validate_request
from dspy.lm15 import (
    ContextLengthError,
    InvalidRequestError,
    Message,
    Request,
    Response,
    ServerError,
    TextPart,
    TokenLogprob,
    TopLogprob,
    UnsupportedFeatureError,
    Usage,
    response_to_events,
)

from agenther_dspy.lm.grammar import grammar_for_request
from agenther_dspy.lm.models import file_sha256, model_for_path, resolve_model

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "AsyncLocalEngine",
    "LocalEngine",
    "build_local_lm",
    "loaded_servers",
]

DEFAULT_MAX_TOKENS = 512
_MAX_TRACKED_REQUESTS = 10_000
_PROVIDER = "local"

_servers: dict[tuple[Any, ...], Any] = {}
_servers_lock = threading.Lock()


THREADS_ENV = "AGENTHER_DSPY_THREADS"  # llama.cpp threads; set per Ray actor to its CPUs


def _default_threads() -> int:
    configured = os.environ.get(THREADS_ENV, "")
    if configured.isdigit() and int(configured) > 0:
        return int(configured)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _load_server(path: Path, *, n_ctx: int, n_parallel: int, n_threads: int, verbosity: int):
    """One llama.cpp server per (file, settings) for the whole process: loading costs seconds
    and hundreds of MB, and every caller wants the same weights."""
    key = (str(path), n_ctx, n_parallel, n_threads)
    with _servers_lock:
        server = _servers.get(key)
        if server is not None:
            return server
        import xllamacpp

        params = xllamacpp.CommonParams()
        params.model.path = str(path)
        # llama.cpp splits n_ctx across its slots; ours is per request, as callers think of it.
        params.n_ctx = n_ctx * n_parallel
        params.n_parallel = n_parallel
        params.cpuparams.n_threads = n_threads
        params.cpuparams_batch.n_threads = n_threads
        params.cache_prompt = True
        params.warmup = False
        params.verbosity = verbosity
        server = xllamacpp.Server(params)
        _servers[key] = server
        return server


def loaded_servers() -> list[tuple[Any, ...]]:
    """The (path, n_ctx, n_parallel, n_threads) of every model loaded in this process."""
    with _servers_lock:
        return list(_servers)


def _text(parts: Any) -> str:
    if parts is None:
        return ""
    if isinstance(parts, str):
        return parts
    return "".join(getattr(part, "text", "") or "" for part in parts)


def _chat_messages(request: Request) -> list[dict[str, str]]:
    """The request as chat-completions messages; the server renders them with the model's
    own chat template."""
    if request.tools:
        raise UnsupportedFeatureError("the local engine does not call tools", provider=_PROVIDER)
    messages: list[dict[str, str]] = []
    system = _text(request.system)
    if system:
        messages.append({"role": "system", "content": system})
    for message in request.messages:
        if message.role not in ("user", "assistant", "system", "developer"):
            raise UnsupportedFeatureError(
                f"the local engine takes text messages, not {message.role!r} messages",
                provider=_PROVIDER,
            )
        if any(not isinstance(part, TextPart) for part in message.parts):
            raise UnsupportedFeatureError(
                "the local engine takes text only (no images, audio or files)", provider=_PROVIDER
            )
        role = "system" if message.role == "developer" else message.role
        messages.append({"role": role, "content": message.text or ""})
    return messages


def _logprobs(choice: dict[str, Any]) -> tuple[TokenLogprob, ...]:
    """llama.cpp's token log probabilities. They come from the model's raw distribution,
    before the grammar: the alternatives may include tokens the grammar would refuse."""
    return tuple(
        TokenLogprob(
            token=item["token"],
            logprob=float(item["logprob"]),
            top=tuple(
                TopLogprob(token=top["token"], logprob=float(top["logprob"]))
                for top in item.get("top_logprobs") or ()
            ),
        )
        for item in (choice.get("logprobs") or {}).get("content") or ()
    )


def _raise_for_error(answer: dict[str, Any], model: str) -> None:
    """llama.cpp's server API never raises: a refused request comes back as {"error": ...}."""
    error = answer.get("error")
    if error is None:
        if not answer.get("choices"):
            raise ServerError(f"{model}: llama.cpp returned no choices", provider=_PROVIDER)
        return
    message = error.get("message", str(error)) if isinstance(error, dict) else str(error)
    code = error.get("code") if isinstance(error, dict) else None
    kind = error.get("type", "") if isinstance(error, dict) else ""
    text = f"{model}: llama.cpp refused the request: {message}"
    if "grammar" in message:
        text += " (the constraint grammar was rejected; llama.cpp's log on stderr says where)"
    if "context" in kind or "context size" in message:
        raise ContextLengthError(text, provider=_PROVIDER, status=code)
    if isinstance(code, int) and 400 <= code < 500:
        raise InvalidRequestError(text, provider=_PROVIDER, status=code)
    raise ServerError(text, provider=_PROVIDER, status=code)


class LocalEngine:
    """A DSPy custom engine that answers from a local GGUF model, in process.

    It holds no secrets and no live state worth saving: `dump_state` records which model and
    settings, and `load_state` rebuilds the engine (loading the model again on first use).
    """

    # Declared so that JSONAdapter sends its JSON schema (turned into a grammar here).
    supports_response_schema = True
    supports_function_calling = False
    supports_reasoning = False
    supported_params = frozenset(
        {"temperature", "max_tokens", "top_p", "top_k", "stop", "seed", "response_format"}
        | {"logprobs"}
    )

    def __init__(
        self,
        model: str = "local",
        *,
        n_ctx: int = 8192,
        n_parallel: int = 1,
        n_threads: int | None = None,
        constrained: bool = True,
        prompt_cache: bool = True,
        default_max_tokens: int = DEFAULT_MAX_TOKENS,
        seed: int = 0,
        verbosity: int = 0,
    ) -> None:
        if n_parallel < 1:
            raise ValueError(f"n_parallel must be at least 1, got {n_parallel}")
        self.path = resolve_model(model)
        registered = model_for_path(self.path)
        # Saved as the registered name (or the file path), never as `local`: a saved program
        # must keep answering from the model it was compiled with if the default changes.
        self.model = f"local:{registered.name}" if registered else f"local:{self.path}"
        self.name = registered.name if registered else self.path.stem
        self.short_sha = registered.short_sha if registered else file_sha256(self.path)[:8]
        self.n_ctx = n_ctx
        self.n_parallel = n_parallel
        self.n_threads = n_threads
        self.constrained = constrained
        self.prompt_cache = prompt_cache
        self.default_max_tokens = default_max_tokens
        self.seed = seed
        self.verbosity = verbosity
        # How often each sampled request was seen (see `_seed`); bounded like an LRU.
        self._repeats: dict[str, int] = {}
        self._repeats_lock = threading.Lock()

    @property
    def model_id(self) -> str:
        """The model string: distinct per file, since DSPy's cache key includes it."""
        suffix = "" if self.constrained else "-free"
        return f"{self.name}-{self.short_sha}{suffix}"

    def _server(self):
        return _load_server(
            self.path,
            n_ctx=self.n_ctx,
            n_parallel=self.n_parallel,
            n_threads=self.n_threads or _default_threads(),
            verbosity=self.verbosity,
        )

    def body(self, request: Request) -> dict[str, Any]:
        """The chat-completions body for a request (public for inspection and tests)."""
        validate_request(request)
        config = request.config
        max_tokens = config.max_tokens or self.default_max_tokens
        messages = _chat_messages(request)
        temperature = 0.0 if config.temperature is None else config.temperature
        body: dict[str, Any] = {
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "seed": config.seed if config.seed is not None else self._seed(messages, temperature),
            "cache_prompt": self.prompt_cache,
        }
        if config.top_p is not None:
            body["top_p"] = config.top_p
        if config.top_k is not None:
            body["top_k"] = config.top_k
        if config.stop:
            body["stop"] = list(config.stop)
        if config.logprobs is not None:  # token log probabilities, as an OpenAI server gives
            body["logprobs"] = True
            body["top_logprobs"] = config.logprobs
        if self.constrained:
            grammar = grammar_for_request(
                _text(request.system), config.response_format, max_tokens=max_tokens
            )
            if grammar is not None:
                body["grammar"] = grammar
        return body

    def _seed(self, messages: list[dict[str, str]], temperature: float) -> int:
        """The engine's seed, moved on by one each time the same sampled request comes back.

        A caller sends an identical request again only to draw another sample (DSPy's cache
        answers true repeats, `rollout_id` tells attempts apart): with one fixed seed llama.cpp
        would return the very same text. Counting repeats keeps a fresh process reproducible.
        """
        if temperature <= 0:
            return self.seed
        key = hashlib.sha256(json.dumps([messages, temperature]).encode()).hexdigest()
        with self._repeats_lock:
            seen = self._repeats.pop(key, 0)
            self._repeats[key] = seen + 1
            if len(self._repeats) > _MAX_TRACKED_REQUESTS:
                del self._repeats[next(iter(self._repeats))]
        return self.seed + seen

    def complete(self, request: Request) -> Response:
        body = self.body(request)
        answer = self._server().handle_chat_completions(body)
        _raise_for_error(answer, self.model_id)
        choice = answer["choices"][0]
        text = (choice.get("message") or {}).get("content") or ""
        usage = answer.get("usage") or {}
        cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
        finish = choice.get("finish_reason")
        return Response(
            id=answer.get("id") or None,
            model=self.model_id,
            message=Message.assistant([TextPart(text)]),
            finish_reason="length" if finish == "length" else "stop",
            logprobs=_logprobs(choice) if body.get("logprobs") else None,
            usage=Usage(
                input_tokens=usage.get("prompt_tokens"),
                output_tokens=usage.get("completion_tokens"),
                total_tokens=usage.get("total_tokens"),
                cache_read_tokens=cached,
            ),
        )

    def stream(self, request: Request) -> Iterator[Any]:
        return response_to_events(self.complete(request))

    def close(self) -> None:
        """Nothing to release: the loaded model is shared by the process, not owned here."""

    def dump_state(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "n_ctx": self.n_ctx,
            "n_parallel": self.n_parallel,
            "n_threads": self.n_threads,
            "constrained": self.constrained,
            "prompt_cache": self.prompt_cache,
            "default_max_tokens": self.default_max_tokens,
            "seed": self.seed,
        }

    @classmethod
    def load_state(cls, state: dict[str, Any]) -> LocalEngine:
        state = dict(state)
        return cls(state.pop("model", "local"), **state)


class AsyncLocalEngine:
    """The async twin DSPy needs for `acall`: the blocking call runs in a worker thread, where
    llama.cpp releases the GIL, so the event loop keeps serving other requests."""

    def __init__(self, sync: LocalEngine) -> None:
        self.sync = sync

    async def complete(self, request: Request) -> Response:
        return await asyncio.to_thread(self.sync.complete, request)

    async def stream(self, request: Request) -> AsyncIterator[Any]:
        response = await self.complete(request)
        for event in response_to_events(response):
            yield event

    async def aclose(self) -> None:
        """Nothing to release (see `LocalEngine.close`)."""

    def dump_state(self) -> dict[str, Any]:
        return self.sync.dump_state()

    @classmethod
    def load_state(cls, state: dict[str, Any]) -> AsyncLocalEngine:
        return cls(LocalEngine.load_state(state))


def build_local_lm(
    spec: str = "local",
    *,
    temperature: float | None = None,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    cache: bool = True,
    **engine_settings: Any,
) -> dspy.LM:
    """A `dspy.LM` answering from a local model (`local`, `local:<name>`, `local:<path>`).

    The model file is resolved and verified now; the weights load on the first request.
    `engine_settings` are `LocalEngine`'s (`n_ctx`, `n_parallel`, `n_threads`, `constrained`,
    `prompt_cache`, `seed`), with its defaults. `n_ctx` is the context of each request
    (llama.cpp gets `n_ctx * n_parallel` for its slots); `max_tokens` also sizes the
    grammar's bounds, so answers are never cut short. `constrained=False` turns
    grammar-constrained decoding off and `prompt_cache=False` llama.cpp's reuse of a shared
    prompt prefix (both for benchmarks).
    """
    engine = LocalEngine(spec, default_max_tokens=max_tokens, **engine_settings)
    return dspy.LM(
        f"local/{engine.model_id}",
        engine=engine,
        async_engine=AsyncLocalEngine(engine),
        temperature=temperature,
        max_tokens=max_tokens,
        cache=cache,
        # The seed stays with the engine: as an LM default it would be sent with every
        # request and pin every sample of a repeated request to the same text.
        num_retries=0,
    )
