"""Building LMs from a spec string: remote (LiteLLM / OpenAI-compatible) or the embedded engine."""

from agenther_dspy.lm.factory import LMConfigError, build_lm, is_local

__all__ = ["LMConfigError", "build_lm", "is_local"]
