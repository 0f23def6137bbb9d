"""The panel layout plenoptic's synthesis figures share: ``fig``, ``axes_idx``, ``width_ratios``, ``included_plots``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

__all__ = ["check_panel_names", "synthesis_axes"]


def check_panel_names(values: Any, allowed: Sequence[str], what: str) -> None:
    """Raise ``ValueError`` naming every key of ``values`` (a list or a mapping) not in ``allowed`` or ``"misc"``."""
    names = list(values.keys()) if isinstance(values, Mapping) else list(values)
    permitted = (*allowed, "misc")
    bad = [v for v in names if v not in permitted]
    if bad:
        raise ValueError(f"{what} contained value(s) {bad}! Only {list(permitted)} are permissible!")


def synthesis_axes(fig: Any, axes_idx: Mapping[str, Any] | None, figsize: Any, panels: Sequence[str],
                   included_plots: Sequence[str], width_ratios: Mapping[str, float] | None,
                   default_widths: Mapping[str, float]) -> tuple[Any, list, dict]:
    """Figure, its axes and ``axes_idx`` (panel name -> index into ``fig.axes``) for a status figure.

    Parameters
    ----------
    fig
        ``None``: a new one-row figure with one axes per included panel, widths from
        ``width_ratios`` (over ``default_widths``), 5 inches tall. Otherwise the panels are
        drawn into ``fig.axes`` at the indices ``axes_idx`` gives (missing ones: the first free).
    axes_idx, figsize, included_plots, width_ratios
        As plenoptic's ``plot_synthesis_status``; the names are checked.
    panels, default_widths
        The panel names this figure knows, in order, and their default relative widths.

    Returns
    -------
    (fig, axes, axes_idx)
        ``axes_idx["misc"]`` lists the axes no panel uses.
    """
    axes_idx, width_ratios = dict(axes_idx or {}), dict(width_ratios or {})
    for values, what in ((included_plots, "included_plots"), (width_ratios, "width_ratios"),
                         (axes_idx, "axes_idx")):
        check_panel_names(values, panels, what)
    chosen = [p for p in panels if p in included_plots]
    if not chosen:
        raise ValueError(f"included_plots must name at least one of {list(panels)}, got {list(included_plots)!r}")
    used = {i for v in axes_idx.values() for i in (v if hasattr(v, "__iter__") else [v])}
    for p in chosen:
        if p not in axes_idx:
            free = next(i for i in range(len(chosen) + len(used) + 1) if i not in used)
            axes_idx[p] = free
            used.add(free)
    if fig is None:
        widths = {**default_widths, **width_ratios}
        ratios = np.array([widths[p] for p in chosen], dtype=float)
        if figsize is None:
            figsize = ((ratios * 5).sum() + ratios.sum() - 1, 5)
        fig, axes = plt.subplots(1, len(chosen), figsize=figsize,
                                 gridspec_kw={"width_ratios": ratios / ratios.sum()}, squeeze=False)
        axes = list(axes[0])
    else:
        axes = list(fig.axes)
        missing = [p for p in chosen if not (isinstance(axes_idx[p], int) and axes_idx[p] < len(axes))]
        if missing:
            raise ValueError(f"fig has {len(axes)} axes; axes_idx gives no valid index for {missing}")
    axes_idx["misc"] = [i for i in range(len(fig.axes)) if i not in used]
    return fig, axes, axes_idx
