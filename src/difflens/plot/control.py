"""Figures and an animation for :mod:`difflens.control`; each function returns a matplotlib object.

Trajectories are ``(B, T, n)`` tensors or arrays in the environments' units.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["animate_docking", "car_trajectories", "lorenz_lobe", "planning_uncertainty", "success_vs_distance",
           "target_dockings", "truck_dockings"]


def _np(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=float)


def car_trajectories(states, obstacles, target, title: str = "MPC around an obstacle"):
    """Paths ``(B, T, >=2)`` of the car with round ``obstacles`` ``(K, 3)`` and the ``target`` (2,)."""
    import matplotlib.pyplot as plt

    S, O, t = _np(states), _np(obstacles), _np(target)
    fig, ax = plt.subplots(figsize=(6, 4))
    for cx, cy, r in O:
        ax.add_patch(plt.Circle((cx, cy), r, color="0.6"))
    for path in S:
        ax.plot(path[:, 0], path[:, 1], lw=1)
        ax.plot(path[0, 0], path[0, 1], "k.", ms=4)
    ax.plot(t[0], t[1], "rx", ms=10, mew=2)
    ax.set_aspect("equal")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title(title)
    return fig


def _truck_panel(ax, states, success, title):
    S, ok = _np(states), np.asarray(success, dtype=bool)
    for path, good in zip(S, ok):
        ax.plot(path[:, 0], path[:, 1], color="tab:green" if good else "tab:red", lw=0.7, alpha=0.7)
    ax.axvline(0, color="k", lw=2)
    ax.plot(0, 0, "k*", ms=10)
    ax.set_aspect("equal")
    ax.set_xlabel("x (trailer lengths)")
    ax.set_title(title)


def truck_dockings(before, after, success_before, success_after):
    """Paths of the trailer's rear ``(B, T, 4)`` before and after training (green: docked)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5), sharey=True)
    _truck_panel(axes[0], before, success_before, f"untrained: {np.mean(success_before):.0%} docked")
    _truck_panel(axes[1], after, success_after, f"trained through the emulator: {np.mean(success_after):.0%} docked")
    axes[0].set_ylabel("y (trailer lengths)")
    return fig


def target_dockings(states, target_y, success):
    """Paths ``(B, T, 4)`` of one target-conditioned controller docking at ``target_y`` ``(B,)`` on the wall."""
    import matplotlib.pyplot as plt

    S, ty, ok = _np(states), _np(target_y), np.asarray(success, dtype=bool)
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    colours = plt.cm.viridis((ty - ty.min()) / max(np.ptp(ty), 1e-9))
    for path, c, t, good in zip(S, colours, ty, ok):
        ax.plot(path[:, 0], path[:, 1], color=c, lw=0.8, alpha=0.8 if good else 0.3, ls="-" if good else ":")
        ax.plot(0, t, "o", color=c, ms=3)
    ax.axvline(0, color="k", lw=2)
    ax.set_aspect("equal")
    ax.set_xlabel("x (trailer lengths)")
    ax.set_ylabel("y (trailer lengths)")
    ax.set_title(f"one controller, docks anywhere on the wall: {ok.mean():.0%} docked")
    return fig


def planning_uncertainty(plans: dict, box):
    """Planned paths in the (x, v_x) plane: ``plans`` maps a label to ``(model_states, true_states)``,
    each ``(B, H+1, 4)`` (point mass ``[x, y, vx, vy]``); ``box`` = ``(lo, hi)`` of the model's training
    states, drawn as the region it was trained on. Dashed: what the model predicts; solid: what happens."""
    import matplotlib.pyplot as plt

    lo, hi = _np(box[0]), _np(box[1])
    fig, axes = plt.subplots(1, len(plans), figsize=(5 * len(plans), 3.8), squeeze=False, sharey=True)
    for ax, (label, (model, true)) in zip(axes[0], plans.items()):
        ax.add_patch(plt.Rectangle((lo[0], lo[2]), hi[0] - lo[0], hi[2] - lo[2], color="0.9", zorder=0))
        for k, (m, t) in enumerate(zip(_np(model)[:8], _np(true)[:8])):
            ax.plot(t[:, 0], t[:, 2], color=f"C{k}", lw=1)
            ax.plot(m[:, 0], m[:, 2], color=f"C{k}", lw=1, ls="--")
        ax.set_title(label)
        ax.set_xlabel("x")
    axes[0, 0].set_ylabel("v_x")
    return fig


def success_vs_distance(distance, success, bins: int = 8):
    """Docking success rate against the start's distance from the dock (both ``(B,)``)."""
    import matplotlib.pyplot as plt

    d, s = _np(distance), _np(success)
    edges = np.linspace(d.min(), d.max() + 1e-9, bins + 1)
    idx = np.clip(np.digitize(d, edges) - 1, 0, bins - 1)
    rate = [s[idx == i].mean() if (idx == i).any() else np.nan for i in range(bins)]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.bar((edges[:-1] + edges[1:]) / 2, rate, width=np.diff(edges) * 0.9)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("start distance from the dock (trailer lengths)")
    ax.set_ylabel("docking success rate")
    return fig


def lorenz_lobe(series: dict, dt: float):
    """``x(t)`` of controlled Lorenz trajectories, one panel per planning model (``{label: (B, T, 3)}``)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(series), figsize=(5 * len(series), 3.5), squeeze=False, sharey=True)
    for ax, (label, S) in zip(axes[0], series.items()):
        S = _np(S)
        t = np.arange(S.shape[1]) * dt
        for path in S[:20]:
            ax.plot(t, path[:, 0], lw=0.6)
        ax.axhline(0, color="k", lw=1)
        ax.set_title(label)
        ax.set_xlabel("time")
    axes[0, 0].set_ylabel("x")
    return fig


def animate_docking(states, cab_length: float = 6 / 14, trailer_length: float = 1.0):
    """An animation of one docking: ``states`` ``(T, 4)`` = rear x, y, cab and trailer angles."""
    import matplotlib.pyplot as plt
    from matplotlib.animation import FuncAnimation

    S = _np(states)
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.axvline(0, color="k", lw=2)
    ax.plot(0, 0, "k*", ms=10)
    lim = np.abs(S[:, :2]).max() + 2
    ax.set_xlim(-0.5, lim)
    ax.set_ylim(-lim / 1.5, lim / 1.5)
    ax.set_aspect("equal")
    (trailer,) = ax.plot([], [], lw=4, color="tab:blue")
    (cab,) = ax.plot([], [], lw=4, color="tab:orange")

    def draw(i):
        x, y, tc, tt = S[i]
        hx, hy = x + trailer_length * math.cos(tt), y + trailer_length * math.sin(tt)
        trailer.set_data([x, hx], [y, hy])
        cab.set_data([hx, hx + cab_length * math.cos(tc)], [hy, hy + cab_length * math.sin(tc)])
        return trailer, cab

    return FuncAnimation(fig, draw, frames=len(S), interval=50, blit=True)
