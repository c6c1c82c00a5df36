"""Where agenther-dspy keeps its own files: `$AGENTHER_DSPY_HOME`, else the user cache dir."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    configured = os.environ.get("AGENTHER_DSPY_HOME")
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "agenther-dspy"


def lm_cache_dir() -> Path:
    return home() / "lm-cache"
