"""Single steps shared by the solvers: an explicit Runge-Kutta step from a tableau, an implicit one
(simplified Newton), Hermite interpolation and event localisation by bisection."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from difflens.dynamics.solvers.problem import Problem
from difflens.dynamics.solvers.tableaux import Tableau

__all__ = ["EventFunction", "combine", "explicit_stages", "hermite", "implicit_step", "locate_event",
           "stage_times"]


def combine(y: Tensor, ks: list[Tensor], weights, h: float) -> Tensor:
    """``y + h sum_i w_i k_i`` (zero weights skipped; the increment is summed first, then added once)."""
    nz = [(k, w) for k, w in zip(ks, weights) if w != 0.0]
    if not nz:
        return y.clone()
    if len(nz) == 1:
        return torch.add(y, nz[0][0], alpha=h * nz[0][1])
    (k0, w0), (k1, w1) = nz[0], nz[1]
    acc = torch.add(k0 if w0 == 1.0 else k0 * w0, k1, alpha=w1)
    for k, w in nz[2:]:
        acc.add_(k, alpha=w)
    return torch.add(y, acc, alpha=h)


def _perturb(c: float, perturb: bool) -> int:
    if not perturb:
        return 0
    return 1 if c == 0.0 else -1 if c == 1.0 else 0


def stage_times(tab: type[Tableau], t0: float, h: float, t1: float | None = None) -> list[float]:
    """The times ``t0 + c_i h`` of a step's stages (``t1``, default ``t0 + h``, for nodes ``c = 1``)."""
    t1 = t0 + h if t1 is None else t1
    return [t1 if c == 1.0 else t0 + c * h for c in tab.c]


def explicit_stages(P: Problem, tab: type[Tableau], t0: float, h: float, y0: Tensor, k1: Tensor | None = None,
                    perturb: bool = False, t1: float | None = None,
                    times: tuple[Tensor, ...] | None = None) -> tuple[list[Tensor], list[Tensor]]:
    """The stage inputs ``Y_i`` and derivatives ``k_i`` of one explicit step (``k1`` reused if given).

    ``t1`` (default ``t0 + h``) is the time used for nodes ``c = 1``, so a step
    lands exactly on a grid point. ``times``: the stage times as 0-d tensors,
    made beforehand for many steps at once (not with ``perturb``).
    """
    ys: list[Tensor] = []
    ks: list[Tensor] = []
    ts = None if times is not None else stage_times(tab, t0, h, t1)
    for i, c in enumerate(tab.c):
        yi = y0 if i == 0 else combine(y0, ks, tab.a[i], h)
        if i == 0 and k1 is not None:
            k = k1
        elif times is not None:
            k = P.at(times[i], yi)
        else:
            k = P(ts[i], yi, _perturb(c, perturb))
        ys.append(yi)
        ks.append(k)
    return ys, ks


def _fd_jacobian(P: Problem, t: float, y: Tensor, f0: Tensor, pert: int) -> Tensor:
    """Forward-difference Jacobian ``df/dy`` ``(N, N)`` (for the Newton iteration only)."""
    n = y.numel()
    eps = math.sqrt(torch.finfo(y.dtype).eps)
    cols = []
    for j in range(n):
        d = eps * max(1.0, abs(float(y[j])))
        e = y.clone()
        e[j] += d
        cols.append((P(t, e, pert) - f0) / d)
    return torch.stack(cols, 1)


