"""Statistics behind every globalign table: bootstrap intervals, paired tests, Holm correction."""

from .correction import holm
from .intervals import Estimate, mean_ci
from .paired import PairedComparison, mcnemar, paired_difference

__all__ = ["Estimate", "PairedComparison", "holm", "mcnemar", "mean_ci", "paired_difference"]
