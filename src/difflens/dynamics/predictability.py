"""Fastest-growing perturbations of a forecast, with the foundation's :class:`Eigendistortion`.

The flow map ``Phi_T: x0 -> x(T)`` has Jacobian ``J``; the eigendistortions of
``Phi_T`` are the eigenvectors of ``J^T J`` and its top eigenvalue is
``sigma_1^2`` (``sigma_1`` the largest singular value of ``J``). The
finite-time Lyapunov exponent ``log(sigma_1) / T`` tends to lambda_1 as T grows
(from above: the top singular value also collects the transient alignment).
The same works for an emulator, whose input is its context window ``(L, d)``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .integrators import integrate

__all__ = ["FiniteTimeGrowth", "emulator_flow_map", "finite_time_growth", "flow_map"]


@dataclass
class FiniteTimeGrowth:
    """eigenvalue: top eigenvalue of ``J^T J``; sigma1 = sqrt(eigenvalue); exponent = log(sigma1) / horizon;
    direction: the unit eigendistortion (input-shaped); horizon: model time units."""

    eigenvalue: float
    sigma1: float
    exponent: float
    direction: Tensor
    horizon: float


def _frozen(module: nn.Module) -> nn.Module:
    """A copy without trainable parameters (Eigendistortion needs a fixed model)."""
    return copy.deepcopy(module).requires_grad_(False)


def flow_map(system: nn.Module, horizon: float, dt: float = 0.01) -> Callable[[Tensor], Tensor]:
    """``x0 (..., d) -> x(horizon)``: RK4 with steps of at most ``dt``, on a frozen copy of ``system``."""
    if not horizon > 0:
        raise ValueError(f"horizon must be > 0 time units, got {horizon}")
    f = _frozen(system)

    def phi(x: Tensor) -> Tensor:
        t = torch.tensor([0.0, float(horizon)], dtype=x.dtype, device=x.device)
        return integrate(f, x, t, method="rk4", step_size=dt)[-1]
    return phi


def emulator_flow_map(emulator: nn.Module, n_steps: int) -> Callable[[Tensor], Tensor]:
    """``window (L, d) -> state after n_steps`` autoregressive emulator steps, on a frozen copy."""
    if int(n_steps) < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}")
    em = _frozen(emulator)

    def phi(window: Tensor) -> Tensor:
        return em.rollout(window.unsqueeze(0), int(n_steps))[0, -1]
    return phi


def finite_time_growth(phi: Callable[[Tensor], Tensor], x0: Tensor, horizon: float, method: str = "exact",
                       generator: torch.Generator | None = None) -> FiniteTimeGrowth:
    """Top eigendistortion of ``phi`` at ``x0`` (any shape) via :class:`difflens.synthesize.Eigendistortion`.

    ``horizon``: the model time ``phi`` spans (for the exponent). ``method``:
    Eigendistortion's solver (``"exact"`` forms the small Jacobian; ``"lanczos"``
    uses Jacobian products only).
    """
    from difflens.synthesize import Eigendistortion

    if not horizon > 0:
        raise ValueError(f"horizon must be > 0, got {horizon}")
    eig = Eigendistortion(x0.detach(), phi)
    if method == "exact":
        eig.synthesize(method="exact")
    else:
        eig.synthesize(method=method, k=1, generator=generator)
    lam = float(eig.eigenvalues[0])
    sigma1 = math.sqrt(max(lam, 0.0))
    exponent = math.log(sigma1) / horizon if sigma1 > 0 else -math.inf
    return FiniteTimeGrowth(lam, sigma1, exponent, eig.eigendistortions[0].detach().clone(), float(horizon))
