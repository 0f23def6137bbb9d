"""Grey-box identification: fit a vector field's coefficients by backpropagating through the integrator.

The seed writes Lorenz-63 as a linear map on the monomials ``[x, y, z, xz, xy]``
(:class:`~difflens.dynamics.systems.LorenzMonomial`). Knowing only that library,
:func:`fit_greybox` recovers all 15 weights - hence (sigma, rho, beta) - from
observed trajectories by *multiple shooting*: the observations are cut into
short segments, each segment is integrated with RK4 from its first
(observed, or learned) state, and the squared mismatch to the observations,
scaled by their standard deviation, is minimised with L-BFGS on the shared
engine. Short segments keep the loss smooth although the system is chaotic.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from .integrators import integrate
from .systems import LorenzMonomial

__all__ = ["GreyboxResult", "fit_greybox", "segment_observations"]


@dataclass
class GreyboxResult:
    """The outcome of :func:`fit_greybox`.

    Attributes
    ----------
    model : nn.Module
        The fitted vector field.
    sigma_rho_beta : tuple of float or None
        Read back from the model (LorenzMonomial/Lorenz63 only).
    loss : float
        Final loss (mean squared mismatch in units of the observations' std).
    iterations : int
        Engine iterations run (L-BFGS steps), resumed ones included.
    optimization : Optimization
        The engine that ran the fit: ``history`` (``loss``, ``seconds``: the
        wall time spent), ``stop_reason``, ``finished``.
    """

    model: nn.Module
    sigma_rho_beta: tuple[float, float, float] | None
    loss: float
    iterations: int
    optimization: Any = field(repr=False, default=None)

    @property
    def finished(self) -> bool:
        """Whether the fit ended by itself (converged or ran its iterations), not by an interrupt."""
        return bool(self.optimization is not None and self.optimization.finished)

    def relative_errors(self, truth: tuple[float, float, float] = (10.0, 28.0, 8.0 / 3.0)) -> tuple[float, ...]:
        """``|estimate - truth| / truth`` for (sigma, rho, beta)."""
        if self.sigma_rho_beta is None:
            raise ValueError("this model has no (sigma, rho, beta) read-out")
        return tuple(abs(e - t) / abs(t) for e, t in zip(self.sigma_rho_beta, truth))


def segment_observations(obs: Tensor, segment: int) -> Tensor:
    """Cut ``(B, T, d)`` observations into ``(N, segment + 1, d)`` pieces that share their end points."""
    if obs.ndim != 3:
        raise ValueError(f"observations must have shape (B, T, d), got {list(obs.shape)}")
    if int(segment) < 1 or obs.shape[1] < segment + 1:
        raise ValueError(f"segment must be in [1, T - 1 = {obs.shape[1] - 1}], got {segment}")
    n = (obs.shape[1] - 1) // segment
    starts = torch.arange(n, device=obs.device) * segment
    idx = starts[:, None] + torch.arange(segment + 1, device=obs.device)
    return obs[:, idx].reshape(-1, segment + 1, obs.shape[-1])


class _ScaledMonomial(nn.Module):
    """``LorenzMonomial`` reparametrised as ``W = V / s`` with ``s`` the monomials' RMS over the data.

    The monomials differ in size by ~30x (x ~ 10, xz ~ 300), which leaves the
    least-squares problem badly conditioned in ``W``; in ``V`` every column
    matters equally and L-BFGS converges in a few iterations.
    """

    def __init__(self, model: LorenzMonomial, scale: Tensor) -> None:
        super().__init__()
        self.register_buffer("scale", scale)
        self.V = nn.Parameter((model.weight.detach() * scale).clone())

    def forward(self, t: Tensor, x: Tensor) -> Tensor:
        return (LorenzMonomial.monomials(x) / self.scale) @ self.V.t()


def _read_sigma_rho_beta(model: nn.Module) -> tuple[float, float, float] | None:
    if hasattr(model, "sigma_rho_beta"):
        return model.sigma_rho_beta()
    if all(hasattr(model, k) for k in ("sigma", "rho", "beta")):
        return (float(model.sigma), float(model.rho), float(model.beta))
    return None


def fit_greybox(observations: Tensor, dt: float, model: nn.Module | None = None, segment: int = 10,
                substeps: int = 1, fit_initial_states: bool = False, max_iter: int = 100,
                lbfgs_iter: int = 20, progress: bool | str = False, *,
                callbacks: Sequence[Callable] = (), checkpoint_path: str | os.PathLike | None = None,
                resume: bool = False) -> GreyboxResult:
    """Fit ``model`` (default: :class:`LorenzMonomial` with all-zero weights) to ``observations``.

    Parameters
    ----------
    observations: ``(B, T, d)`` states sampled every ``dt`` (noisy or not).
    dt: sampling step (model time units).
    model: any vector field ``f(t, x)`` with learnable parameters; the default
        knows only the monomial library (its 15 weights start at zero). A
        :class:`LorenzMonomial` is fitted in monomial-RMS-scaled coordinates
        (well conditioned) and its ``weight`` updated in place.
    segment: samples per shooting segment (default 10: 0.1 time units at dt = 0.01).
    substeps: RK4 steps per sample interval.
    fit_initial_states: also learn each segment's starting state (helps with
        noisy observations: the starts are then not taken as exact).
    max_iter: engine iterations, each one L-BFGS step of up to ``lbfgs_iter``
        function evaluations; stops early once the loss changes by less than
        1e-4 (relative) over 3 iterations.
    progress: a progress bar or log lines (see :class:`~difflens.engine.Optimization`).
    callbacks: ``fn(optimization)`` after every iteration.
    checkpoint_path: where the engine writes its checkpoint when the run ends
        or is interrupted (Ctrl-C, SIGTERM).
    resume: with an existing ``checkpoint_path``, load it and finish the fit it
        records: an interrupted fit resumed with the same arguments gives the
        numbers of an uninterrupted one.

    Returns
    -------
    GreyboxResult
        Its ``optimization`` is the engine, run; ``finished`` is False after an interrupt.
        The loss is the mean squared mismatch in units of the observations' per-variable
        standard deviation.
    """
    from difflens.engine import GradientNorm, LossChange, Optimization

    if not dt > 0:
        raise ValueError(f"dt must be > 0, got {dt}")
    if not bool(torch.isfinite(observations).all()):
        raise ValueError("observations contain NaN or inf")
    obs = observations.to(torch.float64)
    model = model if model is not None else LorenzMonomial(weight=torch.zeros(3, 5), device=obs.device)
    segs = segment_observations(obs, segment)  # (N, S+1, d)
    scale = obs.reshape(-1, obs.shape[-1]).std(0)
    t = torch.arange(segment + 1, dtype=torch.float64, device=obs.device) * float(dt)
    starts = nn.Parameter(segs[:, 0].clone()) if fit_initial_states else None
    target = segs.transpose(0, 1)  # (S+1, N, d)
    field = model
    if isinstance(model, LorenzMonomial):
        rms = LorenzMonomial.monomials(obs.reshape(-1, obs.shape[-1])).square().mean(0).sqrt()
        field = _ScaledMonomial(model, rms.to(model.weight.dtype))

    def loss_fn() -> Tensor:
        x0 = starts if starts is not None else target[0]
        pred = integrate(field, x0, t, method="rk4", step_size=float(dt) / int(substeps), max_abs=None,
                         script=False)
        return ((pred - target) / scale).square().mean()

    params = [p for p in field.parameters() if p.requires_grad] + ([starts] if starts is not None else [])
    if not params:
        raise ValueError("the model has no learnable parameters")
    optimization = Optimization(
        params, loss_fn,
        optimizer=lambda p: torch.optim.LBFGS(p, lr=1.0, max_iter=int(lbfgs_iter), history_size=50,
                                              tolerance_grad=1e-12, tolerance_change=1e-16,
                                              line_search_fn="strong_wolfe"),
        stop_rules=[LossChange(1e-4, window=3, relative=True), GradientNorm(1e-12)],
        record_change=False, progress=progress, callbacks=callbacks)
    optimization.configure(checkpoint_path=checkpoint_path)
    optimization.run(int(max_iter), resume=resume)
    with torch.no_grad():
        final = float(loss_fn())
        if field is not model:
            model.weight.copy_(field.V / field.scale)
    return GreyboxResult(model, _read_sigma_rho_beta(model), final, optimization.iteration, optimization)
