"""Figures for the drawing autoencoder: reconstructions, gesture tracks, training animation, clusters.

Every function returns a matplotlib ``Figure`` (or ``Animation``); nothing is
shown or saved here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "cluster_matrix",
    "gesture_tracks",
    "loss_curves",
    "reconstruction_grid",
    "training_animation",
]


def _img(x: Tensor) -> np.ndarray:
    return x.detach().to("cpu", torch.float32).reshape(x.shape[-2], x.shape[-1]).numpy()


def _grid(n: int, rows_per: int, ncols: int, scale: float = 1.0):
    import matplotlib.pyplot as plt

    nblocks = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nblocks * rows_per, ncols, figsize=(ncols * 0.9 * scale, nblocks * rows_per * 0.9 * scale),
                             squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    return fig, axes


def reconstruction_grid(images: Tensor, reconstructions: Tensor, title: str = "", ncols: int = 10,
                        labels: Sequence[str] = ("input", "drawn")):
    """Inputs (odd rows) above their reconstructions (even rows); ``images`` ``(N, 1, H, W)`` in [0, 1]."""
    n = len(images)
    fig, axes = _grid(n, 2, ncols)
    for k in range(n):
        r, c = 2 * (k // ncols), k % ncols
        axes[r, c].imshow(_img(images[k]), cmap="gray_r", vmin=0, vmax=1)
        axes[r + 1, c].imshow(_img(reconstructions[k]), cmap="gray_r", vmin=0, vmax=1)
        if c == 0:
            for rr, text in zip((r, r + 1), labels):
                axes[rr, c].set_axis_on()
                axes[rr, c].set_xticks([]), axes[rr, c].set_yticks([])
                axes[rr, c].set_ylabel(text, fontsize=7)
    if title:
        fig.suptitle(title)
    return fig


def gesture_tracks(positions: Tensor, sizes: Tensor, intensities: Tensor, images: Tensor | None = None,
                   shape: Sequence[int] = (28, 28), ncols: int = 6, cmap: str = "viridis", title: str = "",
                   ordered: bool = True):
    """Pen tracks coloured by drawing order (``cmap``), marker area by size, opacity by intensity.

    positions ``(N, P, 2)`` pixels; sizes, intensities ``(N, P)``; ``images``
    (optional, ``(N, 1, H, W)``) is shown faintly underneath. With
    ``ordered=False`` (static markers, which have no drawing order) the markers
    are coloured by their index and not joined, and no start point is marked.
    """
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection

    pos = positions.detach().cpu().numpy()
    siz = sizes.detach().cpu().numpy()
    amp = intensities.detach().cpu().numpy()
    n, p = pos.shape[:2]
    h, w = shape
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * 1.8, nrows * 1.8), squeeze=False)
    colors = plt.get_cmap(cmap)(np.linspace(0, 1, p))
    for k, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if k >= n:
            continue
        if images is not None:
            ax.imshow(_img(images[k]), cmap="gray_r", vmin=0, vmax=3, extent=(0, w, h, 0))
        if ordered:
            segs = np.stack([pos[k, :-1], pos[k, 1:]], axis=1)
            seg_colors = colors[:-1].copy()
            seg_colors[:, 3] = np.clip(0.5 * (amp[k, :-1] + amp[k, 1:]), 0.05, 1)
            ax.add_collection(LineCollection(segs, colors=seg_colors, linewidths=1.0))
        pt_colors = colors.copy()
        pt_colors[:, 3] = np.clip(amp[k], 0.05, 1)
        ax.scatter(pos[k, :, 0], pos[k, :, 1], s=(siz[k] * 6) ** 2 / 4, c=pt_colors, edgecolors="none")
        if ordered:
            ax.plot(pos[k, 0, 0], pos[k, 0, 1], marker="x", color="red", markersize=4)
        ax.set_xlim(0, w), ax.set_ylim(h, 0), ax.set_aspect("equal")
    if title:
        fig.suptitle(title)
    return fig


def training_animation(snapshots: Sequence[Tensor], epochs: Sequence[float], images: Tensor | None = None,
                       ncols: int = 8, interval: int = 150):
    """An animation of reconstructions over training: frame ``t`` shows ``snapshots[t]`` ``(N, 1, H, W)``.

    ``images`` (the targets), when given, are shown in the first row.
    """
    import matplotlib.pyplot as plt
    from matplotlib.animation import FuncAnimation

    n = len(snapshots[0])
    ncols = min(ncols, n)
    rows = (n + ncols - 1) // ncols + (1 if images is not None else 0)
    fig, axes = plt.subplots(rows, ncols, figsize=(ncols * 0.9, rows * 0.9 + 0.3), squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    offset = 0
    if images is not None:
        for k in range(min(ncols, len(images))):
            axes[0, k].imshow(_img(images[k]), cmap="gray_r", vmin=0, vmax=1)
        offset = 1
    arts = []
    for k in range(n):
        ax = axes[offset + k // ncols, k % ncols]
        arts.append(ax.imshow(_img(snapshots[0][k]), cmap="gray_r", vmin=0, vmax=1))
    label = fig.suptitle("")

    def update(t: int):
        for k, art in enumerate(arts):
            art.set_data(_img(snapshots[t][k]))
        label.set_text(f"epoch {epochs[t]:.0f}")
        return [*arts, label]

    update(0)
    return FuncAnimation(fig, update, frames=len(snapshots), interval=interval, blit=False)


def loss_curves(iterations: np.ndarray, train_loss: np.ndarray, test_iterations: Sequence[int] = (),
                test_loss: Sequence[float] = (), steps_per_epoch: int = 1, title: str = "",
                phase_start: float | None = None, phase_label: str = "fine-tuning"):
    """Training mini-batch loss (thin) and test MSE per epoch (dots) against epochs, log scale.

    ``phase_start`` (epochs) draws a vertical line where a second training phase begins.
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(np.asarray(iterations) / steps_per_epoch, train_loss, lw=0.6, alpha=0.7, label="train batch")
    if len(test_loss):
        ax.plot(np.asarray(test_iterations) / steps_per_epoch, test_loss, "o-", ms=2.5, label="test")
    if phase_start is not None:
        ax.axvline(phase_start, color="0.3", ls="--", lw=0.8, label=phase_label)
    ax.set_yscale("log"), ax.set_xlabel("epoch"), ax.set_ylabel("MSE")
    ax.legend(), ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    return fig


def cluster_matrix(tables: dict[str, np.ndarray], label_names: Sequence[str] | None = None):
    """Side-by-side cluster x label count matrices (rows sorted by each cluster's majority label)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(tables), figsize=(3.4 * len(tables), 3.2), squeeze=False)
    for ax, (name, table) in zip(axes[0], tables.items()):
        order = np.argsort(table.argmax(axis=1), kind="stable")
        ax.imshow(table[order], cmap="Blues")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("true label"), ax.set_ylabel("cluster (by majority)")
        ticks = range(table.shape[1])
        ax.set_xticks(list(ticks))
        ax.set_xticklabels(label_names if label_names is not None else [str(t) for t in ticks], fontsize=7)
        ax.set_yticks([])
    fig.tight_layout()
    return fig
