"""Figures for :mod:`difflens.assim`; each function returns a matplotlib figure.

Inputs are tensors or arrays in physical units: truths ``(K + 1, d)``,
analyses and observations ``(K, d)``, series ``(K,)``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

__all__ = ["analysis_through_time", "rmse_against_cycles", "ssgp_against_exact"]


def _np(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=float)


def analysis_through_time(truth, obs, mean, spread, dt_obs: float, label: str = "analysis",
                          names=("x", "y", "z"), last: int | None = 120):
    """Truth, observations and the analysis mean with +-2 spread bands, one panel per variable
    (the last ``last`` cycles); ``spread`` ``(K,)`` or ``(K, d)``."""
    import matplotlib.pyplot as plt

    truth, obs, mean, spread = _np(truth)[1:], _np(obs), _np(mean), _np(spread)
    K = obs.shape[0]
    sl = slice(max(0, K - last), K) if last else slice(0, K)
    t = (np.arange(K) + 1)[sl] * dt_obs
    d = min(len(names), truth.shape[-1])
    fig, axes = plt.subplots(d, 1, figsize=(8, 1.9 * d + 0.5), sharex=True, squeeze=False)
    for i, ax in enumerate(axes[:, 0]):
        s = spread[sl] if spread.ndim == 1 else spread[sl, i]
        ax.plot(t, truth[sl, i], "k-", lw=1.2, label="truth")
        ax.plot(t, obs[sl, i], ".", color="tab:red", ms=3, label="observations")
        ax.plot(t, mean[sl, i], "-", color="tab:blue", lw=1, label=label)
        ax.fill_between(t, mean[sl, i] - 2 * s, mean[sl, i] + 2 * s, color="tab:blue", alpha=0.2, lw=0)
        ax.set_ylabel(names[i])
    axes[0, 0].legend(loc="upper right", fontsize=8, ncol=3)
    axes[-1, 0].set_xlabel("model time")
    fig.tight_layout()
    return fig


def rmse_against_cycles(series: Mapping[str, object], burn_in: int, smooth: int = 20):
    """Analysis RMSE ``(K,)`` per method (a running mean over ``smooth`` cycles), the burn-in shaded."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.5))
    for name, s in series.items():
        s = _np(s)
        k = max(1, min(smooth, len(s)))
        ax.plot(np.arange(len(s) - k + 1) + k, np.convolve(s, np.ones(k) / k, mode="valid"), label=name, lw=1)
    ax.axvspan(0, burn_in, color="0.9", label="burn-in")
    ax.set_yscale("log")
    ax.set_xlabel("cycle")
    ax.set_ylabel(f"analysis RMSE (running mean of {smooth})")
    ax.legend(fontsize=8, ncol=3)
    fig.tight_layout()
    return fig


def ssgp_against_exact(t, y, mean_ss, var_ss, mean_exact, var_exact):
    """The state-space GP's posterior (mean +-2 sd) over the exact GP's, and their difference."""
    import matplotlib.pyplot as plt

    t, y = _np(t), _np(y)
    ms, vs, me, ve = _np(mean_ss), _np(var_ss), _np(mean_exact), _np(var_exact)
    fig, (a, b) = plt.subplots(2, 1, figsize=(8, 4.5), sharex=True, gridspec_kw={"height_ratios": (3, 1)})
    a.plot(t, y, ".", color="0.5", ms=3, label="observations")
    a.plot(t, me, "k-", lw=2.5, alpha=0.4, label="exact GP")
    a.plot(t, ms, "-", color="tab:blue", lw=1, label="Kalman + RTS")
    a.fill_between(t, ms - 2 * np.sqrt(vs), ms + 2 * np.sqrt(vs), color="tab:blue", alpha=0.2, lw=0)
    a.legend(fontsize=8)
    b.semilogy(t, np.abs(ms - me) + 1e-18, label="|mean difference|")
    b.semilogy(t, np.abs(vs - ve) + 1e-18, label="|variance difference|")
    b.set_xlabel("t")
    b.legend(fontsize=8)
    fig.tight_layout()
    return fig