def implicit_step(P: Problem, tab: type[Tableau], t0: float, h: float, y0: Tensor, perturb: bool = False,
                  t1: float | None = None) -> tuple[Tensor, Tensor]:
    """One step of an implicit Runge-Kutta method; returns ``(y1, f(t0, y0))``.

    The stage derivatives ``K`` solve ``K_i = f(t0 + c_i h, y0 + h sum_j a_ij K_j)``
    by simplified Newton (Jacobian by forward differences at ``(t0, y0)``,
    factorised once per step) to round-off. When gradients are wanted, two
    more Newton iterations run on the graph from the converged (detached)
    stages, which carries the derivative of the implicit solution.
    """
    t1 = t0 + h if t1 is None else t1
    s, n = tab.stages(), y0.numel()
    A = torch.tensor(tab.a, dtype=y0.dtype, device=y0.device)
    p0 = 1 if perturb else 0
    f0 = P(t0, y0, p0)
    times = [(t1 if c == 1.0 else t0 + c * h, _perturb(c, perturb)) for c in tab.c]

    def residual(K: Tensor) -> Tensor:  # K (s, n)
        Y = y0 + h * (A @ K)
        return K - torch.stack([P(tt, Y[i], pp) for i, (tt, pp) in enumerate(times)])

    eye = torch.eye(n, dtype=y0.dtype, device=y0.device)

    def factor(Js: list[Tensor]):
        M = torch.cat([torch.cat([eye * float(i == j) - h * float(tab.a[i][j]) * Js[i] for j in range(s)], 1)
                       for i in range(s)], 0)
        return torch.linalg.lu_factor(M)

    with torch.no_grad():
        J0 = _fd_jacobian(P, t0, y0.detach(), f0.detach(), p0)
        LU, piv = factor([J0] * s)
        K = f0.detach().expand(s, n).clone()
        eps = torch.finfo(y0.dtype).eps
        prev, size, refreshed = math.inf, math.inf, 0
        for it in range(60):
            dK = torch.linalg.lu_solve(LU, piv, -residual(K).reshape(-1, 1)).reshape(s, n)
            K += dK
            size = float(dK.abs().max())
            scale = max(1.0, float(K.abs().max()))
            if not math.isfinite(size) or size <= 10 * eps * scale:
                break
            if size >= 0.5 * prev and size <= math.sqrt(eps) * scale:  # stalled at the round-off floor
                break
            if size >= 0.3 * prev and refreshed < 5:  # slow: Jacobians at the current stages (full Newton)
                Y = y0.detach() + h * (A @ K)
                Js = []
                for i, (tt, pp) in enumerate(times):
                    Js.append(_fd_jacobian(P, tt, Y[i], P(tt, Y[i], pp), pp))
                LU, piv = factor(Js)
                refreshed += 1
            prev = size
        if not (math.isfinite(size) and size <= math.sqrt(eps) * max(1.0, float(K.abs().max()))):
            raise RuntimeError(f"odeint: the Newton iteration of {tab.name!r} did not converge at t = {t0:.6g} "
                               f"(step {h:.3g}); use a smaller step_size")
    if torch.is_grad_enabled() and (y0.requires_grad or f0.requires_grad):
        for _ in range(2):
            K = K - torch.linalg.lu_solve(LU, piv, residual(K).reshape(-1, 1)).reshape(s, n)
    y1 = y0 + h * (torch.tensor(tab.b, dtype=y0.dtype, device=y0.device) @ K)
    return y1, f0


def hermite(t0: float, t1: float, y0: Tensor, f0: Tensor, y1: Tensor, f1: Tensor, t: float) -> Tensor:
    """Cubic Hermite interpolation on ``[t0, t1]`` at ``t``."""
    h = t1 - t0
    s = (t - t0) / h
    h00 = (1 + 2 * s) * (1 - s) ** 2
    h10 = s * (1 - s) ** 2
    h01 = s * s * (3 - 2 * s)
    h11 = s * s * (s - 1)
    return y0 * h00 + f0 * (h10 * h) + y1 * h01 + f1 * (h11 * h)


class EventFunction:
    """Wraps ``event_fn(t, y)`` on flat states; checks it returns a real tensor of one fixed shape."""

    def __init__(self, fn: Callable[[Tensor, Tensor], Tensor], P: Problem) -> None:
        self.fn = fn
        self.P = P
        self.shape: torch.Size | None = None

    def __call__(self, t: float, y: Tensor) -> Tensor:
        with torch.no_grad():
            g = self.fn(self.P.time(t), y)
        if not isinstance(g, Tensor) or g.is_complex() or g.numel() == 0:
            raise TypeError("event_fn(t, y) must return a real tensor (0-d, or one value per event), got "
                            f"{type(g).__name__ if not isinstance(g, Tensor) else f'{g.dtype} {list(g.shape)}'}")
        if self.shape is None:
            self.shape = g.shape
        elif g.shape != self.shape:
            raise ValueError(f"event_fn returned shape {list(g.shape)} after {list(self.shape)}; it must "
                             "return the same shape at every call")
        return torch.sign(g)

    def changed(self, sign0: Tensor, sign1: Tensor) -> bool:
        return bool((sign0 != sign1).any())


def locate_event(ev: EventFunction, sign0: Tensor, t0: float, t1: float,
                 interp: Callable[[float], Tensor]) -> float:
    """Bisect ``[t0, t1]`` (``event_fn`` changes sign somewhere in it) to the first crossing, to round-off."""
    lo, hi = t0, t1
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid <= lo or mid >= hi:
            break
        with torch.no_grad():
            changed = ev.changed(sign0, ev(mid, interp(mid)))
        if changed:
            hi = mid
        else:
            lo = mid
    return hi


_WEIGHTS: dict[tuple, list[float]] = {}


def lagrange_weights(nodes: list[float], a: float, b: float) -> list[float]:
    """``w_j = int_a^b L_j(s) ds`` for the Lagrange basis on ``nodes`` (Adams coefficients on any grid).

    Computed on the nodes scaled to ``[a, b] -> [0, 1]`` and cached, so a uniform grid costs one lookup.
    """
    h = b - a
    key = tuple(round((x - a) / h, 10) for x in nodes)
    hit = _WEIGHTS.get(key)
    if hit is None:
        hit = _WEIGHTS[key] = _lagrange_unit(list(key))
    return [w * h for w in hit]


def _lagrange_unit(nodes: list[float]) -> list[float]:
    a, b = 0.0, 1.0
    out = []
    for j, nj in enumerate(nodes):
        p = np.poly1d([1.0])
        for m, nm in enumerate(nodes):
            if m != j:
                p = p * np.poly1d([1.0, -nm]) / (nj - nm)
        q = p.integ()
        out.append(float(q(b) - q(a)))
    return out
