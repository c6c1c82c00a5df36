"""DSPy modules, one per stage plus the rule-based twins, and the composed program."""

from agenther_dspy.modules.detector import LMFailureDetector, RuleFailureDetector
from agenther_dspy.modules.extractor import LMOutcomeExtractor, RuleOutcomeExtractor
from agenther_dspy.modules.program import HindsightRelabeler
from agenther_dspy.modules.relabel import RelabelAndVerify

__all__ = [
    "HindsightRelabeler",
    "LMFailureDetector",
    "LMOutcomeExtractor",
    "RelabelAndVerify",
    "RuleFailureDetector",
    "RuleOutcomeExtractor",
]
