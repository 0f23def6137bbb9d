"""Figures for :mod:`difflens.gp.neural`; every function returns a matplotlib figure.

Arrays or tensors in: 1-D test inputs ``x`` (M,), means and stds (M,), contexts ``(N,)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .gp import draw_posterior

__all__ = ["calibration", "cost_crossover", "digit_completions", "gap_vs_training", "model_predictions"]

_COLORS = ["#023eff", "#ff7c00", "#1ac938", "#e8000b", "#8b2be2", "#9f4800"]


def _np(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=float)


def model_predictions(x, xc, yc, predictions: Mapping[str, tuple[Any, Any]], truth=None, title: str = ""):
    """One panel per model (``{name: (mean, std)}``) with ±1, 2σ bands, the context and the GP oracle dashed.

    The first entry of ``predictions`` is drawn dashed on every panel as the reference.
    """
    import matplotlib.pyplot as plt

    names = list(predictions)
    ref_mean, ref_std = (_np(v) for v in predictions[names[0]])
    fig, axes = plt.subplots(len(names), 1, figsize=(7, 1.8 * len(names) + 0.5), sharex=True, squeeze=False)
    for i, (ax, name) in enumerate(zip(axes[:, 0], names)):
        mean, std = predictions[name]
        draw_posterior(ax, x, mean, std, xc, yc, color=_COLORS[i % len(_COLORS)], bands=(1, 2), title=name,
                       ylim=(-3.5, 3.5))
        if i:
            ax.plot(_np(x), ref_mean, "k--", lw=1, label=names[0])
            ax.plot(_np(x), ref_mean + 2 * ref_std, "k:", lw=0.8)
            ax.plot(_np(x), ref_mean - 2 * ref_std, "k:", lw=0.8)
        if truth is not None:
            ax.plot(_np(x), _np(truth), color="0.5", lw=0.8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def calibration(levels: Sequence[float], coverage: Mapping[str, Sequence[float]], title: str = ""):
    """Empirical coverage of central predictive intervals against their nominal level, one line per model."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.2, 4))
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="ideal")
    for i, (name, cov) in enumerate(coverage.items()):
        ax.plot(levels, cov, "o-", ms=3, color=_COLORS[i % len(_COLORS)], label=name)
    ax.set_xlabel("nominal coverage of the central interval")
    ax.set_ylabel("fraction of held-out targets inside")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def gap_vs_training(curves: Mapping[str, tuple[Sequence[float], Sequence[float]]], xlabel: str = "training step"):
    """Gap to the oracle (nats per target point) against training progress, ``{name: (steps, gaps)}``."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for i, (name, (steps, gaps)) in enumerate(curves.items()):
        ax.plot(steps, gaps, "o-", ms=3, color=_COLORS[i % len(_COLORS)], label=name)
    ax.axhline(0.1, color="k", ls=":", lw=1, label="target 0.1 nats")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("oracle LL - model LL (nats / point)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def cost_crossover(sizes: Sequence[int], ms: Mapping[str, Sequence[float]]):
    """Prediction wall time (ms) against the number of context points, log-log, one line per method."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.6))
    for i, (name, t) in enumerate(ms.items()):
        ax.loglog(sizes, t, "o-", ms=4, color=_COLORS[i % len(_COLORS)], label=name)
    ax.set_xlabel("context points")
    ax.set_ylabel("prediction time (ms)")
    ax.legend(fontsize=7)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    return fig


def digit_completions(images, rows: Mapping[str, Sequence[Any]], columns: Sequence[str]):
    """A grid of images: one row per entry of ``rows`` (``{label: [image (H, W), ...]}``), titled ``columns``.

    NaN pixels (those outside a context) are drawn in blue.
    """
    import matplotlib
    import matplotlib.pyplot as plt

    cmap = matplotlib.colormaps["gray"].copy()
    cmap.set_bad("#5b8fd6")  # pixels not in the context
    labels = list(rows)
    ncols = len(columns)
    fig, axes = plt.subplots(len(labels), ncols, figsize=(1.3 * ncols, 1.4 * len(labels)), squeeze=False)
    for r, label in enumerate(labels):
        for c in range(ncols):
            ax = axes[r, c]
            img = _np(rows[label][c])
            ax.imshow(np.ma.masked_invalid(img), cmap=cmap, vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(columns[c], fontsize=8)
            if c == 0:
                ax.set_ylabel(label, fontsize=8)
    fig.tight_layout()
    return fig
