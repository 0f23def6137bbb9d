"""Alias of plenoptic's module path: ``simulate.canonical_computations.filters.circular_gaussian2d``."""

from . import filters
from .filters import circular_gaussian2d

__all__ = ["circular_gaussian2d", "filters"]
