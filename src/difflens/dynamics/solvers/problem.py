"""The problem a solver sees: a flat real state, a field with perturbable times, norms, callbacks.

:func:`difflens.dynamics.odeint` reduces every state (0-d, N-d, complex,
tuple) to one 1-D real tensor and the time axis to increasing times, then
hands a :class:`Problem` to a solver in this package.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["CALLBACKS", "Problem", "rms_norm"]

CALLBACKS = ("callback_step", "callback_accept_step", "callback_reject_step")


def rms_norm(x: Tensor) -> Tensor:
    """Root mean square of all entries (0-d)."""
    return x.abs().pow(2).mean().sqrt() if x.numel() else x.new_zeros(())


def _noop(*args) -> None:
    return None


class Problem:
    """``dy/dt = f(t, y)`` on a flat real state ``y0`` ``(N,)``, times increasing.

    Parameters
    ----------
    f:
        ``f(t, y) -> dy/dt`` on flat states; ``t`` a 0-d tensor of ``t_dtype``.
    y0: the flat initial state ``(N,)``.
    rtol, atol: floats or tensors ``(N,)`` (per element).
    norm: ``norm(x) -> 0-d tensor`` of a flat ``(N,)`` tensor; default RMS.
    callbacks: an object whose ``callback_step`` / ``callback_accept_step`` /
        ``callback_reject_step`` attributes (any absent) are called ``(t0, y0, dt)``.
    t_dtype: dtype of the times passed to ``f`` (float32 or float64).
    """

    def __init__(self, f: Callable[[Tensor, Tensor], Tensor], y0: Tensor, rtol: float | Tensor = 1e-7,
                 atol: float | Tensor = 1e-9, norm: Callable[[Tensor], Tensor] | None = None,
                 callbacks: object = None, t_dtype: torch.dtype | None = None) -> None:
        self.f = f
        self.y0 = y0
        self.rtol = rtol
        self.atol = atol
        self.norm = norm or rms_norm
        self.t_dtype = t_dtype or y0.dtype
        self.device = y0.device
        self.nfe = 0
        self.cb = {name: getattr(callbacks, name, None) or _noop for name in CALLBACKS}

    def time(self, t: float, perturb: int = 0) -> Tensor:
        """``t`` as a 0-d tensor; ``perturb`` +1 / -1 nudges it to the next / previous float."""
        tt = torch.tensor(t, dtype=self.t_dtype, device=self.device)
        if perturb:
            tt = torch.nextafter(tt, tt.new_tensor(math.inf if perturb > 0 else -math.inf))
        return tt

    def __call__(self, t: float, y: Tensor, perturb: int = 0) -> Tensor:
        self.nfe += 1
        return self.f(self.time(t, perturb), y)

    def at(self, t: Tensor, y: Tensor) -> Tensor:
        """``f(t, y)`` at a time already made a tensor (see :meth:`times`)."""
        self.nfe += 1
        return self.f(t, y)

    def times(self, ts: list[float]) -> tuple[Tensor, ...]:
        """Many times as 0-d tensors in one ``torch.tensor`` call (far cheaper than one call each)."""
        return torch.tensor(ts, dtype=self.t_dtype, device=self.device).unbind(0)

    def callback(self, name: str, t: float, y: Tensor, dt: float) -> None:
        fn = self.cb[name]
        if fn is not _noop:
            fn(self.time(t), y, self.time(dt))

    def error_ratio(self, err: Tensor, y0: Tensor, y1: Tensor) -> Tensor:
        """``norm(err / (atol + rtol max(|y0|, |y1|)))`` (0-d)."""
        scale = torch.maximum(y0.detach().abs(), y1.detach().abs()).mul_(self.rtol).add_(self.atol)
        return self.norm(err.detach() / scale)
