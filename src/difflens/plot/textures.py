"""Figures of Portilla–Simoncelli texture statistics (plenoptic's ``plot_representation``).

The representation is summarised in up to eight stem plots, one per statistic family:
pixel moments with the highpass variance; std, skew and kurtosis of the lowpass images;
magnitude stds; and the Euclidean norm over the spatial or orientation axes of each
auto-/cross-correlation (redundant entries are skipped).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Literal

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import Tensor

if TYPE_CHECKING:  # pragma: no cover
    from difflens.simulate.portilla_simoncelli import PortillaSimoncelli

__all__ = ["plot_ps_representation", "update_ps_representation", "ps_summary"]

_NORMED = ("auto_correlation_reconstructed", "auto_correlation_magnitude",
           "cross_orientation_correlation_magnitude", "cross_scale_correlation_magnitude",
           "cross_scale_correlation_real")


def ps_summary(model: PortillaSimoncelli, representation: Tensor, batch_idx: int = 0) -> OrderedDict:
    """The plotted summary of one representation: panel name -> 1-D NumPy array.

    Takes batch item ``batch_idx`` and averages over channels.

    Raises
    ------
    ValueError
        A representation of another length than the model's (see ``convert_to_dict``).
    """
    rep = representation[batch_idx].unsqueeze(0).mean(1, keepdim=True).detach().cpu()
    d = {k: v[0, 0] for k, v in model.convert_to_dict(rep.to(torch.float64)).items()}
    out: OrderedDict = OrderedDict()
    out["pixels+var_highpass"] = torch.cat([d["pixel_statistics"], d["var_highpass_residual"]])
    out["std+skew+kurtosis recon"] = torch.cat([d["std_reconstructed"], d["skew_reconstructed"],
                                                d["kurtosis_reconstructed"]])
    out["magnitude_std"] = d["magnitude_std"].flatten()
    for key in _NORMED:
        if key.startswith("cross_scale") and model.n_scales == 1:
            continue
        out[key] = d[key].nan_to_num().pow(2).sum((0, 1)).sqrt().flatten()
    return OrderedDict((k, v.numpy()) for k, v in out.items())


def plot_ps_representation(model: PortillaSimoncelli, representation: Tensor, ax: plt.Axes | None = None,
                           figsize: tuple[float, float] | None = None,
                           ylim: tuple[float, float] | Literal[False] | None = None, batch_idx: int = 0,
                           title: str | None = None) -> tuple[plt.Figure, list[plt.Axes]]:
    """Stem plots of a Portilla–Simoncelli representation (or of a difference of two).

    Parameters
    ----------
    model
        The model that computed ``representation``.
    representation
        ``(batch, channel, n_statistics)`` from ``model(image)`` (or a difference of two).
    ax
        Axes to subdivide into the panels (default: a new figure).
    figsize
        Size of a new figure (default ``(12, 5)``); not with ``ax``.
    ylim
        y-limits of every panel; ``None``: matplotlib's, with 0 included; ``False``: untouched.
    batch_idx
        Batch item to show (channels are averaged).
    title
        Figure title.

    Returns
    -------
    fig, axes
        The figure and its 6 (one scale) or 8 panels.

    Raises
    ------
    ValueError
        Both ``ax`` and ``figsize`` given.

    Examples
    --------
    >>> from difflens import data
    >>> from difflens.simulate import PortillaSimoncelli
    >>> from difflens.plot import plot_ps_representation
    >>> model = PortillaSimoncelli((256, 256))
    >>> fig, axes = plot_ps_representation(model, model(data.brick()))
    >>> len(axes)
    8
    """
    if ax is not None and figsize is not None:
        raise ValueError("figsize can't be set if ax is not None")
    panels = ps_summary(model, representation, batch_idx)
    rows = 3 if model.n_scales > 1 else 2
    cols = int(np.ceil(len(panels) / rows))
    if ax is None:
        fig = plt.figure(figsize=figsize or (12, 5))
        grid = fig.add_gridspec(rows, cols)
    else:
        fig = ax.figure
        ax.set_axis_off()
        grid = ax.get_subplotspec().subgridspec(rows, cols)
    axes = []
    for i, (name, values) in enumerate(panels.items()):
        a = fig.add_subplot(grid[i // cols, i % cols])
        a.stem(values)
        a.set_title(name, fontsize=9)
        a.set_xticks([])
        if ylim is None:
            lo, hi = a.get_ylim()
            a.set_ylim(min(lo, 0), max(hi, 0))
        elif ylim is not False:
            a.set_ylim(*ylim)
        axes.append(a)
    if title is not None:
        fig.suptitle(title)
    return fig, axes


def update_ps_representation(model: PortillaSimoncelli, axes: list[plt.Axes], representation: Tensor,
                             batch_idx: int = 0) -> list:
    """Put a new representation into the stem plots of :func:`plot_ps_representation` (for animations).

    Returns the updated artists (marker lines and stem lines).
    """
    artists = []
    stems = [a for a in axes if len(a.containers) == 1]
    for a, values in zip(stems, ps_summary(model, representation, batch_idx).values()):
        container = a.containers[0]
        x = np.arange(len(values))
        container.markerline.set_data(x, values)
        container.stemlines.set_segments([np.array([[xi, 0.0], [xi, vi]]) for xi, vi in zip(x, values)])
        artists += [container.markerline, container.stemlines]
    return artists
