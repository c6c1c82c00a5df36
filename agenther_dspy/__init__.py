"""agenther-dspy: hindsight relabeling of failed agent runs as a compiled DSPy program."""

import os

# Offline by default: no model-price map fetched at first LM call, no usage telemetry.
# Set before DSPy and MLflow are imported; a user's own setting wins.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")

from agenther_dspy.modules.program import HindsightRelabeler
from agenther_dspy.schema import AgentStep, AugmentedSample, Trajectory

__version__ = "0.1.0"

__all__ = ["AgentStep", "AugmentedSample", "HindsightRelabeler", "Trajectory", "__version__"]
