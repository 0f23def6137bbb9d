"""Gaussian processes are Kalman filters: a Matérn GP over time in state-space form, solved in O(N).

A Matérn-nu/2 GP ``f(t)`` with ``nu = 1/2`` or ``3/2`` is the first component
of a linear stochastic differential equation (Hartikainen & Särkkä 2010):

* ``nu = 1/2`` (exponential kernel): the Ornstein-Uhlenbeck state ``f``,
  ``A = exp(-dt / l)``, ``Q = s2 (1 - A^2)``;
* ``nu = 3/2``: the state ``(f, f')`` with ``lam = sqrt(3) / l``,
  ``A = exp(-lam dt) [[1 + lam dt, dt], [-lam^2 dt, 1 - lam dt]]``,
  ``Q = Pinf - A Pinf A^T``, ``Pinf = diag(s2, lam^2 s2)``.

Noisy observations ``y_i = f(t_i) + e_i`` at sorted times then make a linear
Gaussian state-space model: :func:`~difflens.assim.kalman_filter` gives the
log marginal likelihood (the innovations' densities) and
:func:`~difflens.assim.rts_smoother` the posterior mean and variance of
``f(t_i)``, in O(N) time and memory instead of the exact GP's O(N^3).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .kalman import kalman_filter, rts_smoother

__all__ = ["StateSpaceGP"]


class StateSpaceGP:
    """A Matérn GP over time (``nu`` 0.5 or 1.5) with Gaussian noise, solved by the Kalman filter and RTS smoother.

    Parameters
    ----------
    nu: 0.5 or 1.5. lengthscale, variance: the kernel's ``l`` and ``s2`` (as :class:`difflens.gp.Matern`).
    noise_variance: the observation-noise variance (> 0).
    """

    def __init__(self, nu: float = 1.5, lengthscale: float = 1.0, variance: float = 1.0,
                 noise_variance: float = 0.01) -> None:
        if nu not in (0.5, 1.5):
            raise ValueError(f"StateSpaceGP supports nu in (0.5, 1.5), got {nu!r}")
        for name, v in (("lengthscale", lengthscale), ("variance", variance), ("noise_variance", noise_variance)):
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be finite and > 0, got {v}")
        self.nu, self.lengthscale, self.variance = float(nu), float(lengthscale), float(variance)
        self.noise_variance = float(noise_variance)

    @property
    def order(self) -> int:
        """The state dimension: 1 for nu = 1/2, 2 for nu = 3/2."""
        return 1 if self.nu == 0.5 else 2

    def stationary_cov(self) -> Tensor:
        """``Pinf`` ``(m, m)``."""
        if self.nu == 0.5:
            return torch.tensor([[self.variance]], dtype=torch.float64)
        lam = math.sqrt(3.0) / self.lengthscale
        return torch.diag(torch.tensor([self.variance, lam**2 * self.variance], dtype=torch.float64))

    def transition(self, dt: Tensor) -> tuple[Tensor, Tensor]:
        """``A`` and ``Q`` for steps ``dt`` ``(T,)``: ``(T, m, m)`` each."""
        Pinf = self.stationary_cov()
        if self.nu == 0.5:
            A = torch.exp(-dt / self.lengthscale).reshape(-1, 1, 1)
        else:
            lam = math.sqrt(3.0) / self.lengthscale
            e = torch.exp(-lam * dt)
            A = torch.stack((torch.stack((1 + lam * dt, dt), -1), torch.stack((-lam**2 * dt, 1 - lam * dt), -1)),
                            -2) * e.reshape(-1, 1, 1)
        Q = Pinf - A @ Pinf @ A.transpose(-1, -2)
        return A, 0.5 * (Q + Q.transpose(-1, -2))

    def _filter(self, t, y):
        t = torch.as_tensor(t, dtype=torch.float64).reshape(-1)
        y = torch.as_tensor(y, dtype=torch.float64)
        if y.ndim == 1:
            y = y.unsqueeze(0)
        if y.ndim != 2 or y.shape[-1] != t.numel():
            raise ValueError(f"y must be (N,) or (B, N) with N = len(t) = {t.numel()}, got {list(y.shape)}")
        if t.numel() < 1 or not bool(torch.isfinite(t).all()):
            raise ValueError("t must be a non-empty 1-D tensor of finite times")
        if t.numel() > 1 and not bool((t[1:] > t[:-1]).all()):
            raise ValueError("t must be strictly increasing (sort the data first)")
        dt = torch.cat((t.new_zeros(1), t[1:] - t[:-1]))
        A, Q = self.transition(dt)
        A[0] = torch.eye(self.order, dtype=torch.float64)  # x_0 ~ N(0, Pinf): no step before the first point
        Q[0] = 0.0
        H = torch.zeros(1, self.order, dtype=torch.float64)
        H[0, 0] = 1.0
        return kalman_filter(y.unsqueeze(-1), A, Q, H, torch.tensor([[self.noise_variance]], dtype=torch.float64),
                             torch.zeros(self.order, dtype=torch.float64), self.stationary_cov())

    def log_marginal_likelihood(self, t: Tensor, y: Tensor) -> Tensor:
        """``log p(y)`` ``(B,)`` (or a 0-d tensor for one series) of observations ``y`` at sorted times ``t``."""
        r = self._filter(t, y)
        y = torch.as_tensor(y)
        return r.log_likelihood if y.ndim == 2 else r.log_likelihood[0]

    def posterior(self, t: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """Posterior mean and variance of ``f(t_i)`` at the observation times: ``(B, N)`` each (``(N,)`` for one)."""
        r = self._filter(t, y)
        m, P = rts_smoother(r)
        mean, var = m[..., 0], P[..., 0, 0]
        return (mean[0], var[0]) if torch.as_tensor(y).ndim == 1 else (mean, var)
