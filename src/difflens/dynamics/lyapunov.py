"""Lyapunov exponents by tangent-space QR (Benettin et al. 1980; Shimada & Nagashima 1979).

A map ``x[n+1] = step(x[n])`` (one time step ``dt`` of a flow, or an emulator's
step) carries tangent vectors with its Jacobian ``J(x)``, obtained here by
autograd. Starting from an orthonormal ``Q`` ``(m, k)``, each step computes
``J Q = Q' R`` (QR) and accumulates ``log |R_ii|``; the averages divided by
``dt`` are the ``k`` leading exponents (per model time unit). Batches of
trajectories run together and give a standard error.

* :func:`flow_step` makes the step map of a vector field (one RK4 step).
* :func:`lyapunov_spectrum` handles any step map on states ``(B, m)``.
* :func:`emulator_lyapunov` handles an emulator, whose state is its context
  window ``(B, L, d)``: the shift part of the Jacobian is exact and only the
  new state's ``d`` rows come from autograd.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .integrators import rk4_step

__all__ = ["LyapunovResult", "emulator_lyapunov", "flow_step", "jacobian", "lyapunov_spectrum"]

TangentMap = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]


@dataclass
class LyapunovResult:
    """Exponents per model time unit.

    exponents: ``(k,)`` mean over trajectories; stderr: ``(k,)`` standard error
    of that mean; per_trajectory: ``(B, k)``; running: ``(R, k)`` the running
    mean estimate at ``running_times`` ``(R,)`` (model time after the
    transient); total_time: averaging time per trajectory; final_state: the
    states the runs ended in.
    """

    exponents: Tensor
    stderr: Tensor
    per_trajectory: Tensor
    running: Tensor
    running_times: Tensor
    total_time: float
    final_state: Tensor

    @property
    def lambda1(self) -> float:
        return float(self.exponents[0])

    @property
    def sum(self) -> float:
        return float(self.exponents.sum())

    def kaplan_yorke_dimension(self) -> float:
        """``j + sum_{i<=j} lambda_i / |lambda_{j+1}|`` with j the largest index whose partial sum is >= 0."""
        lam = self.exponents.tolist()
        partial = 0.0
        for j, v in enumerate(lam):
            if partial + v < 0:
                return j + partial / abs(v)
            partial += v
        return float(len(lam))


def flow_step(f: Callable[[Tensor, Tensor], Tensor], dt: float, substeps: int = 1) -> Callable[[Tensor], Tensor]:
    """The time-``dt`` map of ``dx/dt = f(t, x)`` as ``substeps`` RK4 steps (autonomous: t = 0)."""
    if not dt > 0 or int(substeps) < 1:
        raise ValueError(f"need dt > 0 and substeps >= 1, got {dt}, {substeps}")
    h = float(dt) / int(substeps)

    def step(x: Tensor) -> Tensor:
        t = torch.zeros((), dtype=x.dtype, device=x.device)
        for _ in range(int(substeps)):
            x = rk4_step(f, t, x, h)
        return x
    return step


def jacobian(step: Callable[[Tensor], Tensor], x: Tensor, out_dim: int | None = None) -> tuple[Tensor, Tensor]:
    """``(step(x), J)`` with ``J`` ``(B, m_out, m)`` the batched Jacobian of ``step`` at ``x`` ``(B, m)``.

    Reverse mode with a single backward pass: the batch is replicated
    ``m_out`` times, copy ``i`` keeps only output ``i``, and since batch items
    are independent, the gradient of the sum w.r.t. copy ``i`` is row ``i`` of
    the Jacobian. ``out_dim`` (default: ``m``) is the output dimension.
    """
    B, m = x.shape
    m_out = m if out_dim is None else int(out_dim)
    xr = x.detach().unsqueeze(1).expand(B, m_out, m).reshape(B * m_out, m).clone().requires_grad_(True)
    with torch.enable_grad():
        y = step(xr)
        if y.ndim != 2 or y.shape != (B * m_out, m_out):
            raise ValueError(f"the step map must return (B, {m_out}) for (B, {m}) input, got "
                             f"{list(y.shape)} for {B * m_out} items")
        y = y.reshape(B, m_out, m_out)
        sel = torch.diagonal(y, dim1=1, dim2=2).sum()
        (g,) = torch.autograd.grad(sel, xr)
    return y[:, 0].detach(), g.reshape(B, m_out, m)


def _run(tangent: TangentMap, x0: Tensor, m: int, n_steps: int, dt: float, n_exponents: int | None,
         transient: int, generator: torch.Generator | None, record_every: int, qr_every: int) -> LyapunovResult:
    if x0.ndim != 2:
        raise ValueError(f"x0 must have shape (B, m), got {list(x0.shape)}")
    if int(qr_every) < 1:
        raise ValueError(f"qr_every must be >= 1, got {qr_every}")
    if int(n_steps) < 1 or int(transient) < 0 or not dt > 0:
        raise ValueError(f"need n_steps >= 1, transient >= 0 and dt > 0; got {n_steps}, {transient}, {dt}")
    k = m if n_exponents is None else int(n_exponents)
    if not 1 <= k <= m:
        raise ValueError(f"n_exponents must be in [1, {m}], got {n_exponents}")
    B = x0.shape[0]
    if generator is not None:
        q0 = torch.randn(B, m, k, generator=generator, dtype=torch.float64)
    else:  # deterministic default: the first k unit vectors, slightly mixed so no exponent starts degenerate
        q0 = torch.eye(m, k, dtype=torch.float64).expand(B, m, k) + 1e-3 * torch.ones(B, m, k, dtype=torch.float64)
    Q = torch.linalg.qr(q0.to(device=x0.device, dtype=x0.dtype))[0]
    x = x0.detach()
    logs = torch.zeros(B, k, dtype=torch.float64, device=x0.device)
    running, times = [], []
    total = int(transient) + int(n_steps)
    for n in range(total):
        x, Q = tangent(x, Q)
        done = n - transient + 1
        if (n + 1) % qr_every == 0 or n + 1 == transient or n + 1 == total:
            Q, R = torch.linalg.qr(Q)
            if not bool(torch.isfinite(R).all()):
                raise FloatingPointError(f"the tangent vectors became non-finite at step {n}; lower qr_every "
                                         "or check the trajectory")
            if n >= transient:
                logs += torch.log(torch.diagonal(R, dim1=-2, dim2=-1).abs().to(torch.float64))
                if done % record_every < qr_every or done == n_steps:
                    running.append((logs / (done * dt)).mean(0))
                    times.append(done * dt)
        if not bool(torch.isfinite(x).all()):
            raise FloatingPointError(f"the trajectory became non-finite at step {n}; cannot estimate exponents")
    per = logs / (n_steps * dt)
    mean = per.mean(0)
    stderr = per.std(0) / B ** 0.5 if B > 1 else torch.full_like(mean, float("nan"))
    return LyapunovResult(mean, stderr, per, torch.stack(running), torch.tensor(times, dtype=torch.float64),
                          float(n_steps * dt), x)


def lyapunov_spectrum(step: Callable[[Tensor], Tensor], x0: Tensor, n_steps: int, dt: float,
                      n_exponents: int | None = None, transient: int = 0,
                      generator: torch.Generator | None = None, record_every: int = 100,
                      qr_every: int = 5) -> LyapunovResult:
    """The ``n_exponents`` leading Lyapunov exponents of the map ``step`` ``(B, m) -> (B, m)``.

    Parameters
    ----------
    step: one time step of ``dt`` model time units, e.g. ``flow_step(Lorenz63(), 0.01)``.
    x0: ``(B, m)`` starting states (on the attractor, or use ``transient``).
    n_steps: averaging steps after ``transient`` steps that only align the tangent basis.
    dt: model time per step (exponents are per model time unit).
    n_exponents: how many (default all m).
    generator: draws the initial tangent basis (default: a fixed basis).
    record_every: steps between entries of the running estimate.
    qr_every: steps between re-orthonormalisations (the logs of ``R``'s
        diagonal over those steps add up; lower it if tangents overflow).

    Notes
    -----
    The sum of all m exponents is the mean of ``log |det J| / dt``: for a flow,
    the phase-space contraction rate (``-(sigma + 1 + beta)`` for Lorenz-63).
    """
    m = x0.shape[-1]

    def tangent(x: Tensor, Q: Tensor) -> tuple[Tensor, Tensor]:
        y, J = jacobian(step, x)
        return y, J @ Q
    return _run(tangent, x0, m, n_steps, dt, n_exponents, transient, generator, record_every, qr_every)


def emulator_lyapunov(emulator: nn.Module, context: Tensor, n_steps: int, dt: float, n_exponents: int = 3,
                      transient: int = 200, generator: torch.Generator | None = None,
                      record_every: int = 100, qr_every: int = 5) -> LyapunovResult:
    """Leading exponents of an emulator's step map on its window state ``(B, L * d)``.

    ``context``: ``(B, >= L, d)`` true states to start from (the last L are
    used). The map is ``W -> [W[1:], g(W)]``; its Jacobian is the exact shift
    plus the ``d`` rows ``dg/dW`` from autograd. The spectrum has ``L * d``
    exponents; the leading ones should match the system's, the rest belong to
    the delay embedding. ``dt`` is the sampling step of the data the emulator
    was trained on.
    """
    L, d = emulator.context, emulator.dim
    if context.ndim != 3 or context.shape[-1] != d or context.shape[1] < L:
        raise ValueError(f"context must have shape (B, >= {L}, {d}), got {list(context.shape)}")
    dtype = emulator.mean.dtype
    w0 = context[:, -L:].to(dtype).reshape(context.shape[0], L * d)

    def new_state(w: Tensor) -> Tensor:
        return emulator.step(w.reshape(w.shape[0], L, d))

    def tangent(w: Tensor, Q: Tensor) -> tuple[Tensor, Tensor]:
        g, Jg = jacobian(new_state, w, out_dim=d)  # (B, d), (B, d, L d)
        JQ = torch.cat((Q[:, d:], Jg @ Q), 1)
        return torch.cat((w[:, d:], g), 1), JQ
    return _run(tangent, w0, L * d, n_steps, dt, n_exponents, transient, generator, record_every, qr_every)
