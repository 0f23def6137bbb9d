"""The iterative ensemble Kalman smoother (iEnKS, Sakov, Oliver & Bertino 2012; Bocquet & Sakov 2014).

The iEnKS keeps the ensemble at the *start* of a data-assimilation window of
``lag`` cycles. At each cycle it slides the window by one cycle and
assimilates the newest observation ``y`` by minimising, in the ensemble's
coordinates ``x = x0 + w A0`` (``A0`` the anomalies at the window start, ``w``
``(N,)``), the cost

    J(w) = (N - 1) / 2 |w|^2 + 1/2 |y - H M(x0 + w A0)|^2_{R^-1}

(``M`` the model over the window) with Gauss-Newton: each iteration re-runs
the ensemble ``x0 + (w + T) A0`` through the window, regresses the
observed anomalies on ``T`` ("de-conditioning" ``Y0 = T^-1 Y``) and takes the
closed-form step ``dw = (grad J)(Y0 Y0^T + (N - 1) I)^-1``; the anomalies'
transform is the square root ``T = sqrt(N - 1) (Y0 Y0^T + (N - 1) I)^(-1/2)``
(DAPPER's ``iEnKS('Sqrt')``). ``lag = 1`` is the iterative EnKF (iEnKF).
With ``mda=True`` the iterations are multiple data assimilation (the
observation error inflated by ``n_iter``, annealed over the iterations, Emerick
& Reynolds 2012) instead of Gauss-Newton.

Why a fixed loop and not the engine: every iteration is a closed-form
Gauss-Newton solve in the ``N``-dimensional ensemble space (the Hessian is
formed exactly from the ensemble, no step size, line search or optimiser
state); the loop runs a fixed ``n_iter`` times (DAPPER's ``nIter``, ``wtol=0``)
or stops when ``|dw|^2 < wtol N`` for every experiment. There is nothing for
:class:`~difflens.engine.Optimization` to own.

The analysis at the newest observation (what the statistics report) is the
last iterate's forecast ensemble moved by the linearised final increment
``(dw + T - T_old) A_f`` (DAPPER's), which for a linear model is exact; the
smoothed ensemble at the window start is inflated and rotated
(``infl``, ``rot``) before the window slides.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .filters import check_ensemble_size, check_inflation, ensemble_moments, post_process

__all__ = ["IEnKS"]


@dataclass
class _Window:
    start: Tensor                   # (X, N, D) the (smoothed) ensemble at the window's start
    length: int                     # cycles from the start to the newest observation
    forecast: Tensor | None = None  # (X, N, D) the start run through the window (first iterate)
    analysis: Tensor | None = None  # (X, N, D) the analysis ensemble at the newest observation


def _run(model, E: Tensor, n: int) -> Tensor:
    for _ in range(n):
        E = model.forecast(E)
    return E


class IEnKS:
    """The iterative ensemble Kalman smoother, square-root flavour, batched over experiments (see the module notes).

    Parameters
    ----------
    N : int
        Ensemble members (default 10).
    lag : int
        Cycles in the data-assimilation window (1: the iEnKF).
    n_iter : int
        Gauss-Newton (or MDA) iterations per cycle (DAPPER's ``nIter``, default 10).
    infl : float
        Multiplicative inflation of the smoothed anomalies (>= 1).
    rot : bool
        A random mean-preserving rotation of the anomalies.
    mda : bool
        Multiple data assimilation instead of Gauss-Newton.
    wtol : float
        Stop iterating once ``|dw|^2 < wtol N`` for every experiment (default 0: always
        ``n_iter`` iterations, as DAPPER).

    Notes
    -----
    The filter state is the window (the ensemble at its start, ``(X, N, D)``, and its length);
    ``assimilate`` leaves the smoothed ensemble at the window's start in ``state.start``.

    Examples
    --------
    >>> import torch
    >>> from difflens.assim import IEnKS, lorenz63_sakov2012, run_filter, simulate
    >>> hmm = lorenz63_sakov2012(20, burn_in=5)
    >>> data = simulate(hmm, 2, torch.Generator().manual_seed(0))
    >>> r = run_filter(IEnKS(10, lag=1, n_iter=3), hmm, data.truth, data.obs, torch.Generator().manual_seed(1))
    >>> r.rmse_a.shape
    torch.Size([2])
    """

    def __init__(self, N: int = 10, lag: int = 1, n_iter: int = 10, infl: float = 1.0, rot: bool = False,
                 mda: bool = False, wtol: float = 0.0) -> None:
        if int(lag) < 1 or int(n_iter) < 1:
            raise ValueError(f"lag and n_iter must be >= 1, got {lag} and {n_iter}")
        if not (math.isfinite(wtol) and wtol >= 0):
            raise ValueError(f"wtol must be finite and >= 0, got {wtol}")
        self.N, self.lag, self.n_iter = check_ensemble_size(N), int(lag), int(n_iter)
        self.infl, self.rot, self.mda, self.wtol = check_inflation(infl), bool(rot), bool(mda), float(wtol)
        self.name = f"iEnKS N={self.N} lag={self.lag}"
        self.iterations: list[int] = []   # iterations used at each assimilation

    def init(self, model, X: int, generator: torch.Generator) -> _Window:
        self.iterations = []
        return _Window(model.sample_initial((X, self.N), generator), 0)

    def forecast(self, model, s: _Window) -> _Window:
        start, length = s.start, s.length
        if length == self.lag:                       # the window is full: slide its start by one cycle
            start, length = model.forecast(start), length - 1
        length += 1
        return _Window(start, length, _run(model, start, length))

    def moments(self, model, s: _Window) -> tuple[Tensor, Tensor]:
        return ensemble_moments(model, s.forecast if s.analysis is None else s.analysis)

    def assimilate(self, model, s: _Window, y: Tensor, generator: torch.Generator) -> _Window:
        H, R = model.H.to(s.start), model.R.to(s.start)
        Rm12 = torch.linalg.inv(torch.linalg.cholesky(R))                  # whitening: Rm12 R Rm12^T = I
        X, N, D = s.start.shape
        N1 = N - 1
        eye = torch.eye(N, dtype=s.start.dtype)
        x0 = s.start.mean(-2, keepdim=True)
        A0 = s.start - x0
        w = s.start.new_zeros(X, 1, N)
        T, Tinv = eye.expand(X, N, N), eye.expand(X, N, N)
        za = N1 * (self.n_iter if self.mda else 1)
        E = s.forecast if s.forecast is not None else _run(model, s.start, s.length)
        Af = E - E.mean(-2, keepdim=True)
        for it in range(self.n_iter):
            if it > 0:
                E = _run(model, x0 + (w + T) @ A0, s.length)
            Eo = E @ H.T
            xo = Eo.mean(-2, keepdim=True)
            Y = (Eo - xo) @ Rm12.T                                            # (X, N, p) whitened anomalies
            dy = (y.unsqueeze(-2) - xo) @ Rm12.T                              # (X, 1, p)
            Y0 = Tinv @ Y                                                     # de-conditioned (T = I in MDA)
            lam, V = torch.linalg.eigh(Y0 @ Y0.transpose(-1, -2) + za * eye)

            def cow(expo: float) -> Tensor:
                return (V * lam.pow(-expo).unsqueeze(-2)) @ V.transpose(-1, -2)

            T_old = T
            if self.mda:
                C1 = cow(1.0) @ T
                dw = dy @ Y.transpose(-1, -2) @ C1
                T = cow(0.5) * math.sqrt(za) @ T
            else:
                grad = dy @ Y0.transpose(-1, -2) - za * w                       # (X, 1, N)
                dw = grad @ cow(1.0)
                T, Tinv = cow(0.5) * math.sqrt(N1), cow(-0.5) / math.sqrt(N1)
            w = w + dw
            if self.wtol > 0 and bool((dw.pow(2).sum((-1, -2)) < self.wtol * N).all()):
                break
        self.iterations.append(it + 1)
        analysis = E + (dw + T - T_old) @ Af
        start = post_process(x0 + (w + T) @ A0, self.infl, self.rot, generator)
        return _Window(start, s.length, s.forecast, analysis)
