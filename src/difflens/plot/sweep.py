"""Figures of a sweep: the spread of one metric over seeds, per grid value."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["strip_plot"]


def strip_plot(groups: Mapping[str, Sequence[float]], title: str = "", seed: int = 0):
    """One column of points per group (one point per seed, jittered sideways), with mean and 95% CI.

    Parameters
    ----------
    groups : mapping of str to sequence of float
        Group label -> values over seeds.
    title : str
        The metric's name.
    seed : int
        Seed of the sideways jitter (the figure is the same each time).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt
    from scipy.stats import t

    rng = np.random.default_rng(seed)
    fig, ax = plt.subplots(figsize=(max(3.0, 1.4 * len(groups) + 1.5), 3.2))
    for i, (label, values) in enumerate(groups.items()):
        v = np.asarray(values, dtype=float)
        ax.scatter(i + rng.uniform(-0.12, 0.12, len(v)), v, s=18, alpha=0.7, color="C0")
        if len(v):
            mean = v.mean()
            half = t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else 0.0
            ax.errorbar(i + 0.3, mean, yerr=half, fmt="o", color="C3", capsize=4)
    ax.set_xticks(range(len(groups)), list(groups), rotation=20 if len(groups) > 3 else 0)
    ax.set_xlim(-0.6, len(groups) - 0.4)
    ax.set_title(title, fontsize=10)
    ax.set_ylabel(title if len(title) < 24 else "value")
    fig.tight_layout()
    return fig
