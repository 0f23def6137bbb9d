"""Alias of :mod:`difflens.simulate.filters` at plenoptic's import path."""

from ..filters import circular_gaussian2d

__all__ = ["circular_gaussian2d"]
