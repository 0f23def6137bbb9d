"""Figures for :mod:`difflens.gp`; every function returns a matplotlib figure.

Inputs are arrays or tensors: test inputs ``x`` (M,), posterior ``mean`` and
``std`` (M,), training points ``X`` (N,) and ``y`` (N,), draws ``(M, S)``.
A "panel" is a dict with keys ``mean``, ``std`` and optionally ``X``, ``y``,
``samples`` and ``title``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["draw_posterior", "fitted_posterior", "kernel_profiles", "posterior_grid", "posterior_panels"]

_COLORS = ["#023eff", "#ff7c00", "#1ac938", "#e8000b", "#8b2be2", "#9f4800", "#f14cc1", "#a3a3a3"]


def _np(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=float)


def draw_posterior(ax, x, mean, std, X=None, y=None, samples=None, color: str = _COLORS[0],
                   bands: Sequence[int] = (1, 2, 3), title: str = "", ylim: tuple[float, float] | None = None):
    """Draw ``mean`` with ``±k·std`` bands for ``k`` in ``bands``, optional draws and data, on ``ax``."""
    x, mean, std = _np(x).reshape(-1), _np(mean).reshape(-1), _np(std).reshape(-1)
    for k in sorted(bands, reverse=True):
        ax.fill_between(x, mean - k * std, mean + k * std, color=color, alpha=0.18, lw=0,
                        label=f"±{k}σ" if k == max(bands) else None)
    if samples is not None:
        s = _np(samples).reshape(len(x), -1)
        ax.plot(x, s, color=color, lw=0.7, alpha=0.6)
    ax.plot(x, mean, color=color, lw=2, label="mean")
    if X is not None and len(_np(X)):
        ax.scatter(_np(X).reshape(-1), _np(y).reshape(-1), color="k", s=25, zorder=10, label="data")
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_xlim(x.min(), x.max())
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def posterior_panels(x, panels: Sequence[Mapping[str, Any]], ylim: tuple[float, float] = (-6, 6),
                     ncols: int = 1, figsize: tuple[float, float] | None = None):
    """One axis per panel (the seed's six panels adding one point at a time), stacked in ``ncols`` columns."""
    import matplotlib.pyplot as plt

    n = len(panels)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=figsize or (7 * ncols, 1.5 * nrows + 0.6), squeeze=False,
                             sharex=True)
    for i, (ax, p) in enumerate(zip(axes.flat, panels)):
        draw_posterior(ax, x, p["mean"], p["std"], p.get("X"), p.get("y"), p.get("samples"),
                       color=_COLORS[i % len(_COLORS)], title=p.get("title", ""), ylim=ylim)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    axes.flat[0].legend(loc="upper right", fontsize=7, ncol=3)
    fig.tight_layout()
    return fig


def posterior_grid(x, rows: Mapping[str, Sequence[Mapping[str, Any]]], ylim: tuple[float, float] = (-4, 4)):
    """A grid: one row per varied hyperparameter (row label), one column per value."""
    import matplotlib.pyplot as plt

    names = list(rows)
    ncols = max(len(v) for v in rows.values())
    fig, axes = plt.subplots(len(names), ncols, figsize=(3.6 * ncols, 2.4 * len(names)), squeeze=False,
                             sharex=True, sharey=True)
    for r, name in enumerate(names):
        for c in range(ncols):
            ax = axes[r, c]
            if c >= len(rows[name]):
                ax.set_visible(False)
                continue
            p = rows[name][c]
            draw_posterior(ax, x, p["mean"], p["std"], p.get("X"), p.get("y"), p.get("samples"),
                           color=_COLORS[r % len(_COLORS)], title=p.get("title", ""), ylim=ylim)
        axes[r, 0].set_ylabel(name)
    fig.tight_layout()
    return fig


def kernel_profiles(distance, curves: Mapping[str, Any], title: str = "k(0, d)"):
    """Kernel values against distance ``d`` for several settings (``{label: (M,) values}``)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    d = _np(distance).reshape(-1)
    for i, (label, values) in enumerate(curves.items()):
        ax.plot(d, _np(values).reshape(-1), color=_COLORS[i % len(_COLORS)], lw=2, label=label)
    ax.set_xlabel("distance d")
    ax.set_ylabel("covariance")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def fitted_posterior(x, mean, std, X, y, hyperparameters: Mapping[str, Any], lml_trace=None, truth=None,
                     title: str = "fitted hyperparameters"):
    """Posterior with fitted hyperparameters (annotated), the truth if known, and the LML per iteration."""
    import matplotlib.pyplot as plt

    ncols = 2 if lml_trace is not None else 1
    fig, axes = plt.subplots(1, ncols, figsize=(6.5 * ncols - 1.5 * (ncols - 1), 3.6), squeeze=False,
                             gridspec_kw={"width_ratios": [2, 1][:ncols]})
    ax = axes[0, 0]
    draw_posterior(ax, x, mean, std, X, y, title=title)
    if truth is not None:
        ax.plot(_np(x).reshape(-1), _np(truth).reshape(-1), "k--", lw=1, label="truth")
    text = "\n".join(f"{k} = {_fmt(v)}" for k, v in hyperparameters.items())
    ax.text(0.02, 0.03, text, transform=ax.transAxes, fontsize=8, va="bottom",
            bbox={"boxstyle": "round", "fc": "white", "alpha": 0.8})
    ax.legend(loc="upper right", fontsize=7)
    if lml_trace is not None:
        ax2 = axes[0, 1]
        trace = _np(lml_trace).reshape(-1)
        ax2.plot(np.arange(len(trace)), trace, "o-", ms=3)
        ax2.set_xlabel("L-BFGS iteration")
        ax2.set_ylabel("log marginal likelihood")
        ax2.set_title("fit", fontsize=9)
    fig.tight_layout()
    return fig


def _fmt(v: Any) -> str:
    v = _np(v).reshape(-1)
    return f"{v[0]:.3g}" if v.size == 1 else "[" + ", ".join(f"{a:.3g}" for a in v) + "]"
