"""The one optimisation engine of difflens: loop, stop rules, history, checkpoints.

See :class:`Optimization`; docs/architecture.md shows how capabilities use it.
"""

from .history import History
from .interrupt import Interrupted, raise_on_signals
from .optimization import CheckpointError, NonFiniteLossError, Optimization, load_file
from .stopping import ChangeNormConvergence, GradientNorm, LossChange, LossConvergence, StopRule, TimeBudget

__all__ = ["Optimization", "History", "StopRule", "LossChange", "LossConvergence", "ChangeNormConvergence",
           "GradientNorm", "TimeBudget",
           "NonFiniteLossError", "CheckpointError", "load_file", "Interrupted", "raise_on_signals"]
