"""Figures and animations of metamer synthesis.

``included_plots`` names the panels of :func:`plot_synthesis_status` and
:func:`animate`: ``"display_metamer"``, ``"plot_loss"``,
``"plot_representation_error"``, ``"plot_pixel_values"``; ``fig``, ``axes_idx`` and
``width_ratios`` place them as plenoptic's do, and :func:`plot_synthesis_status` returns
``(fig, axes_idx)`` as plenoptic's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib import animation

from .layout import synthesis_axes

if TYPE_CHECKING:  # pragma: no cover
    from difflens.synthesize.metamer import Metamer

__all__ = ["plot_loss", "display_metamer", "plot_representation_error", "plot_pixel_values",
           "plot_synthesis_status", "animate"]

PANELS = ("display_metamer", "plot_loss", "plot_representation_error", "plot_pixel_values")


def _metamer_at(met: "Metamer", iteration: int | None) -> torch.Tensor:
    if iteration is None:
        return met.metamer.detach().cpu()
    saved, iters = met.saved_metamer, met.saved_iterations
    if not iters:
        raise ValueError("no saved progress: synthesize with store_progress=True to look at past iterations")
    idx = int(np.searchsorted(iters, iteration if iteration >= 0 else iters[-1] + 1 + iteration))
    return saved[min(idx, len(iters) - 1)]


def plot_loss(met: "Metamer", iteration: int | None = None, ax=None, **kwargs):
    """Loss per iteration on a log axis, one line per target; a dot marks ``iteration``. Returns the axes."""
    if ax is None:
        ax = plt.figure(figsize=kwargs.pop("figsize", (5, 3.5))).add_subplot()
    loss = met.losses.numpy()
    if loss.size == 0:
        raise ValueError("nothing to plot: the metamer has not been synthesised yet")
    ax.semilogy(loss, **kwargs)
    if iteration is not None:
        i = min(iteration if iteration >= 0 else len(loss) + iteration, len(loss) - 1)
        ax.scatter(np.full(loss.shape[1:] or (1,), i), np.atleast_1d(loss[i]), c="r", zorder=3)
    ax.set(xlabel="iteration", ylabel="loss", title="loss")
    return ax


def _show(ax, img: torch.Tensor, title: str, vrange: tuple[float, float] | None = None):
    img = img.detach().cpu().float()
    if img.ndim == 3:  # (C, H, W)
        img = img[0] if img.shape[0] == 1 else img.permute(1, 2, 0).clamp(0, 1)
    lo, hi = vrange if vrange is not None else (float(img.min()), float(img.max()))
    artist = ax.imshow(img.numpy(), cmap="gray", vmin=lo, vmax=hi, interpolation="none")
    ax.set_title(title)
    ax.set_axis_off()
    return artist


def display_metamer(met: "Metamer", batch_idx: int = 0, iteration: int | None = None, ax=None, **kwargs):
    """The metamer of target ``batch_idx`` (at a saved ``iteration``). Returns the axes."""
    if ax is None:
        ax = plt.figure(figsize=kwargs.pop("figsize", (4, 4))).add_subplot()
    x = _metamer_at(met, iteration)
    _show(ax, x[batch_idx], "metamer", vrange=met.allowed_range)
    return ax


def plot_representation_error(met: "Metamer", batch_idx: int = 0, iteration: int | None = None, ax=None,
                              **kwargs):
    """model(metamer) − model(image) for one target (mean over extra channels). Returns the axes."""
    if ax is None:
        ax = plt.figure(figsize=kwargs.pop("figsize", (4, 4))).add_subplot()
    with torch.no_grad():
        x = _metamer_at(met, iteration).to(met.image.device)
        err = (met.model(x) - met.target_representation)[batch_idx].cpu()
    while err.ndim > 2:
        err = err.mean(0)
    if err.ndim == 2:
        m = float(err.abs().max()) or 1.0
        ax.imshow(err.numpy(), cmap="RdBu_r", vmin=-m, vmax=m, interpolation="none")
        ax.set_axis_off()
    else:
        ax.plot(err.reshape(-1).numpy())
    ax.set_title(f"representation error\nmax |error| {float(err.abs().max()):.2e}")
    return ax


def plot_pixel_values(met: "Metamer", batch_idx: int = 0, iteration: int | None = None, ax=None, **kwargs):
    """Histograms of target and metamer pixel values. Returns the axes."""
    if ax is None:
        ax = plt.figure(figsize=kwargs.pop("figsize", (4, 3))).add_subplot()
    x = _metamer_at(met, iteration)[batch_idx].reshape(-1).numpy()
    t = met.image[batch_idx].detach().cpu().reshape(-1).numpy()
    bins = np.linspace(min(x.min(), t.min()), max(x.max(), t.max()) + 1e-9, 50)
    ax.hist(t, bins=bins, alpha=0.5, label="target", density=True)
    ax.hist(x, bins=bins, alpha=0.5, label="metamer", density=True)
    ax.legend(fontsize="small")
    ax.set_title("pixel values")
    return ax


_DRAW = {"display_metamer": display_metamer, "plot_loss": plot_loss,
         "plot_representation_error": plot_representation_error, "plot_pixel_values": plot_pixel_values}


_DEFAULT_WIDTHS = {"display_metamer": 1.0, "plot_loss": 1.0, "plot_representation_error": 1.0,
                   "plot_pixel_values": 1.0}
_DEFAULT_PANELS = ("display_metamer", "plot_loss", "plot_representation_error")


def _draw_panels(met: "Metamer", fig, axes_idx: dict, included_plots: Sequence[str], iteration: int | None,
                 batch_idx: int) -> None:
    for name in PANELS:
        if name in included_plots:
            kw = {"iteration": iteration, "ax": fig.axes[axes_idx[name]]}
            if name != "plot_loss":
                kw["batch_idx"] = batch_idx
            _DRAW[name](met, **kw)


def plot_synthesis_status(met: "Metamer", iteration: int | None = None, batch_idx: int = 0,
                          included_plots: Sequence[str] = _DEFAULT_PANELS,
                          figsize: tuple[float, float] | None = None, *, fig: Any = None,
                          axes_idx: Mapping[str, int] | None = None,
                          width_ratios: Mapping[str, float] | None = None):
    """Several panels side by side at one iteration; returns ``(fig, axes_idx)`` as plenoptic.

    Parameters
    ----------
    met : Metamer
    iteration : int, optional
        A stored iteration (default the current metamer).
    batch_idx : int
        Which target of a batch.
    included_plots : sequence of str
        Panels from :data:`PANELS`, drawn in that order.
    figsize : (float, float), optional
        Size of a new figure (default 5 inches tall, widths from ``width_ratios``).
    fig : Figure, optional
        Draw into this figure's axes instead of a new one.
    axes_idx : dict, optional
        Panel name -> index into ``fig.axes`` (missing panels take the first free index).
    width_ratios : dict, optional
        Panel name -> relative width in a new figure (default 1 each).

    Returns
    -------
    (Figure, dict)
        The figure and ``axes_idx`` (with ``"misc"``: axes no panel uses).
    """
    fig, _, axes_idx = synthesis_axes(fig, axes_idx, figsize, PANELS, included_plots, width_ratios,
                                      _DEFAULT_WIDTHS)
    _draw_panels(met, fig, axes_idx, included_plots, iteration, batch_idx)
    fig.tight_layout()
    return fig, axes_idx


def animate(met: "Metamer", framerate: int = 10, batch_idx: int = 0,
            included_plots: Sequence[str] = _DEFAULT_PANELS,
            figsize: tuple[float, float] | None = None, max_frames: int = 100, *, fig: Any = None,
            axes_idx: Mapping[str, int] | None = None, width_ratios: Mapping[str, float] | None = None):
    """Animate the saved progress: one frame per stored metamer (at most ``max_frames``).

    Needs ``synthesize(store_progress=...)``. ``fig``, ``axes_idx``, ``width_ratios`` and
    ``included_plots`` as in :func:`plot_synthesis_status`. Returns a ``FuncAnimation``; write
    it with :func:`difflens.plot.save_animation` (GIF without ffmpeg).
    """
    iters = met.saved_iterations
    if len(iters) < 2:
        raise ValueError("animate needs saved progress: call synthesize(store_progress=True or N) first")
    frames = iters[:: max(1, int(np.ceil(len(iters) / max_frames)))]
    if frames[-1] != iters[-1]:
        frames.append(iters[-1])
    fig, _, axes_idx = synthesis_axes(fig, axes_idx, figsize, PANELS, included_plots, width_ratios,
                                      _DEFAULT_WIDTHS)

    def draw(it):
        for name in PANELS:
            if name in included_plots:
                fig.axes[axes_idx[name]].clear()
        _draw_panels(met, fig, axes_idx, included_plots, it, batch_idx)
        fig.suptitle(f"iteration {it}")
        return []

    draw(frames[0])
    fig.tight_layout()
    return animation.FuncAnimation(fig, draw, frames=frames, interval=1000 / framerate, blit=False)
