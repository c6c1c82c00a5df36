"""The one place that builds LMs.

`-m` takes `local` / `local:<name>` / `local:/path/model.gguf` for the embedded engine, or any
LiteLLM / DSPy model string (`openai/gpt-4o-mini`, `hosted_vllm/...`, `ollama_chat/...`) with an
optional `--base-url` for OpenAI-compatible servers. API keys come only from the environment,
by variable name: they are handed to the client in memory and never written anywhere.
"""

from __future__ import annotations

import copy
import functools
import os

import dspy

DEFAULT_MAX_TOKENS = 1024
# Per remote LM call. DSPy retries a call that times out, is rate limited (429) or gets a
# server error (5xx) or a transport error up to `num_retries` times, sleeping 1, 2, 4 … s
# (at most 60 s) or what the server's Retry-After says; other errors (auth, bad request)
# are not retried. So one call waits at most (num_retries + 1) × timeout + the backoff.
DEFAULT_TIMEOUT_S = 120.0
DEFAULT_NUM_RETRIES = 3

# The variable each provider's own SDK reads by default.
PROVIDER_KEY_ENV = {
    "openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "gemini": "GEMINI_API_KEY",
    "groq": "GROQ_API_KEY",
    "mistral": "MISTRAL_API_KEY",
    "together_ai": "TOGETHERAI_API_KEY",
    "deepseek": "DEEPSEEK_API_KEY",
    "openrouter": "OPENROUTER_API_KEY",
    "fireworks_ai": "FIREWORKS_API_KEY",
    "xai": "XAI_API_KEY",
}

# OpenAI-compatible servers on your own machine usually accept any key, but the client
# refuses to send none. This placeholder is not a secret.
NO_KEY = "not-needed"


class LMConfigError(ValueError):
    """The model spec or its credentials are unusable; the message says how to fix it."""


def is_local(model: str) -> bool:
    return model == "local" or model.startswith("local:")


def provider_of(model: str) -> str:
    return model.split("/", 1)[0] if "/" in model else "openai"


def resolve_api_key(model: str, base_url: str | None, api_key_env: str | None) -> str | None:
    """The key from the environment, by name; None lets the provider's SDK look for itself."""
    if api_key_env:
        value = os.environ.get(api_key_env)
        if not value:
            raise LMConfigError(
                f"--api-key-env {api_key_env}: that environment variable is not set"
            )
        return value
    default_env = PROVIDER_KEY_ENV.get(provider_of(model))
    value = os.environ.get(default_env) if default_env else None
    if value:
        return value
    return NO_KEY if base_url else None


def build_lm(
    model: str,
    *,
    base_url: str | None = None,
    api_key_env: str | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    cache: bool = True,
    num_retries: int = DEFAULT_NUM_RETRIES,
    timeout: float | None = None,
) -> dspy.LM:
    """`timeout` (seconds per call) reaches both of DSPy's remote engines: the native one
    as its read/write/pool timeout, LiteLLM as its request timeout."""
    if not model or not model.strip():
        raise LMConfigError("-m/--model is empty")
    if timeout is not None and not timeout > 0:
        raise LMConfigError(f"--timeout must be a positive number of seconds, got {timeout}")
    if is_local(model):
        if base_url:
            raise LMConfigError(
                "--base-url is for remote servers; the local engine runs in-process"
            )
        if timeout is not None:
            raise LMConfigError("--timeout is for remote servers; the local engine runs in-process")
        from agenther_dspy.lm.local import build_local_lm
        from agenther_dspy.lm.models import ModelError

        try:
            return build_local_lm(
                model, temperature=temperature, max_tokens=max_tokens or 512, cache=cache
            )
        except ModelError as error:
            raise LMConfigError(str(error)) from None
    remember_prices()
    kwargs: dict = {}
    if base_url:
        kwargs["api_base"] = base_url.rstrip("/")
    api_key = resolve_api_key(model, base_url, api_key_env)
    if api_key:
        kwargs["api_key"] = api_key
    if timeout is not None:
        kwargs["timeout"] = timeout
    try:
        return dspy.LM(
            model,
            temperature=temperature,
            max_tokens=max_tokens or DEFAULT_MAX_TOKENS,
            cache=cache,
            num_retries=num_retries,
            **kwargs,
        )
    except ValueError as error:
        raise LMConfigError(f"-m {model}: {error}") from error


def remember_prices() -> None:
    """Make DSPy's price lookup per remote call a dictionary hit.

    DSPy prices every remote call from its model table (loaded once per process). For a
    model the table lacks, which is any self-hosted name (`hosted_vllm/...`, `openai/<name>`
    on a `--base-url` server), it scans the whole table, twice per call: about 1.2 ms of
    CPU per call here, a third of the client's CPU per trajectory. The table never changes
    once loaded, so each (provider, model) answer is remembered; callers still get their
    own copy, as before. `benchmarks/ray_throughput.py` measures both ways.
    """
    from dspy.clients import costs

    lookup = getattr(costs, "model_info", None)
    if lookup is None or hasattr(lookup, "remembered"):
        return

    @functools.lru_cache(maxsize=4096)
    def remembered(provider, model, namespaces):
        return lookup(provider, model, namespaces=namespaces)

    def model_info(provider, model, *, namespaces=None):
        key = None if namespaces is None else tuple(namespaces)
        return copy.deepcopy(remembered(provider, model, key))

    model_info.remembered = remembered
    model_info.original = lookup
    costs.model_info = model_info


def configure_cache(cache_dir: str | os.PathLike | None = None, *, enabled: bool = True) -> None:
    """Point DSPy's LM response cache at our folder, or turn it off.

    The on-disk cache is read back with DSPy's restricted unpickler (known-safe types only),
    so a tampered cache file cannot run code.
    """
    from agenther_dspy.paths import lm_cache_dir

    if not enabled:
        dspy.configure_cache(enable_disk_cache=False, enable_memory_cache=False)
        return
    dspy.configure_cache(
        enable_disk_cache=True,
        enable_memory_cache=True,
        disk_cache_dir=str(cache_dir or lm_cache_dir()),
        # The disk cache keeps everything; a bounded memory layer keeps long batches flat.
        memory_max_entries=10_000,
        restrict_pickle=True,
    )
