"""Strong-constraint 4D-Var over a sliding window, minimised on the engine with L-BFGS through the integrator.

At each cycle ``k`` the window holds the last ``lag`` observations
``y_{k-lag+1..k}``; the control variable is the state ``x0`` at the window's
start and the cost, for every experiment at once (a ``(X,)`` loss)::

    J(x0) = 1/2 |x0 - x_b|^2_{B^-1} + 1/2 sum_j |y_j - H M_j(x0)|^2_{R^-1}

with ``M_j`` ``j`` cycles of the forecast model (RK4 of the true equations, or
an emulator). Two ways to minimise it:

* ``incremental=True`` (default; the operational formulation, Courtier et al.
  1994, and DAPPER's Gauss-Newton ``Var4D``): ``outer`` times, run the
  trajectory from the current ``x0``, then the one-cycle tangent linear
  models of all its cycles in one batched autograd pass over the cycle starts
  (:func:`~difflens.assim.tangent_linear`, through the integrator), chained
  into ``G_j = dM_j/dx0``, then minimise the quadratic
  incremental cost in ``dx = B^(1/2) v`` with L-BFGS on the engine
  (``.optimization``) and move ``x0 += dx``.
* ``incremental=False``: L-BFGS on the engine directly on the nonlinear cost,
  the gradient by autograd through every integrator step of the window (one
  engine iteration of up to ``inner`` L-BFGS iterations; several times slower).

The analysis at cycle ``k`` is ``M_lag(x0*)``, the end of the optimal
trajectory (it uses no observation after ``k``: a filter estimate, comparable
with the filters'). The background of the next window is the current optimum
moved one cycle: ``x_b = M_1(x0*)`` (DAPPER's cycling). ``B = xB * B``; the
reported spread is that of ``B``.

Lost windows (``rescue_tail``, off by default). A long Lorenz-63 window has
secondary minima, and a Gauss-Newton step from the cycled background sometimes
lands in one at a wing change; the strong static background then keeps the
next windows there for a while. After each minimisation the window's whitened
observation misfit ``chi2 = sum_j |R^(-1/2) (y_j - H M_j(x0*))|^2`` is tested
against the chi-square ``1 - rescue_tail`` quantile with ``n p`` degrees of
freedom (``n`` observations of dimension ``p`` in the window; a window that
fits its observations exceeds it with probability below ``rescue_tail``). An
experiment whose window fails the test is solved again by quasi-static
variational assimilation (Pires, Vautard & Talagrand 1996): the window's
observations are added one at a time, ``J_1, J_2, ..., J_n``, each minimised
from the previous minimum (starting from the background), with the background
weakened to ``rescue_xB * B`` (``rescue_xB = 1``: the climatology, which says
only "on the attractor"), so that the minimum is followed as the window grows
instead of being jumped to. The re-solved window replaces the first one if its
misfit is lower; ``.rescued`` lists ``(cycle, experiment)`` of the replacements
and ``.rescue_tries`` counts the failed tests.
"""

from __future__ import annotations

import math
import time

import torch
from torch import Tensor

from difflens.engine import Optimization

from .hmm import check_spd
from .stats import AssimResult

__all__ = ["Var4D"]


def _lbfgs(inner: int):
    def make(params):
        return torch.optim.LBFGS(params, lr=1.0, max_iter=inner, max_eval=2 * inner, history_size=20,
                                 tolerance_grad=1e-9, tolerance_change=1e-12, line_search_fn="strong_wolfe")

    return make


