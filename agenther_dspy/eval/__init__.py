"""The relabel-fidelity metric, the prompt-quality measures, labeled sets and evaluate()."""

from agenther_dspy.eval.dataset import (
    Gold,
    LabeledSet,
    load_labeled,
    resolve_dataset,
    sample_labeled,
)
from agenther_dspy.eval.evaluate import EvalReport, evaluate, paired_difference
from agenther_dspy.eval.metric import make_fidelity_metric, relabel_fidelity

__all__ = [
    "EvalReport",
    "Gold",
    "LabeledSet",
    "evaluate",
    "load_labeled",
    "make_fidelity_metric",
    "paired_difference",
    "relabel_fidelity",
    "resolve_dataset",
    "sample_labeled",
]
