"""Forecast skill and attractor statistics.

* :func:`nrmse` and :func:`valid_prediction_time` (Vlachas et al. 2020: the
  first lead time at which the error, normalised per variable by the
  attractor's standard deviation, exceeds a threshold, 0.5 by default).
* :func:`error_growth`: error against lead time over many forecasts.
* Attractor statistics of long free runs: marginal histograms, the 1-D
  Wasserstein distance per variable, the return map of successive z maxima, and
  :func:`attractor_report`, which says whether a free run stays on the attractor.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = [
    "attractor_report",
    "error_growth",
    "local_maxima",
    "marginal_histograms",
    "nrmse",
    "return_map",
    "return_map_distance",
    "valid_prediction_time",
    "wasserstein_1d",
]


def _check_pair(pred: Tensor, truth: Tensor) -> None:
    if pred.shape != truth.shape:
        raise ValueError(f"prediction and truth must have the same shape, got {list(pred.shape)} and "
                         f"{list(truth.shape)}")
    if pred.ndim < 2:
        raise ValueError(f"expected (..., T, d) forecasts, got shape {list(pred.shape)}")


def nrmse(pred: Tensor, truth: Tensor, std: Tensor) -> Tensor:
    """``sqrt(mean_i ((pred_i - truth_i) / std_i)^2)`` over the last (variable) dim: shape ``pred.shape[:-1]``."""
    _check_pair(pred, truth)
    std = torch.as_tensor(std, dtype=pred.dtype, device=pred.device)
    if std.shape != (pred.shape[-1],) or not bool((std > 0).all()):
        raise ValueError(f"std must be ({pred.shape[-1]},) and positive, got {std}")
    e = ((pred - truth) / std).square().mean(-1).sqrt()
    return torch.where(torch.isfinite(e), e, torch.full_like(e, math.inf))


def valid_prediction_time(pred: Tensor, truth: Tensor, std: Tensor, dt: float, lyapunov_exponent: float = 0.9056,
                          threshold: float = 0.5) -> Tensor:
    """VPT in Lyapunov times of forecasts ``pred`` ``(B, T, d)`` against ``truth`` (same shape).

    ``pred[:, k]`` is the forecast at lead time ``(k + 1) * dt`` (the first
    predicted state after the context). VPT is the largest lead time ``t`` such
    that ``nrmse <= threshold`` at every lead time up to ``t``, times
    ``lyapunov_exponent`` (so 1.0 = one Lyapunov time). A forecast that never
    crosses the threshold gets the full horizon ``T * dt * lambda`` (a lower
    bound: make the horizon long enough). NaN/inf errors count as crossings.
    Returns ``(B,)``.
    """
    if not dt > 0 or not lyapunov_exponent > 0:
        raise ValueError(f"need dt > 0 and lyapunov_exponent > 0, got {dt}, {lyapunov_exponent}")
    e = nrmse(pred, truth, std)
    bad = e > threshold
    T = e.shape[-1]
    first = torch.where(bad.any(-1), bad.float().argmax(-1), torch.full(e.shape[:-1], T, device=e.device))
    return first.to(torch.float64) * dt * lyapunov_exponent


def error_growth(pred: Tensor, truth: Tensor, std: Tensor) -> dict[str, Tensor]:
    """NRMSE against lead time over forecasts ``(B, T, d)``: ``mean``, ``median``, ``q25``, ``q75`` ``(T,)``."""
    e = nrmse(pred, truth, std)
    e = e.reshape(-1, e.shape[-1]).to(torch.float64)
    q = torch.quantile(torch.nan_to_num(e, posinf=1e30), torch.tensor([0.25, 0.5, 0.75], dtype=e.dtype), dim=0)
    return {"mean": e.mean(0), "median": q[1], "q25": q[0], "q75": q[2]}


def wasserstein_1d(a: Tensor, b: Tensor, n_quantiles: int = 1000) -> Tensor:
    """W1 distance between the empirical distributions of samples ``a`` ``(n,)`` and ``b`` ``(m,)``.

    ``W1 = integral_0^1 |F_a^-1(q) - F_b^-1(q)| dq`` on ``n_quantiles`` midpoints.
    """
    a, b = a.reshape(-1).to(torch.float64), b.reshape(-1).to(torch.float64)
    if a.numel() == 0 or b.numel() == 0:
        raise ValueError("both samples must be non-empty")
    q = (torch.arange(n_quantiles, dtype=torch.float64) + 0.5) / n_quantiles
    return (torch.quantile(a, q) - torch.quantile(b, q)).abs().mean()


def marginal_histograms(x: Tensor, edges: Tensor) -> Tensor:
    """Density histograms ``(d, n_bins)`` of samples ``x`` ``(..., d)`` on ``edges`` ``(d, n_bins + 1)``."""
    flat = x.reshape(-1, x.shape[-1]).to(torch.float64).cpu()
    out = []
    for i in range(flat.shape[-1]):
        e = edges[i].to(torch.float64).cpu()
        h = torch.histogram(flat[:, i], bins=e, density=True).hist
        out.append(h)
    return torch.stack(out)


def local_maxima(z: Tensor) -> Tensor:
    """Values of the strict local maxima of a series ``(T,)``, refined by a parabola through 3 samples."""
    z = z.reshape(-1).to(torch.float64)
    if z.numel() < 3:
        return z.new_zeros(0)
    left, mid, right = z[:-2], z[1:-1], z[2:]
    idx = ((mid > left) & (mid >= right)).nonzero().squeeze(-1)
    a, b, c = left[idx], mid[idx], right[idx]
    denom = a - 2 * b + c
    safe = torch.where(denom.abs() > 0, denom, torch.ones_like(denom))
    return torch.where(denom.abs() > 0, b - (a - c).square() / (8 * safe), b)


def return_map(z: Tensor) -> Tensor:
    """Pairs ``(M_n, M_{n+1})`` ``(K, 2)`` of successive maxima of ``z`` (Lorenz's 1963 return map)."""
    m = local_maxima(z)
    return torch.stack([m[:-1], m[1:]], -1) if m.numel() >= 2 else m.new_zeros(0, 2)


def return_map_distance(points: Tensor, reference: Tensor) -> float:
    """Mean distance from each point ``(K, 2)`` to the nearest reference point ``(R, 2)`` (NaN if none)."""
    if points.numel() == 0 or reference.numel() == 0:
        return math.nan
    return float(torch.cdist(points.to(torch.float64), reference.to(torch.float64)).min(1).values.mean())


def attractor_report(run: Tensor, reference: Tensor, std: Tensor, z_index: int = 2,
                     w1_tolerance: float = 0.35) -> dict[str, float | bool]:
    """Does a free run ``(T, d)`` stay on the attractor sampled by ``reference`` ``(N, d)``?

    Checks: finite and bounded (within 1.5x the reference's range around its
    centre); marginal W1 distances below ``w1_tolerance`` standard deviations
    (loose on purpose: two exact Lorenz-63 runs of 100 time units differ by up
    to ~0.2 in x and y, as lobe occupancy fluctuates);
    no collapse onto a fixed point or cycle: the second half keeps at least
    half the reference's per-variable spread and its return-map maxima are not
    a few repeated values (distinct maxima at 1e-3 resolution >= 20) - on
    Lorenz-63 the sign of x also keeps switching lobes.
    """
    run = run.detach().to(torch.float64).cpu()
    ref = reference.detach().reshape(-1, reference.shape[-1]).to(torch.float64).cpu()
    std = torch.as_tensor(std, dtype=torch.float64).cpu()
    out: dict[str, float | bool] = {"finite": bool(torch.isfinite(run).all())}
    if not out["finite"]:
        out.update(on_attractor=False, bounded=False)
        return out
    lo, hi = ref.min(0).values, ref.max(0).values
    c, r = (lo + hi) / 2, (hi - lo) / 2
    out["bounded"] = bool(((run - c).abs() <= 1.5 * r).all())
    w1 = [float(wasserstein_1d(run[:, i], ref[:, i]) / std[i]) for i in range(run.shape[-1])]
    out["w1_over_std_max"] = max(w1)
    for i, v in enumerate(w1):
        out[f"w1_over_std_{i}"] = v
    half = run[run.shape[0] // 2:]
    spread = float((half.std(0) / ref.std(0)).min())
    out["spread_ratio_min"] = spread
    maxima = local_maxima(half[:, z_index])
    out["n_maxima_second_half"] = int(maxima.numel())
    out["distinct_maxima_second_half"] = int(torch.unique(torch.round(maxima * 1e3)).numel())
    out["lobe_switches"] = int(((half[1:, 0] > 0) != (half[:-1, 0] > 0)).sum())
    out["on_attractor"] = bool(out["bounded"] and max(w1) < w1_tolerance and spread > 0.5
                               and out["distinct_maxima_second_half"] >= 20)
    return out
