"""Keeping secrets out of everything that leaves the process.

Logs, MLflow params and artifacts, saved-program sidecars and reports all pass through
`scrub`: URLs lose their user-info, and the values of environment variables whose names say
they hold a key or a token are replaced. It has no dependencies, so every layer can use it.
"""

from __future__ import annotations

import os
import re
from typing import Any

_SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL)", re.IGNORECASE)
_URL_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")


def _secret_values() -> list[str]:
    # Longest first, so that a secret containing another is replaced whole.
    return sorted(
        (v for k, v in os.environ.items() if _SECRET_NAME.search(k) and len(v) >= 8),
        key=len,
        reverse=True,
    )


def scrub(value: Any) -> Any:
    """The value with URL credentials and secret environment values replaced by ***."""
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    if not isinstance(value, str):
        return value
    value = _URL_USERINFO.sub("***@", value)
    for secret in _secret_values():
        value = value.replace(secret, "***")
    return value
