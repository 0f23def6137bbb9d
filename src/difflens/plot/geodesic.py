"""Figures of a geodesic synthesis (plenoptic 1.1's ``po.synth.geodesic`` plots).

:func:`plot_loss` draws the path energy over iterations; :func:`plot_deviation_from_line`
shows how far the representations of the pixel fade, the geodesic and (optionally) a
natural video between the same anchors stray from the straight line joining the
anchors' representations.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
import torch
from matplotlib.axes import Axes
from torch import Tensor

from difflens.tools.straightness import deviation_from_line

if TYPE_CHECKING:  # pragma: no cover
    from difflens.synthesize.geodesic import Geodesic

__all__ = ["plot_loss", "plot_deviation_from_line"]


def plot_loss(geodesic: Geodesic, ax: Axes | None = None, **kwargs: Any) -> Axes:
    """Path energy (the synthesis loss) per iteration, on a log scale.

    Parameters
    ----------
    geodesic : Geodesic
        A synthesis that has run.
    ax : Axes, optional
        Where to draw (default ``plt.gca()``).
    **kwargs
        Passed to ``ax.semilogy``.

    Returns
    -------
    Axes
    """
    ax = plt.gca() if ax is None else ax
    ax.semilogy(geodesic.losses.numpy(), **kwargs)
    ax.set(xlabel="Synthesis iteration", ylabel="Loss")
    return ax


def plot_deviation_from_line(geodesic: Geodesic, natural_video: Tensor | None = None,
                             ax: Axes | None = None) -> Axes:
    """Distance along against distance from the representation's straight line, for each path.

    Both axes are in units of the distance between the anchors' representations; each
    marker is one frame. A model that linearises the transformation between the anchors
    keeps the natural video and the geodesic near the line, while the pixel fade strays.

    Parameters
    ----------
    geodesic : Geodesic
        The synthesis (its model, pixel fade and current geodesic are drawn).
    natural_video : Tensor, optional
        ``(T, C, H, W)`` frames between the same anchors, drawn for comparison.
    ax : Axes, optional
        Where to draw (default ``plt.gca()``).

    Returns
    -------
    Axes
    """
    ax = plt.gca() if ax is None else ax
    paths = [("pixelfade", geodesic.pixelfade, "g-o"), ("geodesic", geodesic.geodesic, "r-o")]
    if natural_video is not None:
        paths.append(("natural video", natural_video, "b-o"))
    for label, path, style in paths:
        with torch.no_grad():
            along, off = deviation_from_line(geodesic.model(path.detach()).detach().cpu())
        ax.plot(along.numpy(), off.numpy(), style, label=label)
    ax.set(xlabel="Distance along representation line", ylabel="Distance from representation line",
           title="Deviation from the straight line")
    ax.legend(loc=1)
    return ax
