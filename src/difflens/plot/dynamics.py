"""Figures and animations for :mod:`difflens.dynamics`; each function returns a matplotlib object.

Inputs are tensors or arrays in physical units; trajectories are ``(T, 3)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = [
    "animate_training_prediction",
    "animate_trajectories_by_epoch",
    "attractor_histograms",
    "error_growth_plot",
    "greybox_noise_plot",
    "lyapunov_convergence",
    "return_maps",
    "training_curves",
    "trajectory_3d",
    "vpt_histogram",
]


def _np(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=float)


def _fig3d(figsize=(5.5, 4.5)):
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=figsize)
    ax = fig.add_subplot(projection="3d")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_zlabel("z")
    return fig, ax


def trajectory_3d(truth, prediction, context: int = 0, title: str = "", dt: float | None = None):
    """Ground truth ``(T, 3)`` (blue) against a forecast ``(T', 3)`` (orange) starting after ``context`` samples."""
    truth, pred = _np(truth), _np(prediction)
    fig, ax = _fig3d()
    ax.plot(*truth.T, color="tab:blue", lw=0.8, label="ground truth")
    if context:
        ax.plot(*truth[:context].T, color="k", lw=2.0, label=f"context ({context} samples)")
    ax.plot(*pred.T, color="tab:orange", lw=0.8, label="emulator")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(title or "emulator against ground truth")
    return fig


def _limits(ax, pts: np.ndarray) -> None:
    lo, hi = pts.min(0), pts.max(0)
    pad = 0.05 * (hi - lo)
    ax.set_xlim(lo[0] - pad[0], hi[0] + pad[0])
    ax.set_ylim(lo[1] - pad[1], hi[1] + pad[1])
    ax.set_zlim(lo[2] - pad[2], hi[2] + pad[2])


def animate_training_prediction(truth, predictions: Sequence, iterations: Sequence[int], context: int):
    """The seed's first animation: one frame per training snapshot.

    ``truth`` ``(T, 3)`` is drawn as a scatter; frame ``i`` shows the forecast
    ``predictions[i]`` ``(T - context, 3)`` made by the model at training
    iteration ``iterations[i]`` from the first ``context`` true samples.
    """
    from matplotlib.animation import FuncAnimation

    truth = _np(truth)
    preds = [_np(p) for p in predictions]
    fig, ax = _fig3d()
    ax.scatter(*truth.T, s=2, color="tab:blue", alpha=0.5, label="ground truth")
    ax.plot(*truth[:context].T, color="k", lw=2.0, label="context")
    line, = ax.plot([], [], [], color="tab:orange", lw=1.0, label="emulator")
    ax.legend(loc="upper left", fontsize=8)
    _limits(ax, truth)

    def update(i: int):
        p = np.concatenate([truth[context - 1:context], preds[i]])
        p = np.clip(p, *np.stack([truth.min(0) - 50, truth.max(0) + 50]))
        line.set_data(p[:, 0], p[:, 1])
        line.set_3d_properties(p[:, 2])
        ax.set_title(f"training iteration {iterations[i]}")
        return (line,)
    return FuncAnimation(fig, update, frames=len(preds), interval=300, blit=False)


def animate_trajectories_by_epoch(truth, predictions: Sequence, iterations: Sequence[int], context: int,
                                  cmap: str = "magma"):
    """The seed's second animation: every snapshot's forecast added in turn, early dark to late bright."""
    import matplotlib.pyplot as plt
    from matplotlib.animation import FuncAnimation

    truth = _np(truth)
    preds = [_np(p) for p in predictions]
    colors = plt.get_cmap(cmap)(np.linspace(0.1, 0.95, max(1, len(preds))))
    fig, ax = _fig3d()
    ax.plot(*truth.T, color="tab:blue", lw=1.2, label="ground truth")
    ax.legend(loc="upper left", fontsize=8)
    _limits(ax, truth)
    lo, hi = truth.min(0) - 50, truth.max(0) + 50

    def update(i: int):
        p = np.clip(np.concatenate([truth[context - 1:context], preds[i]]), lo, hi)
        ax.plot(*p.T, color=colors[i], lw=0.7)
        ax.set_title(f"forecasts by training iteration (up to {iterations[i]})")
        return ()
    return FuncAnimation(fig, update, frames=len(preds), interval=300, blit=False)


def error_growth_plot(lead_lyapunov_times, curves: Mapping[str, Mapping], threshold: float = 0.5):
    """Median (and inter-quartile band) NRMSE against lead time in Lyapunov times, one line per model."""
    import matplotlib.pyplot as plt

    t = _np(lead_lyapunov_times)
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, c in curves.items():
        med = _np(c["median"])
        ax.semilogy(t[: len(med)], med, label=name)
        if "q25" in c and "q75" in c:
            ax.fill_between(t[: len(med)], _np(c["q25"]), _np(c["q75"]), alpha=0.2)
    ax.axhline(threshold, color="k", ls="--", lw=0.8, label=f"VPT threshold {threshold}")
    ax.set_xlabel("lead time (Lyapunov times)")
    ax.set_ylabel("normalised RMSE")
    ax.set_ylim(bottom=1e-5)
    ax.legend(fontsize=8)
    ax.set_title("error growth on held-out initial conditions")
    return fig


def vpt_histogram(vpts: Mapping[str, object], bins: int = 20):
    """Histograms of valid prediction times (Lyapunov times), one per model; medians marked."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    allv = np.concatenate([_np(v).ravel() for v in vpts.values()])
    edges = np.linspace(0, max(1.0, allv.max()) * 1.02, bins + 1)
    for i, (name, v) in enumerate(vpts.items()):
        v = _np(v)
        ax.hist(v, bins=edges, alpha=0.5, label=f"{name} (median {np.median(v):.2f})", color=f"C{i}")
        ax.axvline(np.median(v), color=f"C{i}", ls="--")
    ax.set_xlabel("valid prediction time (Lyapunov times)")
    ax.set_ylabel("initial conditions")
    ax.legend(fontsize=8)
    return fig


def attractor_histograms(edges, histograms: Mapping[str, object], labels: Sequence[str] = ("x", "y", "z")):
    """Marginal densities ``(d, n_bins)`` on ``edges`` ``(d, n_bins + 1)``, one line per run."""
    import matplotlib.pyplot as plt

    edges = _np(edges)
    d = edges.shape[0]
    fig, axes = plt.subplots(1, d, figsize=(3.2 * d, 3))
    for i, ax in enumerate(np.atleast_1d(axes)):
        centers = 0.5 * (edges[i, 1:] + edges[i, :-1])
        for name, h in histograms.items():
            ax.plot(centers, _np(h)[i], label=name)
        ax.set_xlabel(labels[i] if i < len(labels) else f"x{i}")
        ax.set_yticks([])
    np.atleast_1d(axes)[0].set_ylabel("density")
    np.atleast_1d(axes)[0].legend(fontsize=8)
    fig.suptitle("invariant measure: marginal histograms of long free runs")
    fig.tight_layout()
    return fig


def return_maps(points: Mapping[str, object]):
    """Lorenz's return map ``(M_n, M_{n+1})`` of successive z maxima, one scatter per run."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    for i, (name, p) in enumerate(points.items()):
        p = _np(p)
        ax.scatter(p[:, 0], p[:, 1], s=4 if i == 0 else 3, alpha=0.7, label=name)
    ax.set_xlabel("$z_{max}(n)$")
    ax.set_ylabel("$z_{max}(n+1)$")
    ax.legend(fontsize=8)
    ax.set_title("return map of successive z maxima")
    return fig


def training_curves(loss, val_iterations=None, val_loss=None):
    """Training loss per iteration (and validation loss) on a log scale."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.semilogy(_np(loss), lw=0.5, alpha=0.7, label="training (rollout) loss")
    if val_loss is not None:
        ax.semilogy(_np(val_iterations), _np(val_loss), "o-", ms=3, label="validation one-step loss")
    ax.set_xlabel("iteration")
    ax.set_ylabel("MSE / increment variance")
    ax.legend(fontsize=8)
    return fig


def lyapunov_convergence(results: Mapping[str, object], reference: float | None = 0.9056):
    """Running estimate of lambda_1 against averaging time for each :class:`LyapunovResult`."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, r in results.items():
        ax.plot(_np(r.running_times), _np(r.running[:, 0]), label=f"{name}: {r.lambda1:.3f}")
    if reference is not None:
        ax.axhline(reference, color="k", ls="--", lw=0.8, label=f"literature {reference}")
    ax.set_xlabel("averaging time (model time units)")
    ax.set_ylabel("$\\lambda_1$ estimate")
    ax.legend(fontsize=8)
    return fig


def greybox_noise_plot(noise_levels, relative_errors, names: Sequence[str] = ("sigma", "rho", "beta")):
    """Relative error of each recovered coefficient against observation noise (log-log)."""
    import matplotlib.pyplot as plt

    noise, err = _np(noise_levels), _np(relative_errors)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    x = np.where(noise > 0, noise, noise[noise > 0].min() / 10 if (noise > 0).any() else 1e-3)
    for i, n in enumerate(names):
        ax.loglog(x, np.maximum(err[:, i], 1e-12), "o-", label=n)
    ax.set_xlabel("observation noise std (state units; leftmost point: noise-free)")
    ax.set_ylabel("relative error")
    ax.legend(fontsize=8)
    ax.set_title("grey-box recovery against noise")
    return fig
