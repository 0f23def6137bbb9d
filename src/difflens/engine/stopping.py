"""Stop rules for :class:`~difflens.engine.Optimization`.

A rule looks at the optimisation at a check point and answers either a bool
(stop everything) or, for a per-item loss of shape ``(B,)``, a ``(B,)`` bool
mask of the items it considers converged. The run stops when every item is
converged or any rule answers ``True``. Rules are evaluated only once
``min_iter`` iterations have run.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:  # pragma: no cover
    from .optimization import Optimization

__all__ = ["StopRule", "LossChange", "LossConvergence", "ChangeNormConvergence", "GradientNorm", "TimeBudget"]


class StopRule:
    """Base class: ``name`` becomes the optimisation's ``stop_reason`` when the rule fires."""

    name = "stop_rule"

    def start(self, opt: "Optimization") -> None:
        """Called at the start of every ``run``."""

    def check(self, opt: "Optimization") -> bool | torch.Tensor:
        """Whether the run should stop now: a bool, or a ``(B,)`` bool tensor (one per item) for a
        batched loss."""
        raise NotImplementedError

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({fields})"


class LossChange(StopRule):
    """Stop when the loss changed by less than ``tol`` over the last ``window`` iterations.

    The change is ``|L[t] - L[t - window]|``; with ``relative=True`` it is divided
    by ``|L[t - window]|``. For a ``(B,)`` loss each item converges on its own.
    (plenoptic's ``stop_criterion`` / ``stop_iters_to_check`` is :class:`LossConvergence`,
    which looks one step less far back.)
    """

    name = "loss_change"

    def __init__(self, tol: float, window: int = 50, relative: bool = False) -> None:
        if not (tol >= 0 and math.isfinite(tol)):
            raise ValueError(f"LossChange tol must be a finite number >= 0, got {tol!r}")
        if int(window) < 1:
            raise ValueError(f"LossChange window must be >= 1, got {window!r}")
        self.tol = float(tol)
        self.window = int(window)
        self.relative = bool(relative)

    def check(self, opt: "Optimization") -> bool | torch.Tensor:
        loss = opt.history.loss
        if loss.shape[0] <= self.window:
            return False if loss.ndim <= 1 else torch.zeros(loss.shape[1:], dtype=torch.bool)
        old, new = loss[-1 - self.window], loss[-1]
        change = (new - old).abs()
        if self.relative:
            change = change / old.abs().clamp_min(torch.finfo(old.dtype).tiny)
        done = (change < self.tol).cpu()
        return bool(done) if done.ndim == 0 else done


class LossConvergence(StopRule):
    """plenoptic's metamer stop criterion, per item for a batch.

    After each step, with ``L`` the losses recorded so far (one per step, the loss
    before that step): stop once more than ``iters_to_check`` losses are recorded and
    ``|L[-iters_to_check] - L[-1]| < tol``. Started from the same image with the same
    optimiser, a metamer stops at the same iteration as plenoptic 1.4's
    ``synthesize(stop_criterion=tol, stop_iters_to_check=iters_to_check)``.

    Parameters
    ----------
    tol : float
        Loss change (absolute, in loss units) below which a metamer has converged; 0 never stops.
    iters_to_check : int
        How many iterations back the change is measured (>= 1).
    """

    name = "loss_change"

    def __init__(self, tol: float, iters_to_check: int = 50) -> None:
        if isinstance(tol, bool) or not (isinstance(tol, (int, float)) and math.isfinite(tol) and tol >= 0):
            raise ValueError(f"stop_criterion must be a finite number >= 0, got {tol!r}")
        if isinstance(iters_to_check, bool) or not isinstance(iters_to_check, int) or iters_to_check < 1:
            raise ValueError(f"stop_iters_to_check must be a positive integer, got {iters_to_check!r}")
        self.tol = float(tol)
        self.iters_to_check = iters_to_check

    def check(self, opt: "Optimization") -> bool | torch.Tensor:
        loss = opt.history.loss
        if loss.shape[0] <= self.iters_to_check:
            return False if loss.ndim <= 1 else torch.zeros(loss.shape[1:], dtype=torch.bool)
        done = ((loss[-self.iters_to_check] - loss[-1]).abs() < self.tol).cpu()
        return bool(done) if done.ndim == 0 else done


class ChangeNormConvergence(StopRule):
    """plenoptic's pixel-change criterion (its geodesic's): the last steps all moved less than ``tol``.

    Stops once more than ``iters_to_check`` steps are recorded and the 2-norm of the
    change made by each of the last ``iters_to_check`` steps is below ``tol``.

    Parameters
    ----------
    tol : float
        Change norm (in parameter units) below which a step counts as still (> 0).
    iters_to_check : int
        How many of the last steps must be still (>= 1).
    """

    name = "change_norm"

    def __init__(self, tol: float, iters_to_check: int = 50) -> None:
        if isinstance(tol, bool) or not (isinstance(tol, (int, float)) and math.isfinite(tol) and tol > 0):
            raise ValueError(f"stop_criterion must be a finite number > 0, got {tol!r}")
        if isinstance(iters_to_check, bool) or not isinstance(iters_to_check, int) or iters_to_check < 1:
            raise ValueError(f"stop_iters_to_check must be a positive integer, got {iters_to_check!r}")
        self.tol = float(tol)
        self.iters_to_check = iters_to_check

    def check(self, opt: "Optimization") -> bool:
        change = opt.history.change_norm
        return bool(change.shape[0] > self.iters_to_check and (change[-self.iters_to_check:] < self.tol).all())


class GradientNorm(StopRule):
    """Stop when the gradient's 2-norm of the last step is below ``tol``."""

    name = "grad_norm"

    def __init__(self, tol: float) -> None:
        if not (tol >= 0 and math.isfinite(tol)):
            raise ValueError(f"GradientNorm tol must be a finite number >= 0, got {tol!r}")
        self.tol = float(tol)

    def check(self, opt: "Optimization") -> bool:
        g = opt.history.grad_norm
        return bool(g.shape[0] > 0 and g[-1] < self.tol)


class TimeBudget(StopRule):
    """Stop once ``seconds`` of wall-clock time have passed since ``run`` was called."""

    name = "time_budget"

    def __init__(self, seconds: float) -> None:
        if not seconds > 0:
            raise ValueError(f"TimeBudget seconds must be > 0, got {seconds!r}")
        self.seconds = float(seconds)
        self._start = time.perf_counter()

    def start(self, opt: "Optimization") -> None:
        self._start = time.perf_counter()

    def check(self, opt: "Optimization") -> bool:
        return time.perf_counter() - self._start >= self.seconds
