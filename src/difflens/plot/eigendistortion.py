"""Figures of eigendistortions: the image plus a scaled distortion, and the spectrum.

Images (an input whose distortions are 2-D or 3-D, i.e. ``(H, W)`` or ``(C, H, W)``)
are drawn with :func:`difflens.plot.imshow`; any other input (e.g. a ``(3,)`` state) is
drawn as lines over its flattened elements.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
import torch
from torch import Tensor

if TYPE_CHECKING:  # pragma: no cover
    from difflens.synthesize.eigendistortion import Eigendistortion

__all__ = ["display_eigendistortion", "display_eigendistortion_all", "plot_eigenvalues"]


def _check(eig: Eigendistortion) -> None:
    if eig.eigendistortions is None:
        raise ValueError("nothing to display: call synthesize() on the Eigendistortion first")


def _is_image(eig: Eigendistortion) -> bool:
    return len(eig.dist_shape) in (2, 3)


def _panel(eig: Eigendistortion, x: Tensor) -> Tensor:
    """``x`` (dist_shape) as one imshow panel batch ``(1, C, H, W)``."""
    x = x.detach().cpu()
    return x.reshape(1, 1, *x.shape) if x.ndim == 2 else x.unsqueeze(0)


def _lines(ax, series: list[tuple[Tensor, str]], title: str) -> None:
    for values, label in series:
        ax.plot(values.detach().cpu().flatten().float().numpy(), marker="o", label=label)
    ax.set(xlabel="input element (flattened)", title=title)
    ax.legend(fontsize="small")


def display_eigendistortion(eig: Eigendistortion, eigenindex: int = 0, alpha: float = 5.0,
                            process_image: Callable[[Tensor], Tensor] | None = None,
                            ax: Any = None, clamp: tuple[float, float] | None = (0.0, 1.0),
                            **kwargs: Any):
    """Show ``image + alpha * eigendistortion[eigenindex]``; returns the figure.

    Parameters
    ----------
    eig: a synthesized :class:`~difflens.synthesize.Eigendistortion`.
    eigenindex: rank in the spectrum (0 = largest, -1 = smallest); must be synthesized.
    alpha: scale of the distortion. process_image: applied before clamping (e.g. to undo
        a normalisation). clamp: display range to clip to (``None``: no clipping).
    ax: an existing axes to draw into. kwargs: passed to :func:`difflens.plot.imshow`
        (images) or ``Axes.plot`` (other inputs).
    """
    _check(eig)
    row = eig.index_of(eigenindex)
    image = eig.image.detach().cpu().reshape(eig.dist_shape)
    shown = image + alpha * eig.eigendistortions[row].cpu()
    if process_image is not None:
        shown = process_image(shown)
    if clamp is not None:
        shown = shown.clamp(*clamp)
    title = f"{alpha:g} * Eigendistortion[{eigenindex}]"
    if _is_image(eig):
        from difflens.plot.display import imshow

        return imshow(_panel(eig, shown), ax=ax, title=title, **kwargs)
    if ax is None:
        ax = plt.figure(figsize=(5, 3.5)).add_subplot()
    _lines(ax, [(image, "image"), (shown, title)], title)
    return ax.figure


def display_eigendistortion_all(eig: Eigendistortion, eigenindex: int | Sequence[int] = (0, -1),
                                alpha: float | Sequence[float] = 5.0,
                                process_image: Callable[[Tensor], Tensor] | None = None,
                                clamp: tuple[float, float] | None = (0.0, 1.0),
                                suptitle: str = "Eigendistortions", **kwargs: Any):
    """The image, each eigendistortion alone (top row) and added to the image (bottom row).

    ``eigenindex`` and ``alpha`` are one value or one per distortion. For images the
    figure comes from :func:`difflens.plot.imshow` (the first panel of the top row is
    hidden); other inputs get one line plot per distortion. Returns the figure.
    """
    _check(eig)
    idx = [eigenindex] if isinstance(eigenindex, int) else list(eigenindex)
    alphas = [alpha] * len(idx) if isinstance(alpha, (int, float)) else list(alpha)
    if len(alphas) != len(idx):
        raise ValueError(f"alpha must be one number or one per eigenindex: got {len(alphas)} "
                         f"values for {len(idx)} eigenindices")
    image = eig.image.detach().cpu().reshape(eig.dist_shape)
    proc = process_image or (lambda x: x)
    dists = [eig.eigendistortions[eig.index_of(i)].cpu() for i in idx]
    shown = [proc(image + a * d) for a, d in zip(alphas, dists)]
    if clamp is not None:
        shown = [s.clamp(*clamp) for s in shown]
    if _is_image(eig):
        from difflens.plot.display import imshow

        panels = [_panel(eig, torch.zeros_like(image))] + [_panel(eig, d) for d in dists]
        panels += [_panel(eig, proc(image))] + [_panel(eig, s) for s in shown]
        titles = [""] + [f"Eigendistortion[{i}]" for i in idx] + ["Original image"]
        titles += [f"{a:g} * Eigendistortion[{i}]" for a, i in zip(alphas, idx)]
        fig = imshow(panels, title=titles, col_wrap=len(idx) + 1, **kwargs)
        fig.axes[0].set_visible(False)
    else:
        fig, axes = plt.subplots(1, len(idx), figsize=(4.5 * len(idx), 3.5), squeeze=False)
        for ax, i, a, d, s in zip(axes[0], idx, alphas, dists, shown):
            _lines(ax, [(image, "image"), (d, "distortion"), (s, f"image + {a:g} * distortion")],
                   f"Eigendistortion[{i}] (eigenvalue {float(eig.eigenvalues[eig.index_of(i)]):.3g})")
        fig.tight_layout()
    fig.suptitle(suptitle, y=1.02, va="bottom")
    return fig


def plot_eigenvalues(eig: Eigendistortion, ax: Any = None, **kwargs: Any):
    """Eigenvalues against their rank on a log axis (the whole spectrum after ``"exact"``).

    Values at or below zero (rounding of a singular Fisher matrix) are drawn at the
    smallest positive value shown. Returns the figure.
    """
    _check(eig)
    if ax is None:
        ax = plt.figure(figsize=kwargs.pop("figsize", (5, 3.5))).add_subplot()
    vals = eig.eigenvalues.detach().cpu().double()
    pos = vals[vals > 0]
    floor = float(pos.min()) if len(pos) else 1.0
    style = {"marker": "o" if len(vals) <= 50 else None}
    style.update(kwargs)
    ax.semilogy(eig.eigenindex.cpu().numpy(), vals.clamp(min=floor).numpy(), **style)
    ax.set(xlabel="eigenindex (0 = largest)", ylabel="eigenvalue of JᵀJ",
           title=f"Fisher spectrum ({eig.info.get('method', '?')})")
    return ax.figure