class Var4D:
    """Strong-constraint 4D-Var (see the module notes), batched over experiments.

    Parameters
    ----------
    B: ``(D, D)`` SPD background covariance (e.g. :func:`~difflens.assim.climatology`), scaled by ``xB``.
    lag: observations in the window (cycles). inner: L-BFGS iterations per minimisation (one engine iteration).
    outer: outer loops (re-linearisations) of the incremental formulation.
    incremental: the incremental formulation (default) or L-BFGS on the nonlinear cost.
    rescue_tail: tail probability of the lost-window test (e.g. ``1e-6``; ``None``, the default: no test), see
        the module notes; needs ``observations="all"``.
    rescue_xB: scale of the climatological ``B`` in the quasi-static re-solve of a lost window (default 1).
    observations: ``"all"`` (default) the window's ``lag`` observations, each observation thus entering ``lag``
        windows; ``"newest"`` only the window's newest one, so each enters once and the window only carries the
        background forward to it (DAPPER's ``Var4D``).

    Attributes
    ----------
    optimization: the :class:`~difflens.engine.Optimization` of the latest minimisation (one per window and
        outer loop: each is a new cost function, and L-BFGS's memory must not mix two of them).
    rescued: ``(cycle, experiment)`` of the windows replaced by their quasi-static re-solve (latest ``run``).
    rescue_tries: windows that failed the lost-window test (latest ``run``).
    """

    def __init__(self, B: Tensor, xB: float = 0.1, lag: int = 4, inner: int = 20, outer: int = 3,
                 incremental: bool = True, observations: str = "all", rescue_tail: float | None = None,
                 rescue_xB: float = 1.0) -> None:
        if observations not in ("all", "newest"):
            raise ValueError(f"observations must be 'all' or 'newest', got {observations!r}")
        if rescue_tail is not None:
            if not (0.0 < float(rescue_tail) < 1.0):
                raise ValueError(f"rescue_tail must be in (0, 1), got {rescue_tail}")
            if observations != "all":
                raise ValueError("rescue_tail needs observations='all' (the re-solve grows the window's observations)")
        if not (math.isfinite(rescue_xB) and rescue_xB > 0):
            raise ValueError(f"rescue_xB must be finite and > 0, got {rescue_xB}")
        self.rescue_tail = None if rescue_tail is None else float(rescue_tail)
        self.rescue_xB = float(rescue_xB)
        self.rescued: list[tuple[int, int]] = []
        self.rescue_tries = 0
        self.observations = observations
        if not (math.isfinite(xB) and xB > 0):
            raise ValueError(f"xB must be finite and > 0, got {xB}")
        if int(lag) < 1 or int(inner) < 1 or int(outer) < 1:
            raise ValueError(f"lag, inner and outer must be >= 1, got {lag}, {inner} and {outer}")
        self.B_climatology = check_spd(B, "background covariance B")
        self.B = self.B_climatology * float(xB)
        self.lag, self.inner, self.outer, self.incremental = int(lag), int(inner), int(outer), bool(incremental)
        self.name = f"4D-Var lag={self.lag}"
        self.optimization: Optimization | None = None

    def _minimise_full(self, model, xb: Tensor, ys: Tensor, Bi: Tensor, Ri: Tensor,
                       x_init: Tensor | None = None) -> Tensor:
        x0 = (xb if x_init is None else x_init).detach().clone(memory_format=torch.contiguous_format)
        x0.requires_grad_(True)
        H = model.H.to(xb)

        def cost() -> Tensor:
            db = x0 - xb
            J = 0.5 * ((db @ Bi) * db).sum(-1)
            x = x0
            for j in range(ys.shape[1]):
                x = model.forecast(x)
                if self.observations == "newest" and j < ys.shape[1] - 1:
                    continue
                dy = ys[:, j] - x @ H.T
                J = J + 0.5 * ((dy @ Ri) * dy).sum(-1)
            return J

        self.optimization = Optimization([x0], cost, optimizer=_lbfgs(self.inner), stop_rules=[],
                                         record_change=False)
        self.optimization.run(1)
        return x0.detach()

    def _minimise_incremental(self, model, xb: Tensor, ys: Tensor, LB: Tensor, LRi: Tensor,
                              x_init: Tensor | None = None) -> Tensor:
        from .filters import tangent_linear

        H = model.H.to(xb)
        xr = (xb if x_init is None else x_init).clone()
        n = ys.shape[1]
        for _ in range(self.outer):
            # the trajectory from xr, then the one-cycle tangent linear models of all its cycles at once: one
            # autograd pass over the (n X) cycle starts (by autograd through the integrator)
            with torch.no_grad():
                traj = [xr]
                for _j in range(n):
                    traj.append(model.forecast(traj[-1]))
            starts = torch.stack(traj[:-1], 0)                                   # (n, X, D)
            _, Ms = tangent_linear(model, starts.reshape(-1, starts.shape[-1]))
            Ms = Ms.reshape(*starts.shape, starts.shape[-1])                    # (n, X, D, D)
            G = None
            innov, HG = [], []
            for j in range(n):
                G = Ms[j] if G is None else Ms[j] @ G                           # (X, D, D) = dM_j/dx0
                if self.observations == "newest" and j < n - 1:
                    continue
                x = traj[j + 1]
                innov.append((ys[:, j] - x @ H.T) @ LRi)                         # whitened: R^-1 = LRi LRi^T
                HG.append(LRi.T @ H @ G @ LB)                                   # in v: dx = LB v
            d = torch.stack(innov, 1)                                           # (X, L, p)
            S = torch.stack(HG, 1)                                              # (X, L, p, D)
            c = torch.linalg.solve_triangular(LB, (xr - xb).unsqueeze(-1), upper=False).squeeze(-1)
            v = xr.new_zeros(xr.shape).requires_grad_(True)

            def cost() -> Tensor:
                r = d - (S @ v[:, None, :, None]).squeeze(-1)
                return 0.5 * (v + c).pow(2).sum(-1) + 0.5 * r.pow(2).sum((-1, -2))

            self.optimization = Optimization([v], cost, optimizer=_lbfgs(self.inner), stop_rules=[],
                                             record_change=False)
            self.optimization.run(1)
            xr = xr + v.detach() @ LB.T
        return xr

    def _minimise(self, model, xb, ys, LB, Bi, LRi, Ri, x_init=None) -> Tensor:
        if self.incremental:
            return self._minimise_incremental(model, xb, ys, LB, LRi, x_init)
        return self._minimise_full(model, xb, ys, Bi, Ri, x_init)

    def _window_misfit(self, model, x0: Tensor, ys: Tensor, LRi: Tensor) -> tuple[Tensor, Tensor]:
        """The whitened observation misfit ``(X,)`` of the trajectory from ``x0`` over the window's used
        observations, and the trajectory's end ``(X, D)``."""
        H = model.H.to(x0)
        chi2 = x0.new_zeros(x0.shape[0])
        n = ys.shape[1]
        with torch.no_grad():
            x = x0
            for j in range(n):
                x = model.forecast(x)
                if self.observations == "all" or j == n - 1:
                    chi2 = chi2 + ((ys[:, j] - x @ H.T) @ LRi).pow(2).sum(-1)
        return chi2, x

    def _rescue(self, model, k: int, xb: Tensor, ys: Tensor, start: Tensor, xa: Tensor, chi2: Tensor,
                LRi: Tensor, Ri: Tensor) -> tuple[Tensor, Tensor]:
        """Re-solve the windows that fail the lost-window test quasi-statically (module notes)."""
        from .filters import chi2_quantile

        n, p = ys.shape[1], ys.shape[2]
        lost = (chi2 > chi2_quantile(1.0 - self.rescue_tail, n * p)).nonzero()[:, 0]
        if lost.numel() == 0:
            return start, xa
        self.rescue_tries += lost.numel()
        Br = self.B_climatology.to(xb) * self.rescue_xB
        LBr = torch.linalg.cholesky(Br)
        Bri = torch.cholesky_inverse(LBr)
        xbl, ysl = xb[lost], ys[lost]
        x = xbl
        for m in range(1, n + 1):       # J_1, ..., J_n, each minimised from the previous minimum
            x = self._minimise(model, xbl, ysl[:, :m], LBr, Bri, LRi, Ri, x_init=x)
        chi2_r, xa_r = self._window_misfit(model, x, ysl, LRi)
        better = chi2_r < chi2[lost]
        if bool(better.any()):
            idx = lost[better]
            start, xa = start.clone(), xa.clone()
            start[idx], xa[idx] = x[better], xa_r[better]
            self.rescued += [(k, int(i)) for i in idx.tolist()]
        return start, xa

    def run(self, hmm, truth: Tensor, obs: Tensor, *, model=None) -> AssimResult:
        """Cycle 4D-Var through ``obs`` ``(X, K, p)``; returns an :class:`~difflens.assim.AssimResult`.

        The first ``lag - 1`` cycles use the windows available so far (1, 2, ... observations).
        NaN or inf observations raise a ``ValueError`` naming the experiment and cycle.
        """
        from .filters import FilterDivergenceError, check_observations

        model = hmm if model is None else model
        obs = check_observations(model, obs)
        X, K = obs.shape[:2]
        if self.B.shape[0] != model.dim:
            raise ValueError(f"B is {list(self.B.shape)} but the model's state has dimension {model.dim}")
        Bi = torch.cholesky_inverse(torch.linalg.cholesky(self.B))
        Ri = torch.cholesky_inverse(torch.linalg.cholesky(model.R))
        LB = torch.linalg.cholesky(self.B)
        LRi = torch.linalg.cholesky(Ri)
        spread = float(model.physical_variance(self.B).mean().sqrt())
        self.rescued, self.rescue_tries = [], 0
        t0 = time.perf_counter()
        start = model.initial_mean().expand(X, -1).clone()   # state at the window start (truth index s)
        s = 0
        mf, ma = [], []
        for k in range(K):
            s_new = max(0, k + 1 - self.lag)                 # window: obs s_new..k, start at truth index s_new
            with torch.no_grad():
                while s < s_new:                             # move the background to the new start
                    start = model.forecast(start)
                    s += 1
                xf = start
                for _ in range(k + 1 - s):
                    xf = model.forecast(xf)
            mf.append(model.physical(xf))
            xb, ys = start, obs[:, s:k + 1]
            start = self._minimise(model, xb, ys, LB, Bi, LRi, Ri)
            chi2, xa = self._window_misfit(model, start, ys, LRi)
            if self.rescue_tail is not None:
                start, xa = self._rescue(model, k, xb, ys, start, xa, chi2, LRi, Ri)
            ma.append(model.physical(xa))
            if not bool(torch.isfinite(xa).all()):
                bad = (~torch.isfinite(xa).all(-1)).nonzero()[:, 0].tolist()
                raise FilterDivergenceError(f"4D-Var diverged at cycle {k} in experiment(s) {bad[:10]}", k, bad)
        sp = torch.full((X, K), spread, dtype=torch.float64)
        return AssimResult(torch.stack(mf, 1), torch.stack(ma, 1), sp, sp, torch.as_tensor(truth, dtype=torch.float64),
                           hmm.burn_in, time.perf_counter() - t0, self.name)
