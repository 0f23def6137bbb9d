"""The Kalman filter and the Rauch-Tung-Striebel smoother for linear-Gaussian state-space models, batched.

Model (filterpy's conventions: each step predicts, then updates)::

    x_t = F_t x_{t-1} + w_t,  w_t ~ N(0, Q_t);    y_t = H x_t + v_t,  v_t ~ N(0, R)

for ``t = 0..T-1`` from ``x_{-1} ~ N(x0, P0)``. ``F`` and ``Q`` are ``(d, d)``,
or per step ``(T, d, d)``, or per batch item and step ``(B, T, d, d)``.
Observations ``y`` are ``(B, T, p)``; a step whose observation contains NaN is
not updated (prediction only) and a ``RuntimeWarning`` says how many were
skipped. The covariance update is Joseph's form (as filterpy's), which keeps
``P`` symmetric positive semi-definite.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch
from torch import Tensor

from .hmm import check_spd

__all__ = ["KalmanResult", "kalman_filter", "rts_smoother"]


@dataclass
class KalmanResult:
    """Filter output: ``mean``/``cov`` filtered ``(B, T, d)``/``(B, T, d, d)``, ``mean_pred``/``cov_pred``
    the one-step predictions, ``log_likelihood`` ``(B,)`` (sum of the innovations' log densities),
    ``F``/``Q`` as expanded per step ``(B, T, d, d)`` (for the smoother)."""

    mean: Tensor
    cov: Tensor
    mean_pred: Tensor
    cov_pred: Tensor
    log_likelihood: Tensor
    F: Tensor
    Q: Tensor


def _per_step(M: Tensor, B: int, T: int, d: int, name: str) -> Tensor:
    M = torch.as_tensor(M, dtype=torch.float64)
    if M.ndim == 2:
        M = M.expand(B, T, d, d)
    elif M.ndim == 3:
        M = M.expand(B, T, d, d) if M.shape[0] == T else None
    elif M.ndim == 4:
        M = M.expand(B, T, d, d) if M.shape[1:] == (T, d, d) and M.shape[0] in (1, B) else None
    else:
        M = None
    if M is None or M.shape[-2:] != (d, d):
        raise ValueError(f"{name} must be ({d}, {d}), ({T}, {d}, {d}) or ({B}, {T}, {d}, {d})")
    return M


def kalman_filter(y: Tensor, F: Tensor, Q: Tensor, H: Tensor, R: Tensor, x0: Tensor, P0: Tensor) -> KalmanResult:
    """Run the Kalman filter on observations ``y`` ``(B, T, p)`` (or ``(T, p)``: B = 1).

    Parameters
    ----------
    y: observations; a NaN anywhere in ``y[b, t]`` skips that update (with a warning).
    F, Q: transition and process-noise covariance (see the module notes for shapes).
    H: ``(p, d)`` observation operator. R: ``(p, p)`` SPD noise covariance (scalar: ``R I``).
    x0, P0: ``(d,)`` or ``(B, d)`` prior mean, ``(d, d)`` SPD prior covariance.

    Raises
    ------
    ValueError
        Naming a wrong shape or a covariance that is not symmetric positive definite.

    Examples
    --------
    A random walk (process variance q = 0.1) observed with unit noise: the filtered variance
    settles at the scalar Riccati solution ``p r / (p + r)``, ``p = (q + sqrt(q^2 + 4 q r)) / 2``.

    >>> import torch
    >>> from difflens.assim import kalman_filter
    >>> eye = torch.eye(1, dtype=torch.float64)
    >>> y = torch.zeros(50, 1, dtype=torch.float64)
    >>> res = kalman_filter(y, F=eye, Q=0.1 * eye, H=eye, R=eye, x0=torch.zeros(1), P0=eye)
    >>> res.mean.shape, res.cov.shape
    (torch.Size([1, 50, 1]), torch.Size([1, 50, 1, 1]))
    >>> p = (0.1 + (0.01 + 0.4) ** 0.5) / 2
    >>> round(float(res.cov[0, -1, 0, 0]), 6) == round(p / (p + 1), 6)
    True
    """
    y = torch.as_tensor(y, dtype=torch.float64)
    if y.ndim == 2:
        y = y.unsqueeze(0)
    if y.ndim != 3:
        raise ValueError(f"y must be (B, T, p) or (T, p), got {list(y.shape)}")
    B, T, p = y.shape
    H = torch.as_tensor(H, dtype=torch.float64)
    if H.ndim != 2 or H.shape[0] != p:
        raise ValueError(f"H must have shape ({p}, d) for observations of size {p}, got {list(H.shape)}")
    d = H.shape[1]
    R = check_spd(R, "R", p)
    P0 = check_spd(P0, "P0", d)
    x0 = torch.as_tensor(x0, dtype=torch.float64)
    if x0.shape[-1] != d:
        raise ValueError(f"x0 must have shape (d,) or (B, d) with d = {d}, got {list(x0.shape)}")
    F = _per_step(F, B, T, d, "F")
    Q = _per_step(Q, B, T, d, "Q")
    x = x0.expand(B, d).clone()
    P = P0.expand(B, d, d).clone()
    eye = torch.eye(d, dtype=torch.float64)
    missing = ~torch.isfinite(y).all(-1)  # (B, T)
    n_missing = int(missing.sum())
    if n_missing:
        warnings.warn(f"kalman_filter: {n_missing} observation(s) with NaN or inf skipped (prediction only)",
                      RuntimeWarning, stacklevel=2)
    y = torch.where(missing.unsqueeze(-1), torch.zeros_like(y), y)
    means, covs, means_p, covs_p = [], [], [], []
    ll = torch.zeros(B, dtype=torch.float64)
    HT = H.T
    for t in range(T):
        Ft = F[:, t]
        x = (Ft @ x.unsqueeze(-1)).squeeze(-1)
        P = Ft @ P @ Ft.transpose(-1, -2) + Q[:, t]
        means_p.append(x)
        covs_p.append(P)
        S = H @ P @ HT + R
        L = torch.linalg.cholesky(S)
        innov = y[:, t] - x @ HT
        K = torch.cholesky_solve(H @ P, L).transpose(-1, -2)  # P H^T S^-1, S symmetric
        keep = (~missing[:, t]).to(x.dtype)
        xu = x + (K @ innov.unsqueeze(-1)).squeeze(-1)
        IKH = eye - K @ H
        Pu = IKH @ P @ IKH.transpose(-1, -2) + K @ R @ K.transpose(-1, -2)
        z = torch.linalg.solve_triangular(L, innov.unsqueeze(-1), upper=False).squeeze(-1)
        ll = ll + keep * (-0.5 * (z.pow(2).sum(-1) + p * math.log(2 * math.pi))
                          - torch.log(torch.diagonal(L, dim1=-2, dim2=-1)).sum(-1))
        x = torch.where(keep.bool()[:, None], xu, x)
        P = torch.where(keep.bool()[:, None, None], Pu, P)
        means.append(x)
        covs.append(P)
    return KalmanResult(torch.stack(means, 1), torch.stack(covs, 1), torch.stack(means_p, 1),
                        torch.stack(covs_p, 1), ll, F, Q)


def rts_smoother(result: KalmanResult) -> tuple[Tensor, Tensor]:
    """The Rauch-Tung-Striebel smoother over a :func:`kalman_filter` result: means ``(B, T, d)``, covs ``(B, T, d, d)``.

    filterpy's ``rts_smoother`` recursion: ``G_k = P_k F_{k+1}^T (P^-_{k+1})^{-1}``,
    ``x^s_k = x_k + G_k (x^s_{k+1} - x^-_{k+1})``, ``P^s_k = P_k + G_k (P^s_{k+1} - P^-_{k+1}) G_k^T``.
    """
    x, P = result.mean.clone(), result.cov.clone()
    T = x.shape[1]
    for k in range(T - 2, -1, -1):
        Pp = result.cov_pred[:, k + 1]
        Fk = result.F[:, k + 1]
        G = torch.linalg.solve(Pp, Fk @ P[:, k]).transpose(-1, -2)  # P F^T Pp^-1 (Pp symmetric)
        x[:, k] = x[:, k] + (G @ (x[:, k + 1] - result.mean_pred[:, k + 1]).unsqueeze(-1)).squeeze(-1)
        P[:, k] = P[:, k] + G @ (P[:, k + 1] - Pp) @ G.transpose(-1, -2)
    return x, P
