"""Figures and animations of MAD competition, with plenoptic's names and arguments.

``included_plots`` / ``axes_idx`` / ``width_ratios`` name the panels of
:func:`plot_synthesis_status` and :func:`animate`: ``"display_mad_image"``, ``"plot_loss"``
(two axes: reference and optimised metric) and ``"plot_pixel_values"``.
:func:`display_mad_image_all` and :func:`plot_loss_all` show a full MAD set: the
minimum and maximum of each metric with the other held fixed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib import animation

from .display import imshow
from .layout import synthesis_axes

if TYPE_CHECKING:  # pragma: no cover
    from difflens.synthesize.mad_competition import MADCompetition

__all__ = [
    "animate",
    "display_mad_image",
    "display_mad_image_all",
    "plot_loss",
    "plot_loss_all",
    "plot_pixel_values",
    "plot_synthesis_status",
]

PANELS = ("display_mad_image", "plot_loss", "plot_pixel_values")


def _iteration_index(mad: MADCompetition, iteration: int | None) -> int:
    n = len(mad.losses)
    if iteration is None:
        return n
    i = iteration if iteration >= 0 else n + 1 + iteration
    if not 0 <= i <= n:
        raise IndexError(f"iteration {iteration} is outside the {n} iterations run")
    return i


def _image_at(mad: MADCompetition, iteration: int | None) -> tuple[torch.Tensor, int]:
    """The MAD image at ``iteration`` (the nearest stored one at or before it) and its iteration."""
    i = _iteration_index(mad, iteration)
    if i == len(mad.losses):
        return mad.mad_image.detach().cpu(), i
    iters = mad.saved_iterations
    if not iters:
        raise IndexError("When store_progress=False, iteration must be None (only the last image is kept)")
    k = int(np.searchsorted(iters, i, side="right")) - 1
    return mad.saved_mad_image[max(k, 0)], iters[max(k, 0)]


def plot_loss(mad: MADCompetition, iteration: int | None = None, axes: Any = None, **kwargs: Any):
    """Reference and optimised metric per iteration, side by side; a red dot marks ``iteration``.

    ``axes``: two axes, or one axes split in two (default the current axes). Returns the last axes.
    """
    if axes is None:
        axes = plt.gca()
    if not hasattr(axes, "__iter__"):
        fig = axes.figure
        gs = axes.get_subplotspec().subgridspec(1, 2)
        axes.set_axis_off()  # kept (hidden) so the indices of fig.axes do not shift
        axes = [fig.add_subplot(gs[0, 0]), fig.add_subplot(gs[0, 1])]
    i = _iteration_index(mad, iteration)
    series = [(mad.reference_metric_loss, "Reference metric loss"),
              (mad.optimized_metric_loss, "Optimized metric loss")]
    ax = None
    for ax, (loss, name) in zip(axes, series):
        ax.plot(loss.numpy(), **kwargs)
        ax.scatter([i], [float(loss[min(i, len(loss) - 1)])], c="r")
        ax.set(xlabel="Synthesis iteration", ylabel=name)
    return ax


def display_mad_image(mad: MADCompetition, batch_idx: int = 0, channel_idx: int | None = None,
                      zoom: float | None = None, iteration: int | None = None, ax: Any = None,
                      title: str | None = None, **kwargs: Any):
    """The MAD image (at a stored ``iteration``) of batch element ``batch_idx``. Returns the axes."""
    if batch_idx is None:
        raise ValueError("batch_idx must be an integer!")
    image, it = _image_at(mad, iteration)
    if ax is None:
        ax = plt.gca()
    as_rgb = bool(channel_idx is None and image.shape[1] > 1)
    imshow(image, ax=ax, title=f"MAD Image [iteration={it}]" if title is None else title, zoom=zoom,
           batch_idx=batch_idx, channel_idx=channel_idx, as_rgb=as_rgb, **kwargs)
    ax.xaxis.set_visible(False)
    ax.yaxis.set_visible(False)
    return ax


def plot_pixel_values(mad: MADCompetition, batch_idx: int = 0, channel_idx: int | None = None,
                      iteration: int | None = None, ylim: tuple[float, float] | bool = False, ax: Any = None,
                      **kwargs: Any):
    """Histograms of the MAD image's and the reference image's pixel values. Returns the axes."""
    kwargs.setdefault("alpha", 0.4)
    image, it = _image_at(mad, iteration)
    ref = mad.image[batch_idx].detach().cpu()
    img = image[batch_idx]
    if channel_idx is not None:
        ref, img = ref[channel_idx], img[channel_idx]
    if ax is None:
        ax = plt.gca()
    bins = np.linspace(min(float(ref.min()), float(img.min())), max(float(ref.max()), float(img.max())) + 1e-9, 50)
    ax.hist(img.reshape(-1).numpy(), bins=bins, label=f"MAD image [iteration={it}]", **kwargs)
    ax.hist(ref.reshape(-1).numpy(), bins=bins, label="Reference image", **kwargs)
    ax.legend()
    if ylim:
        ax.set_ylim(ylim)
    ax.set_title("Histogram of pixel values")
    return ax


def plot_synthesis_status(mad: MADCompetition, batch_idx: int = 0, channel_idx: int | None = None,
                          iteration: int | None = None, vrange: Any = "indep1", zoom: float | None = None,
                          fig: Any = None, axes_idx: Mapping[str, Any] | None = None, figsize: Any = None,
                          included_plots: Sequence[str] = PANELS,
                          width_ratios: Mapping[str, float] | None = None):
    """The MAD image, both metrics' curves and the pixel histograms at one iteration.

    ``fig`` / ``axes_idx`` draw into an existing figure (``axes_idx`` maps a panel name to
    the index of its axes in ``fig.axes``); ``width_ratios`` changes a panel's relative
    width (defaults 1, 2, 1). Returns ``(fig, axes_idx)``; ``axes_idx["plot_loss"]`` then
    lists the two loss axes.
    """
    if iteration is not None and not mad.store_progress:
        raise ValueError("synthesize() was run with store_progress=False, cannot specify which iteration to plot "
                         "(only last one, with iteration=None)")
    if mad.mad_image.ndim not in (3, 4):
        raise ValueError("plot_synthesis_status() expects 3 or 4d data")
    fig, axes, axes_idx = synthesis_axes(fig, axes_idx, figsize, PANELS, included_plots, width_ratios,
                                         {"display_mad_image": 1.0, "plot_loss": 2.0, "plot_pixel_values": 1.0})
    if "display_mad_image" in included_plots:
        display_mad_image(mad, batch_idx=batch_idx, channel_idx=channel_idx, iteration=iteration,
                          ax=axes[axes_idx["display_mad_image"]], zoom=zoom, vrange=vrange)
    if "plot_loss" in included_plots:
        before = list(fig.axes)
        plot_loss(mad, iteration=iteration, axes=axes[axes_idx["plot_loss"]])
        axes_idx["plot_loss"] = [fig.axes.index(a) for a in fig.axes if a not in before]
    if "plot_pixel_values" in included_plots:
        plot_pixel_values(mad, batch_idx=batch_idx, channel_idx=channel_idx, iteration=iteration,
                          ax=axes[axes_idx["plot_pixel_values"]])
    return fig, axes_idx


def animate(mad: MADCompetition, framerate: int = 10, batch_idx: int = 0, channel_idx: int | None = None,
            zoom: float | None = None, fig: Any = None, axes_idx: Mapping[str, Any] | None = None,
            figsize: Any = None, included_plots: Sequence[str] = PANELS,
            width_ratios: Mapping[str, float] | None = None):
    """Animate the stored progress (one frame per stored image, then the final one).

    Needs ``synthesize(store_progress=...)``. Returns a ``FuncAnimation``; write it with
    :func:`difflens.plot.save_animation` (GIF without ffmpeg).
    """
    if not mad.store_progress:
        raise ValueError("synthesize() was run with store_progress=False, cannot animate!")
    frames = [*mad.saved_iterations, len(mad.losses)]
    fig, axes_idx = plot_synthesis_status(mad, batch_idx=batch_idx, channel_idx=channel_idx, iteration=frames[0],
                                          zoom=zoom, fig=fig, axes_idx=axes_idx, figsize=figsize,
                                          included_plots=included_plots, width_ratios=width_ratios)

    def draw(it: int) -> list:
        if "display_mad_image" in included_plots:
            ax = fig.axes[axes_idx["display_mad_image"]]
            image, _ = _image_at(mad, it)
            ax.images[0].set_data(_panel(image, batch_idx, channel_idx))
            ax.set_title(f"MAD Image [iteration={it}]")
        if "plot_pixel_values" in included_plots:
            ax = fig.axes[axes_idx["plot_pixel_values"]]
            ax.clear()
            plot_pixel_values(mad, batch_idx=batch_idx, channel_idx=channel_idx, iteration=it, ax=ax)
        if "plot_loss" in included_plots:
            series = (mad.reference_metric_loss, mad.optimized_metric_loss)
            for i, loss in zip(axes_idx["plot_loss"], series):
                fig.axes[i].collections[0].set_offsets([[it, float(loss[min(it, len(loss) - 1)])]])
        return []

    anim = animation.FuncAnimation(fig, draw, frames=frames, interval=1000 / framerate, blit=False, repeat=False)
    plt.close(fig)
    return anim


def _panel(image: torch.Tensor, batch_idx: int, channel_idx: int | None) -> np.ndarray:
    x = image[batch_idx]
    if channel_idx is not None:
        return x[channel_idx].numpy()
    return x[0].numpy() if x.shape[0] == 1 else x.permute(1, 2, 0).clamp(0, 1).numpy()


def _check_same_image(mads: Sequence[MADCompetition]) -> None:
    first = mads[0].image
    for m in mads[1:]:
        if m.image.shape != first.shape or not torch.allclose(m.image, first):
            raise ValueError("All four instances of MADCompetition must have same image!")


def _metric_name(mad: MADCompetition) -> str:
    metric = mad.optimized_metric
    return getattr(metric, "__name__", type(metric).__name__)


def display_mad_image_all(mad_metric1_min: MADCompetition, mad_metric2_min: MADCompetition,
                          mad_metric1_max: MADCompetition, mad_metric2_max: MADCompetition,
                          metric1_name: str | None = None, metric2_name: str | None = None,
                          zoom: float = 1, **kwargs: Any):
    """The full MAD set: reference, initial image and the four MAD images, with both metrics' values.

    ``mad_metric1_min`` minimises metric 1 holding metric 2, and so on. Returns the figure (3 x 2 panels).
    """
    mads = [mad_metric1_min, mad_metric1_max, mad_metric2_min, mad_metric2_max]
    _check_same_image(mads)
    n1 = metric1_name or _metric_name(mad_metric1_min)
    n2 = metric2_name or _metric_name(mad_metric2_min)
    h, w = mad_metric1_min.image.shape[-2:]
    side = max(3.2, max(h, w) * zoom / 72)  # inches per panel, room for three title lines
    fig, axes = plt.subplots(3, 2, figsize=(2 * side, 3 * (side + 0.9)), squeeze=False)
    axes = axes.reshape(-1)
    as_rgb = kwargs.get("channel_idx") is None and mad_metric1_min.image.shape[1] > 1
    imshow(mad_metric1_min.image, ax=axes[0], title="Reference image", zoom=zoom, as_rgb=as_rgb, **kwargs)
    imshow(mad_metric1_min.initial_image, ax=axes[1], title="Initial (noisy) image", zoom=zoom, as_rgb=as_rgb,
           **kwargs)
    titles = [f"Minimize {n1}", f"Maximize {n1}", f"Minimize {n2}", f"Maximize {n2}"]
    for ax, mad, title in zip(axes[2:], mads, titles):
        m1 = mad.optimized_metric_loss[-1] if mad in mads[:2] else mad.reference_metric_loss[-1]
        m2 = mad.reference_metric_loss[-1] if mad in mads[:2] else mad.optimized_metric_loss[-1]
        display_mad_image(mad, zoom=zoom, ax=ax, title=f"{title}\n{n1} = {float(m1):.4g}\n{n2} = {float(m2):.4g}",
                          **kwargs)
    for ax in axes[:2]:
        ax.set_axis_off()
    fig.tight_layout()
    return fig


def plot_loss_all(mad_metric1_min: MADCompetition, mad_metric2_min: MADCompetition,
                  mad_metric1_max: MADCompetition, mad_metric2_max: MADCompetition,
                  metric1_name: str | None = None, metric2_name: str | None = None,
                  metric1_kwargs: Mapping[str, Any] | None = None, metric2_kwargs: Mapping[str, Any] | None = None,
                  min_kwargs: Mapping[str, Any] | None = None, max_kwargs: Mapping[str, Any] | None = None,
                  figsize: tuple[float, float] = (10, 5)):
    """Both metrics' values over the four syntheses: one axes per metric. Returns the figure."""
    mads = [mad_metric1_min, mad_metric2_min, mad_metric1_max, mad_metric2_max]
    _check_same_image(mads)
    n1 = metric1_name or _metric_name(mad_metric1_min)
    n2 = metric2_name or _metric_name(mad_metric2_min)
    k1, k2 = dict(metric1_kwargs or {"c": "C0"}), dict(metric2_kwargs or {"c": "C1"})
    kmin, kmax = dict(min_kwargs or {"linestyle": "--"}), dict(max_kwargs or {"linestyle": "-"})
    fig, axes = plt.subplots(1, 2, figsize=figsize)
    # axes[0] shows metric 2 (held fixed by the metric-1 syntheses), axes[1] metric 1
    plot_loss(mad_metric1_min, axes=axes, label=f"Minimize {n1}", **k1, **kmin)
    plot_loss(mad_metric1_max, axes=axes, label=f"Maximize {n1}", **k1, **kmax)
    plot_loss(mad_metric2_min, axes=axes[::-1], label=f"Minimize {n2}", **k2, **kmin)
    plot_loss(mad_metric2_max, axes=axes[::-1], label=f"Maximize {n2}", **k2, **kmax)
    axes[0].set(ylabel="Loss", title=n2)
    axes[1].set(ylabel="Loss", title=n1)
    axes[1].legend(loc="center left", bbox_to_anchor=(1.1, 0.5))
    return fig
