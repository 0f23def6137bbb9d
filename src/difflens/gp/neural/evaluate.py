"""Held-out evaluation of neural processes against the exact-GP oracle, and autoregressive deployment.

:func:`evaluate_model` returns per-task mean log-likelihood per target point and the
fraction of targets inside the 1σ and 2σ predictive bands. :func:`autoregressive_log_likelihood`
deploys any conditional NP autoregressively: target ``i`` is predicted from the context
and targets ``< i``, which makes a joint (non-Gaussian in general) predictive whose
log-likelihood is compared with the GP's joint log-density;
:func:`autoregressive_sample` draws coherent joint samples the same way.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

from .oracle import gaussian_log_density
from .tasks import Tasks
from .validate import check_context

__all__ = ["autoregressive_log_likelihood", "autoregressive_sample", "evaluate_model"]


def evaluate_model(model: nn.Module, batches: Iterable[Tasks]) -> dict[str, Tensor]:
    """``{"ll": (T,), "in_1sigma": (T,), "in_2sigma": (T,)}`` over all tasks of ``batches`` (no grad).

    ``ll`` is each task's mean log-likelihood per target point (nats); the coverages are the
    fractions of that task's targets within ``mean ± k std``.
    """
    device = next(model.parameters()).device
    out: dict[str, list[Tensor]] = {"ll": [], "in_1sigma": [], "in_2sigma": []}
    with torch.no_grad():
        for t in batches:
            xc, yc, xt, yt = (v.to(device=device, dtype=torch.float32) for v in t)
            mean, std = model(xc, yc, xt)
            z = ((yt - mean) / std).abs()
            out["ll"].append(gaussian_log_density(yt, mean, std).mean((1, 2)).double().cpu())
            out["in_1sigma"].append((z <= 1).float().mean((1, 2)).double().cpu())
            out["in_2sigma"].append((z <= 2).float().mean((1, 2)).double().cpu())
    return {k: torch.cat(v) for k, v in out.items()}


def autoregressive_log_likelihood(model: nn.Module, x_context: Tensor, y_context: Tensor, x_target: Tensor,
                                  y_target: Tensor) -> Tensor:
    """``sum_i log p(y_i | context, y_<i) / M`` per task, ``(B,)`` (targets taken in the given order)."""
    check_context(x_context, y_context, x_target, y_target)
    total = x_target.new_zeros(x_target.shape[0])
    xc, yc = x_context, y_context
    with torch.no_grad():
        for i in range(x_target.shape[1]):
            mean, std = model(xc, yc, x_target[:, i:i + 1])
            total = total + gaussian_log_density(y_target[:, i:i + 1], mean, std).sum((1, 2))
            xc, yc = torch.cat([xc, x_target[:, i:i + 1]], 1), torch.cat([yc, y_target[:, i:i + 1]], 1)
    return total / x_target.shape[1]


def autoregressive_sample(model: nn.Module, x_context: Tensor, y_context: Tensor, x_target: Tensor,
                          generator: torch.Generator, n_samples: int = 1) -> Tensor:
    """Joint samples ``(n_samples, B, M, Dy)`` at the targets, drawn one target at a time.

    Each value is drawn from the model's Gaussian at that target given the context and the
    values drawn so far, so the samples are coherent curves (not independent noise).
    """
    check_context(x_context, y_context, x_target)
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    s, (b, m, _) = int(n_samples), x_target.shape
    rep = lambda t: t.repeat(s, 1, 1)
    xc, yc, xt = rep(x_context), rep(y_context), rep(x_target)
    draws = []
    with torch.no_grad():
        for i in range(m):
            mean, std = model(xc, yc, xt[:, i:i + 1])
            eps = torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=generator.device)
            y = mean + std * eps.to(mean.device)
            draws.append(y)
            xc, yc = torch.cat([xc, xt[:, i:i + 1]], 1), torch.cat([yc, y], 1)
    return torch.cat(draws, 1).reshape(s, b, m, -1)
