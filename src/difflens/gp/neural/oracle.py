"""The exact-GP oracle: the best achievable prediction for tasks drawn from a known GP prior.

With the generating kernel and noise, the GP posterior is the Bayes-optimal predictive.
For models that predict each target independently the bound on the expected
log-likelihood is the sum of the GP's per-target marginal log-densities
(:func:`oracle_log_likelihood` with ``joint=False``); for joint (e.g.
autoregressive) predictions it is the GP's joint log-density (``joint=True``).
Computed in float64, one batched Cholesky of the ``(B, N, N)`` context covariances.
An empty context gives the prior.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..kernels import Kernel
from ..linalg import cholesky_jittered
from .validate import check_context

__all__ = ["gaussian_log_density", "oracle_log_likelihood", "oracle_predict"]


def gaussian_log_density(y: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """Elementwise ``log N(y; mean, std^2)`` (same shapes)."""
    return -0.5 * ((y - mean) / std).square() - std.log() - 0.5 * math.log(2 * math.pi)


def _posterior(kernel: Kernel, noise_std: float, xc: Tensor, yc: Tensor, xt: Tensor, full: bool):
    xc, yc, xt = (t.to(torch.float64) for t in (xc, yc, xt))
    kernel = kernel.to(torch.float64)
    means, covs = [], []
    noise = float(noise_std) ** 2
    with torch.no_grad():
        for b in range(xt.shape[0]):
            if xc.shape[1] == 0:
                mean = xt.new_zeros(xt.shape[1])
                cov = kernel(xt[b]) if full else kernel.diag(xt[b])
            else:
                L, _ = cholesky_jittered(kernel(xc[b]), what="context covariance", warn=False, shift=noise)
                ks = kernel(xc[b], xt[b])  # (N, M)
                mean = ks.mT @ torch.cholesky_solve(yc[b], L)[:, 0]
                v = torch.linalg.solve_triangular(L, ks, upper=False)
                cov = kernel(xt[b]) - v.mT @ v if full else kernel.diag(xt[b]) - v.square().sum(0)
            means.append(mean)
            covs.append(cov)
    return torch.stack(means), torch.stack(covs)


def oracle_predict(kernel: Kernel, noise_std: float, x_context: Tensor, y_context: Tensor,
                   x_target: Tensor) -> tuple[Tensor, Tensor]:
    """Predictive ``(mean, std)`` of new observations at the targets, each ``(B, M, 1)`` float64.

    ``std`` includes the observation noise: ``sqrt(posterior variance + noise_std^2)``.
    """
    check_context(x_context, y_context, x_target)
    mean, var = _posterior(kernel, noise_std, x_context, y_context, x_target, full=False)
    std = (var.clamp_min(0.0) + float(noise_std) ** 2).sqrt()
    return mean[..., None], std[..., None]


def oracle_log_likelihood(kernel: Kernel, noise_std: float, x_context: Tensor, y_context: Tensor,
                          x_target: Tensor, y_target: Tensor, *, joint: bool = False) -> Tensor:
    """Mean log-likelihood per target point of the exact GP, shape ``(B,)`` (nats).

    ``joint=False``: ``mean_i log N(y_i; mu_i, s_i^2)`` with the marginal predictive of each
    target (the bound for models predicting targets independently). ``joint=True``:
    ``log N(y_T; mu_T, Sigma_T + noise^2 I) / M`` (the bound for joint predictions).
    """
    check_context(x_context, y_context, x_target, y_target)
    yt = y_target.to(torch.float64)[..., 0]
    if not joint:
        mean, std = oracle_predict(kernel, noise_std, x_context, y_context, x_target)
        return gaussian_log_density(yt, mean[..., 0], std[..., 0]).mean(-1)
    mean, cov = _posterior(kernel, noise_std, x_context, y_context, x_target, full=True)
    m = yt.shape[-1]
    out = []
    for b in range(yt.shape[0]):
        L, _ = cholesky_jittered(cov[b], what="target covariance", warn=False, shift=float(noise_std) ** 2)
        z = torch.linalg.solve_triangular(L, (yt[b] - mean[b])[:, None], upper=False)[:, 0]
        out.append(-0.5 * z.square().sum() - L.diagonal().log().sum() - 0.5 * m * math.log(2 * math.pi))
    return torch.stack(out) / m
