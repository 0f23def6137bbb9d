"""Hidden-Markov twin experiments: the setup, a synthetic truth and its observations.

A :class:`HMM` is DAPPER's ``HiddenMarkovModel`` in difflens terms: a forecast
model (a vector field integrated with RK4 at step ``dt``), observations every
``obs_every`` model steps through a linear operator ``H`` with Gaussian noise
of covariance ``R``, an initial distribution ``N(x0_mean, x0_cov)``, a number
of observation cycles and a burn-in (cycles left out of the statistics).

Everything is batched over *experiments* (independent truths, observation
noises and filters): truths are ``(X, K + 1, d)`` (cycle 0 is the initial
state), observations ``(X, K, p)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from difflens.dynamics.integrators import integrate, rk4_step

__all__ = ["HMM", "TwinData", "check_spd", "climatology", "lorenz63_sakov2012", "lorenz96_sakov2008", "simulate"]


def check_spd(C: Tensor, name: str, dim: int | None = None) -> Tensor:
    """``C`` as a float64 ``(d, d)`` symmetric positive definite matrix, or a ``ValueError`` naming the problem.

    A scalar or a ``(d,)`` vector is read as ``c I`` or ``diag(c)`` (needs ``dim``
    for a scalar). Symmetry is checked to a relative 1e-10, definiteness by a
    Cholesky factorisation.
    """
    C = torch.as_tensor(C, dtype=torch.float64)
    if C.ndim == 0:
        if dim is None:
            raise ValueError(f"{name} is a scalar but its dimension is unknown")
        C = C * torch.eye(dim, dtype=torch.float64)
    elif C.ndim == 1:
        C = torch.diag(C)
    if C.ndim != 2 or C.shape[0] != C.shape[1]:
        raise ValueError(f"{name} must be a square matrix, got shape {list(C.shape)}")
    if dim is not None and C.shape[0] != dim:
        raise ValueError(f"{name} must be ({dim}, {dim}), got {list(C.shape)}")
    if not bool(torch.isfinite(C).all()):
        raise ValueError(f"{name} contains NaN or inf")
    scale = float(C.abs().max()) or 1.0
    if float((C - C.T).abs().max()) > 1e-10 * scale:
        raise ValueError(f"{name} is not symmetric (max |C - C^T| = {float((C - C.T).abs().max()):.3g})")
    _, info = torch.linalg.cholesky_ex(C)
    if int(info) != 0:
        raise ValueError(f"{name} is not positive definite (Cholesky fails at column {int(info)}; smallest "
                         f"eigenvalue {float(torch.linalg.eigvalsh(C)[0]):.3g})")
    return C


@dataclass
class HMM:
    """A twin-experiment setup (DAPPER's ``HiddenMarkovModel``).

    Parameters
    ----------
    model: the vector field ``f(t, x)`` (an ``nn.Module`` such as :class:`~difflens.dynamics.Lorenz63`).
    dim: the state dimension ``d``.
    dt: the RK4 model step (model time units).
    obs_every: model steps between observations (DAPPER's ``dko``); one *cycle* is that many steps.
    n_cycles: observation cycles ``K`` (DAPPER's ``Ko``; DAPPER's ``Ko=1000`` runs 1001 analyses, difflens K).
    H: ``(p, d)`` linear observation operator (default the identity: every variable observed).
    R: observation-noise covariance ``(p, p)`` (a scalar means ``R I``).
    x0_mean, x0_cov: the initial distribution of the truth and of the filters' first ensemble.
    burn_in: cycles left out of the time means (default ``K // 10``).
    name: a label for tables.
    """

    model: nn.Module
    dim: int
    dt: float
    obs_every: int
    n_cycles: int
    x0_mean: Tensor
    x0_cov: Tensor
    R: Tensor | float = 1.0
    H: Tensor | None = None
    burn_in: int | None = None
    name: str = "hmm"

    def __post_init__(self) -> None:
        if int(self.dim) < 1 or int(self.obs_every) < 1 or int(self.n_cycles) < 1:
            raise ValueError(f"need dim, obs_every and n_cycles >= 1, got {self.dim}, {self.obs_every}, "
                             f"{self.n_cycles}")
        if not (math.isfinite(self.dt) and self.dt > 0):
            raise ValueError(f"dt must be finite and > 0, got {self.dt}")
        d = self.dim = int(self.dim)
        self.obs_every, self.n_cycles = int(self.obs_every), int(self.n_cycles)
        H = torch.eye(d, dtype=torch.float64) if self.H is None else torch.as_tensor(self.H, dtype=torch.float64)
        if H.ndim != 2 or H.shape[1] != d:
            raise ValueError(f"observation operator H must have shape (p, {d}), got {list(H.shape)}")
        if not bool(torch.isfinite(H).all()):
            raise ValueError("observation operator H contains NaN or inf")
        self.H = H
        self.R = check_spd(self.R, "observation-noise covariance R", H.shape[0])
        self.x0_mean = torch.as_tensor(self.x0_mean, dtype=torch.float64).reshape(-1)
        if self.x0_mean.shape != (d,):
            raise ValueError(f"x0_mean must have shape ({d},), got {list(self.x0_mean.shape)}")
        self.x0_cov = check_spd(self.x0_cov, "initial covariance x0_cov", d)
        if self.burn_in is None:
            self.burn_in = self.n_cycles // 10
        if not 0 <= int(self.burn_in) < self.n_cycles:
            raise ValueError(f"burn_in must be in [0, n_cycles), got {self.burn_in}")
        self.burn_in = int(self.burn_in)

    @property
    def n_obs(self) -> int:
        """``p``, the number of observed quantities per cycle."""
        return int(self.H.shape[0])

    @property
    def dt_obs(self) -> float:
        """Model time between observations, ``dt * obs_every``."""
        return self.dt * self.obs_every

    def forecast(self, x: Tensor, n_cycles: int = 1) -> Tensor:
        """States ``(..., d)`` propagated by ``n_cycles`` cycles of RK4 (differentiable when grad is enabled).

        Without gradients the steps run in :func:`~difflens.dynamics.integrate`'s compiled RK4 loop
        (the same arithmetic, several times fewer Python round trips).
        """
        n = int(n_cycles) * self.obs_every
        if n == 0:
            return x
        if not torch.is_grad_enabled() and isinstance(self.model, nn.Module) and x.numel() > 0:
            t = torch.arange(n + 1, dtype=x.dtype) * self.dt
            flat = x.reshape(-1, x.shape[-1])
            return integrate(self.model, flat, t, script=True, max_abs=None)[-1].reshape(x.shape)
        t = x.new_zeros(())
        f = self.model
        for _ in range(n):
            x = rk4_step(f, t, x, self.dt)
        return x

    def sample_initial(self, shape: tuple[int, ...], generator: torch.Generator) -> Tensor:
        """``shape + (d,)`` draws from ``N(x0_mean, x0_cov)``."""
        L0 = torch.linalg.cholesky(self.x0_cov)
        return self.x0_mean + torch.randn(*shape, self.dim, generator=generator, dtype=torch.float64) @ L0.T

    def initial_mean(self) -> Tensor:
        """The mean of the initial distribution ``(d,)``."""
        return self.x0_mean

    def initial_cov(self) -> Tensor:
        """The covariance of the initial distribution ``(d, d)``."""
        return self.x0_cov

    def physical(self, x: Tensor) -> Tensor:
        """The physical state of a model state (the identity here; an emulator's window -> its last state)."""
        return x

    def physical_variance(self, P: Tensor) -> Tensor:
        """The physical variables' variances ``(..., d)`` from a state covariance ``(..., D, D)``."""
        return torch.diagonal(P, dim1=-2, dim2=-1)

    def observe(self, x: Tensor) -> Tensor:
        """``H x`` for states ``(..., d)``: ``(..., p)``."""
        return x @ self.H.to(x).T

    def with_cycles(self, n_cycles: int, burn_in: int | None = None) -> HMM:
        """The same setup with another number of cycles (and burn-in, default ``n_cycles // 10``)."""
        return HMM(self.model, self.dim, self.dt, self.obs_every, n_cycles, self.x0_mean, self.x0_cov, self.R,
                   self.H, burn_in, self.name)


@dataclass
class TwinData:
    """A synthetic truth ``(X, K + 1, d)`` (index 0: the initial state) and observations ``(X, K, p)``."""

    truth: Tensor
    obs: Tensor

    @property
    def n_experiments(self) -> int:
        return int(self.truth.shape[0])


def simulate(hmm: HMM, n_experiments: int, generator: torch.Generator) -> TwinData:
    """Draw ``n_experiments`` truths from ``N(x0_mean, x0_cov)``, run them and observe them with noise ``R``.

    All randomness comes from ``generator`` (a ``torch.Generator``). Returns a
    :class:`TwinData` in float64.
    """
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    if int(n_experiments) < 1:
        raise ValueError(f"n_experiments must be >= 1, got {n_experiments}")
    X, d, p, K = int(n_experiments), hmm.dim, hmm.n_obs, hmm.n_cycles
    x = hmm.sample_initial((X,), generator)
    states = [x]
    with torch.no_grad():
        for _ in range(K):
            x = hmm.forecast(x)
            states.append(x)
    truth = torch.stack(states, 1)
    LR = torch.linalg.cholesky(hmm.R)
    noise = torch.randn(X, K, p, generator=generator, dtype=torch.float64) @ LR.T
    obs = hmm.observe(truth[:, 1:]) + noise
    if not bool(torch.isfinite(truth).all()):
        raise FloatingPointError("the truth blew up (NaN or inf); check dt and the model")
    return TwinData(truth, obs)


def lorenz63_sakov2012(n_cycles: int = 1000, burn_in: int | None = None) -> HMM:
    """Lorenz-63 as in Sakov et al. (2012) and DAPPER's ``mods.Lorenz63.sakov2012``.

    RK4 with ``dt = 0.01``, all three variables observed every 25 steps with
    noise variance 2, initial distribution ``N([1.509, -1.531, 25.46], 2 I)``;
    burn-in 64 cycles (DAPPER's ``BurnIn = 16`` time units) for 1,000 cycles.
    """
    from difflens.dynamics import Lorenz63

    if burn_in is None:
        burn_in = min(64, n_cycles // 10) if n_cycles < 640 else 64
    return HMM(Lorenz63(), 3, 0.01, 25, n_cycles, torch.tensor([1.509, -1.531, 25.46]), 2.0, R=2.0,
               burn_in=burn_in, name="Lorenz-63 (Sakov 2012)")


def lorenz96_sakov2008(n_cycles: int = 1000, burn_in: int | None = None) -> HMM:
    """Lorenz-96 as in Sakov & Oke (2008) and DAPPER's ``mods.Lorenz96.sakov2008``.

    40 variables, ``F = 8``, RK4 with ``dt = 0.05``, every variable observed
    every step with unit noise variance, initial distribution
    ``N(e_1, 0.001 I)``; burn-in 400 cycles (DAPPER's ``BurnIn = 20`` time units)
    for 1,000 cycles.
    """
    from difflens.dynamics import Lorenz96

    if burn_in is None:
        burn_in = min(400, (2 * n_cycles) // 5)
    x0 = torch.zeros(40, dtype=torch.float64)
    x0[0] = 1.0
    return HMM(Lorenz96(40, 8.0), 40, 0.05, 1, n_cycles, x0, 0.001, R=1.0, burn_in=burn_in,
               name="Lorenz-96 (Sakov & Oke 2008)")


def climatology(hmm: HMM, n_cycles: int = 2000, generator: torch.Generator | None = None,
                spin_up: int = 100) -> Tensor:
    """The climatological covariance ``(d, d)`` of the model: the sample covariance of one long free run
    (``n_cycles`` cycles after ``spin_up``), from a draw of the initial distribution (``generator``)."""
    from difflens.tools.rng import default_generator

    x = hmm.sample_initial((1,), default_generator(generator))
    states = []
    with torch.no_grad():
        for k in range(int(spin_up) + int(n_cycles)):
            x = hmm.forecast(x)
            if k >= spin_up:
                states.append(x[0])
    return torch.cov(torch.stack(states).T)
