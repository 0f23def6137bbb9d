"""Show image tensors without interpolation: ``imshow`` (panels in a grid), ``animshow`` (movies),
``pyrshow`` (steerable-pyramid coefficients).

Behaves like ``plenoptic.imshow`` / ``pyrtools.imshow``: every image element
becomes an integer number of screen pixels, panels are laid out in a grid
(``col_wrap``), and each panel's title gets two more lines::

    <title>
     range: [<vmin>, <vmax>]
     dims: [<H>, <W>] * <zoom>

so ``ax.get_title().split("\\n")[-2]`` is the range line (as in pyrtools).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["animshow", "imshow", "pyrshow"]

_DPI = 96  # figures are laid out in pixels at this dpi (as pyrtools' PyrFigure)
_AUTO_ZOOM_TARGET = 128  # zoom=None makes small images at least this many pixels on their long side
_VRANGE_RE = re.compile(r"^(auto|indep)([0-3]?)(row|col)?$")
_COMPLEX = {
    "rectangular": (np.real, np.imag, " real", " imaginary"),
    "polar": (np.abs, np.angle, " amplitude", " phase"),
    "logpolar": (lambda z: np.log(1 + np.abs(z)), np.angle, " log(1+amplitude)", " phase"),
}


def _to_numpy(x: Any) -> tuple[np.ndarray, float | None]:
    """Detached CPU NumPy copy (float16/bfloat16/bool/int -> float32), uint8/16 full scale."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        if x.is_complex():
            return x.to(torch.complex128).numpy(), None
        full = {torch.uint8: 255.0, torch.uint16: 65535.0}.get(x.dtype)
        if x.dtype != torch.float64:
            x = x.to(torch.float32)
        return x.numpy(), full
    arr = np.asarray(x)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(
            f"images must be tensors or numeric arrays; got {type(x).__name__} of dtype {arr.dtype}"
        )
    full = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(arr.dtype)
    if np.iscomplexobj(arr):
        return arr.astype(np.complex128), None
    return arr.astype(np.float64 if arr.dtype == np.float64 else np.float32), full


def _split(
    arr: np.ndarray,
    full: float | None,
    as_rgb: bool,
    batch_idx: int | None,
    channel_idx: int | None,
    where: str,
) -> list[tuple[np.ndarray, bool]]:
    """One array -> list of (panel, is_rgb); panels are (H, W) or (H, W, 3|4) for RGB(A)."""

    def pick(a: np.ndarray, axis: int, idx: int | None, what: str) -> np.ndarray:
        if idx is None:
            return a
        if not isinstance(idx, (int, np.integer)) or not -a.shape[axis] <= idx < a.shape[axis]:
            raise ValueError(
                f"{what} must be an int in [0, {a.shape[axis]}) for {where} of shape "
                f"{arr.shape}; got {idx!r}"
            )
        return np.take(a, [idx], axis=axis)

    def rgb(panel: np.ndarray) -> tuple[np.ndarray, bool]:
        panel = panel / full if full else panel
        return (panel if np.iscomplexobj(panel) else np.clip(panel, 0.0, 1.0)), True

    nd = arr.ndim
    if nd == 2:
        if as_rgb:
            raise ValueError(
                f"as_rgb=True needs 3 or 4 channels, but {where} is 2-D with shape {arr.shape}"
            )
        return [(arr, False)]
    if nd == 3:
        arr = pick(arr, 0, channel_idx, "channel_idx")
        if as_rgb:
            if arr.shape[0] in (3, 4):
                return [rgb(np.moveaxis(arr, 0, -1))]
            if arr.shape[-1] in (3, 4):
                return [rgb(arr)]
            raise ValueError(
                f"as_rgb=True needs 3 or 4 channels (first or last axis); {where} has "
                f"shape {arr.shape}"
            )
        return [(a, False) for a in arr]
    if nd == 4:
        arr = pick(pick(arr, 0, batch_idx, "batch_idx"), 1, channel_idx, "channel_idx")
        if as_rgb:
            if arr.shape[1] not in (3, 4):
                raise ValueError(
                    f"as_rgb=True needs 3 or 4 channels in dim 1; {where} has shape {arr.shape}"
                )
            return [rgb(np.moveaxis(b, 0, -1)) for b in arr]
        return [(c, False) for b in arr for c in b]
    raise ValueError(
        f"images must be 2-D (H, W), 3-D (C, H, W) or 4-D (B, C, H, W); {where} is {nd}-D "
        f"with shape {arr.shape}"
    )


def _collect(
    image: Any,
    title: Any,
    as_rgb: bool,
    batch_idx: int | None,
    channel_idx: int | None,
    plot_complex: str,
) -> tuple[list[np.ndarray], list[bool], list[str | None]]:
    """Everything imshow accepts -> flat lists of panels, RGB flags and user titles."""
    items = list(image) if isinstance(image, (list, tuple)) else [image]
    if not items:
        raise ValueError("nothing to show: image is an empty list")
    panels: list[tuple[np.ndarray, bool]] = []
    for k, item in enumerate(items):
        arr, full = _to_numpy(item)
        panels += _split(
            arr, full, as_rgb, batch_idx, channel_idx, f"image[{k}]" if len(items) > 1 else "image"
        )
    if title is None or isinstance(title, str):
        titles = [title] * len(panels)
    else:
        titles = list(title)
        if len(titles) != len(panels):
            raise ValueError(
                f"got {len(titles)} titles for {len(panels)} panels; give one title per panel "
                "(a 4-D tensor gives B x C panels) or a single string"
            )
        bad = [t for t in titles if t is not None and not isinstance(t, str)]
        if bad:
            raise TypeError(f"titles must be str or None; got {bad[0]!r}")
    if plot_complex not in _COMPLEX:
        raise ValueError(f"plot_complex must be one of {sorted(_COMPLEX)}; got {plot_complex!r}")
    f1, f2, s1, s2 = _COMPLEX[plot_complex]
    out_p, out_rgb, out_t = [], [], []
    for (p, is_rgb), t in zip(panels, titles):
        if np.iscomplexobj(p):
            out_p += [np.asarray(f1(p), dtype=np.float64), np.asarray(f2(p), dtype=np.float64)]
            out_rgb += [is_rgb, is_rgb]
            out_t += [None, None] if t is None else [t + s1, t + s2]
        else:
            out_p.append(p)
            out_rgb.append(is_rgb)
            out_t.append(t)
    return out_p, out_rgb, out_t


def _stat(values: np.ndarray, n: str) -> tuple[float, float]:
    """(vmin, vmax) of the finite ``values`` by plenoptic's rule number ``n`` ('0'..'3')."""
    v = values[np.isfinite(values)].astype(np.float64)
    if v.size == 0:
        return (math.nan, math.nan)
    if n == "0":
        m = float(max(abs(v.min()), abs(v.max())))
        return (-m, m)
    if n == "2":
        mu, sd = float(v.mean()), float(v.std())
        return (mu - 2 * sd, mu + 2 * sd)
    if n == "3":
        p1, p2 = (float(q) for q in np.percentile(v, [10, 90]))
        return (p1 - (p2 - p1) / 8.0, p2 + (p2 - p1) / 8.0)
    return (float(v.min()), float(v.max()))


def _ranges(
    panels: list[np.ndarray], rgb: list[bool], vrange: Any, n_cols: int
) -> list[tuple[float, float]]:
    n = len(panels)
    if isinstance(vrange, str):
        m = _VRANGE_RE.match(vrange)
        if m is None or (m.group(1) == "indep" and m.group(3)):
            raise ValueError(
                "vrange must be 'auto0'..'auto3', 'indep0'..'indep3', 'autoNrow', 'autoNcol' "
                f"or a (min, max) pair; got {vrange!r}"
            )
        kind, num, group = m.group(1), m.group(2) or "1", m.group(3)
        if kind == "indep":
            groups = [[i] for i in range(n)]
        elif group == "row":
            groups = [list(range(s, min(s + n_cols, n))) for s in range(0, n, n_cols)]
        elif group == "col":
            groups = [list(range(j, n, n_cols)) for j in range(n_cols)]
        else:
            groups = [list(range(n))]
        out: list[tuple[float, float]] = [(0.0, 1.0)] * n
        for g in groups:
            gray = [panels[i].ravel() for i in g if not rgb[i]]
            r = _stat(np.concatenate(gray), num) if gray else (0.0, 1.0)
            for i in g:
                out[i] = (0.0, 1.0) if rgb[i] else r
        return out
    pairs = list(vrange)
    if len(pairs) == 2 and all(np.ndim(x) == 0 for x in pairs):
        return [(float(pairs[0]), float(pairs[1]))] * n
    if len(pairs) == n and all(np.ndim(p) == 1 and len(p) == 2 for p in pairs):
        return [(float(a), float(b)) for a, b in pairs]
    raise ValueError(
        f"vrange must be a string, one (min, max) pair or one pair per panel ({n}); got {vrange!r}"
    )


def _zooms(panels: list[np.ndarray], zoom: float | None) -> tuple[list[float], int, int]:
    """Per-panel zooms that show every panel at the largest size; returns (zooms, H_px, W_px)."""
    shapes = [p.shape[:2] for p in panels]
    mh, mw = max(s[0] for s in shapes), max(s[1] for s in shapes)
    factors = []
    for h, w in shapes:
        if mh % h or mw % w or mh // h != mw // w:
            raise ValueError(
                f"panels of different sizes must be integer multiples of the largest ({mh}x{mw}) "
                f"by the same factor in height and width; got sizes {sorted(set(shapes))}"
            )
        factors.append(mh // h)
    if zoom is None:
        zoom = max(1, _AUTO_ZOOM_TARGET // max(mh, mw))
    if zoom <= 0 or (zoom > 1 and zoom != int(zoom)):
        raise ValueError(f"zoom must be a positive integer or 1/d; got {zoom!r}")
    if not (float(zoom * mh).is_integer() and float(zoom * mw).is_integer()):
        raise ValueError(f"zoom * image size must be whole pixels; got zoom={zoom} for {mh}x{mw}")
    return [zoom * f for f in factors], int(zoom * mh), int(zoom * mw)


def _fmt_zoom(z: float) -> str:
    return str(int(z)) if float(z).is_integer() else f"{z:g}"


def _full_title(
    t: str | None, r: tuple[float, float], shape: tuple[int, ...], z: float
) -> str | None:
    if t is None:
        return None
    return (
        f"{t}\n range: [{r[0]:.1e}, {r[1]:.1e}] \n dims: [{shape[0]}, {shape[1]}] * {_fmt_zoom(z)}"
    )


def _n_cols(n: int, col_wrap: int | None) -> int:
    if col_wrap is None:
        return n
    if isinstance(col_wrap, bool) or not isinstance(col_wrap, (int, np.integer)) or col_wrap < 1:
        raise ValueError(f"col_wrap must be a positive int or None; got {col_wrap!r}")
    return min(int(col_wrap), n)


def _layout(n: int, col_wrap: int | None, ph: int, pw: int, titles: list[str | None]):
    """New figure with ``n`` pixel-exact axes of ph x pw pixels and room for the titles."""
    import matplotlib.pyplot as plt

    n_cols = _n_cols(n, col_wrap)
    n_rows = math.ceil(n / n_cols)
    fs = float(np.clip(12.0 * ph / 256.0, 7.0, 14.0))
    px_per_pt = _DPI / 72.0
    lines = [t.split("\n") for t in titles if t is not None]
    title_px = (max(len(ls) for ls in lines) * fs * px_per_pt * 1.2 + 4) if lines else 0.0
    text_w = max((len(s) for ls in lines for s in ls), default=0) * fs * px_per_pt * 0.6
    col_gap = max(10.0, text_w - pw + 10.0)
    side = max(0.0, (text_w - pw) / 2.0)
    row_gap = 10.0
    fig_w = 2 * side + n_cols * pw + (n_cols - 1) * col_gap
    fig_h = n_rows * (title_px + ph) + (n_rows - 1) * row_gap
    fig = plt.figure(figsize=(fig_w / _DPI, fig_h / _DPI), dpi=_DPI)
    axes = []
    for k in range(n):
        i, j = divmod(k, n_cols)
        left = side + j * (pw + col_gap)
        top = i * (title_px + ph + row_gap) + title_px
        ax = fig.add_axes(
            (left / fig_w, (fig_h - top - ph) / fig_h, pw / fig_w, ph / fig_h),
            frameon=False,
            xticks=[],
            yticks=[],
        )
        axes.append(ax)
    return fig, axes, n_cols, fs


def _draw(data, ax_list, zooms, ranges, titles, rgb, cmap, fs, kwargs):
    kwargs = {"interpolation": "none", **kwargs}
    for p, ax, z, r, t, is_rgb in zip(data, ax_list, zooms, ranges, titles, rgb):
        clim = (0.0, 1.0) if any(math.isnan(v) for v in r) else r
        if is_rgb:
            ax.imshow(p, **kwargs)
        else:
            ax.imshow(p, cmap=cmap, vmin=clim[0], vmax=clim[1], **kwargs)
        ax.set_xticks([])
        ax.set_yticks([])
        full = _full_title(t, r, p.shape[:2], z)
        if full is not None:
            ax.set_title(full, fontsize=fs, pad=2)


def _show(
    frames: list[np.ndarray],
    stacks: list[np.ndarray],
    rgb: list[bool],
    user_titles: list[str | None],
    vrange: Any,
    zoom: float | None,
    col_wrap: int | None,
    ax: Any,
    cmap: Any,
    kwargs: dict,
):
    """Draw ``frames`` (one array per panel) with colour limits computed from ``stacks``."""
    if cmap is None:
        cmap = "RdBu_r" if isinstance(vrange, str) and "0" in vrange else "gray"
    if ax is not None:
        if len(frames) != 1:
            raise ValueError(
                f"ax= can show one panel only; got {len(frames)} panels (leave ax=None for a grid)"
            )
        h, w = frames[0].shape[:2]
        if zoom is None:
            zoom = min(ax.bbox.height / h, ax.bbox.width / w)
        zooms, fig, axes, n_cols = [zoom], ax.figure, [ax], 1
        fs = float(np.clip(12.0 * ax.bbox.height / 256.0, 7.0, 14.0))
        ranges = _ranges(stacks, rgb, vrange, n_cols)
    else:
        zooms, ph, pw = _zooms(frames, zoom)
        n_cols = _n_cols(len(frames), col_wrap)
        ranges = _ranges(stacks, rgb, vrange, n_cols)
        drafts = [
            _full_title(t, r, p.shape[:2], z)
            for t, r, p, z in zip(user_titles, ranges, frames, zooms)
        ]
        fig, axes, n_cols, fs = _layout(len(frames), col_wrap, ph, pw, drafts)
    _draw(frames, axes, zooms, ranges, user_titles, rgb, cmap, fs, kwargs)
    return fig, axes


def imshow(
    image: Any,
    vrange: str | tuple[float, float] | Sequence[tuple[float, float]] = "indep1",
    zoom: float | None = None,
    title: str | Sequence[str | None] | None = "",
    col_wrap: int | None = None,
    ax: Any = None,
    cmap: Any = None,
    plot_complex: str = "rectangular",
    batch_idx: int | None = None,
    channel_idx: int | None = None,
    as_rgb: bool = False,
    **kwargs: Any,
):
    """Show images as a grid of panels, each array element an integer number of screen pixels.

    Parameters
    ----------
    image: a tensor or array, or a list of them. Each is 2-D (H, W): one panel;
        3-D (C, H, W): C panels; or 4-D (B, C, H, W): B x C panels (batch-major).
        Tensors are detached and moved to the CPU; float16/bfloat16/int/bool are
        shown as float32; complex ones as two panels (see ``plot_complex``).
        Panels of different sizes must be integer multiples of the largest.
    vrange: colour limits. ``'auto0'``: one symmetric range (-M, M), M the largest
        |value| over all panels; ``'auto1'``: overall (min, max); ``'auto2'``:
        mean -/+ 2 std over all panels; ``'auto3'``: 10th/90th percentiles widened
        by 1/8 of their gap; ``'indep0'``..``'indep3'``: the same per panel;
        ``'autoNrow'``/``'autoNcol'``: shared per grid row/column; a (min, max) pair
        for all panels or one pair per panel. NaN/inf values are ignored.
    zoom: screen pixels per element of the largest panel: an int >= 1 or 1/d.
        ``None``: 1 for images of 128+ pixels, else the largest integer keeping
        the long side <= 128 pixels (plenoptic always uses 1).
    title: a string for every panel or one per panel (None entries allowed).
        Each title gets a " range: [vmin, vmax] " line and a " dims: [H, W] * zoom "
        line, as in pyrtools. ``None``: no titles at all.
    col_wrap: panels per row (``None``: one row). ax: draw one panel into this
        existing axes (not resized). cmap: colormap; ``None`` gives 'RdBu_r' for
        the '*0' vrange modes and 'gray' otherwise.
    plot_complex: 'rectangular' (real, imaginary), 'polar' (amplitude, phase) or
        'logpolar' (log(1 + amplitude), phase).
    batch_idx, channel_idx: show only this batch element / channel of 3-D/4-D inputs.
    as_rgb: treat 3 or 4 channels as RGB(A) colour (floats clipped to [0, 1],
        uint8/uint16 scaled); 3-D arrays may be (C, H, W) or (H, W, C).
    **kwargs: passed to ``Axes.imshow`` (``interpolation`` defaults to 'none').

    Returns
    -------
    The matplotlib Figure; ``fig.axes`` holds exactly one axes per panel, in order.

    Examples
    --------
    A batch of 2 two-channel images is 4 panels, here 2 to a row:

    >>> import matplotlib.pyplot as plt
    >>> import torch
    >>> from difflens.plot import imshow
    >>> images = torch.rand(2, 2, 16, 16, generator=torch.Generator().manual_seed(0))
    >>> fig = imshow(images, col_wrap=2)
    >>> len(fig.axes)
    4
    >>> plt.close(fig)
    """
    panels, rgb, titles = _collect(image, title, as_rgb, batch_idx, channel_idx, plot_complex)
    fig, _ = _show(panels, panels, rgb, titles, vrange, zoom, col_wrap, ax, cmap, kwargs)
    return fig


def animshow(
    video: Any,
    framerate: float = 2.0,
    repeat: bool = False,
    vrange: str | tuple[float, float] | Sequence[tuple[float, float]] = "indep1",
    zoom: float | None = None,
    title: str | Sequence[str | None] | None = "",
    col_wrap: int | None = None,
    ax: Any = None,
    cmap: Any = None,
    plot_complex: str = "rectangular",
    batch_idx: int | None = None,
    channel_idx: int | None = None,
    as_rgb: bool = False,
    **kwargs: Any,
):
    """Animate videos or a sequence of images: returns a ``matplotlib.animation.FuncAnimation``.

    ``video`` is, as in plenoptic 1.4's ``animshow``, a 5-D ``(batch, channel, time, height,
    width)`` tensor or array, or a list of them (different heights and widths allowed, the
    same number of frames): each batch element and channel is one panel (with ``as_rgb``,
    3 or 4 channels are one colour panel), and frame ``t`` shows ``video[:, :, t]``. It may
    also be a list of frames, each anything :func:`imshow` accepts (every frame giving the
    same panels), or a time-first ``(time, height, width)`` or ``(time, channel, height,
    width)`` tensor/array. Colour limits (``vrange``) are computed over all frames, so they
    stay fixed; titles show that range. ``framerate`` is in frames per second. Other
    arguments as :func:`imshow` (``batch_idx`` / ``channel_idx`` pick one batch element /
    channel). Save with ``difflens.plot.save_animation(anim, path)`` (GIF via Pillow, or
    MP4). The figure is closed so notebooks do not also show a still image.

    Raises
    ------
    ValueError
        A tensor that is not 3-, 4- or 5-D (the message names the accepted layouts), videos
        of different lengths, frames giving different panels, an empty input, a
        non-positive ``framerate``.

    Examples
    --------
    Two videos of 6 frames (batch 2, one channel) are two panels:

    >>> import torch
    >>> from difflens.plot import animshow
    >>> video = torch.rand(2, 1, 6, 16, 16, generator=torch.Generator().manual_seed(0))
    >>> anim = animshow(video)
    >>> len(anim._fig.axes)
    2
    """
    import matplotlib.pyplot as plt
    from matplotlib.animation import FuncAnimation

    if framerate <= 0:
        raise ValueError(f"framerate must be positive (frames per second); got {framerate!r}")
    seq = _frames(video)
    per_frame = []
    for t, fr in enumerate(seq):
        p, rgb, titles = _collect(fr, title, as_rgb, batch_idx, channel_idx, plot_complex)
        if per_frame and [q.shape for q in p] != [q.shape for q in per_frame[0][0]]:
            raise ValueError(
                f"frame {t} gives panels of shapes {[q.shape for q in p]}, but frame 0 gives "
                f"{[q.shape for q in per_frame[0][0]]}; every frame must give the same panels"
            )
        per_frame.append((p, rgb, titles))
    _, rgb, titles = per_frame[0]
    stacks = [np.stack([f[0][i] for f in per_frame]) for i in range(len(rgb))]
    fig, axes = _show(
        per_frame[0][0], stacks, rgb, titles, vrange, zoom, col_wrap, ax, cmap, kwargs
    )
    artists = [a.images[-1] for a in axes]

    def update(t: int):
        for art, stack in zip(artists, stacks):
            art.set_data(stack[t])
        return artists

    anim = FuncAnimation(
        fig, update, frames=len(seq), interval=1000.0 / framerate, blit=False, repeat=repeat
    )
    plt.close(fig)
    return anim


_VIDEO_LAYOUTS = ("a 5-D (batch, channel, time, height, width) video (plenoptic's layout) or a list of them, "
                  "a list of frames, or a time-first (time, height, width) or (time, channel, height, width) "
                  "tensor/array")


def _frames(video: Any) -> list:
    """:func:`animshow`'s input as a list of frames (each something :func:`imshow` accepts)."""
    def ndim(x: Any) -> int | None:
        return x.ndim if isinstance(x, (torch.Tensor, np.ndarray)) else None

    if isinstance(video, (list, tuple)):
        if not video:
            raise ValueError("video is empty: nothing to animate")
        if all(ndim(v) == 5 for v in video):  # plenoptic: a list of (B, C, T, H, W) videos
            lengths = [v.shape[2] for v in video]
            if len(set(lengths)) > 1:
                raise ValueError(f"the videos have {lengths} frames (dim 2 of (batch, channel, time, height, "
                                 "width)); they must all have the same number")
            return [[v[:, :, t] for v in video] for t in range(lengths[0])]
        if any(ndim(v) == 5 for v in video):
            raise ValueError(f"video mixes 5-D videos with other items (shapes "
                             f"{[tuple(getattr(v, 'shape', ())) for v in video]}); animshow takes {_VIDEO_LAYOUTS}")
        return list(video)
    nd = ndim(video)
    if nd is None or nd not in (3, 4, 5):
        shape = tuple(video.shape) if nd is not None else None
        raise ValueError(f"animshow takes {_VIDEO_LAYOUTS}; got {type(video).__name__}"
                         + (f" of shape {shape} ({nd}-D)" if shape is not None else ""))
    if video.shape[2 if nd == 5 else 0] == 0:
        raise ValueError(f"video has no frames (shape {tuple(video.shape)}): nothing to animate")
    if nd == 5:
        return [video[:, :, t] for t in range(video.shape[2])]
    return [video[t] for t in range(video.shape[0])]


def display_filters(model: Any, vrange: tuple[float, float] | str = "indep0", zoom: float | None = 5.0,
                    title: str | list[str] | None = None, col_wrap: int | None = None, **kwargs: Any) -> Any:
    """Show a front-end model's kernels with :func:`imshow`; returns the figure.

    plenoptic's ``model.display_filters()`` (models hold no plotting code in
    difflens). ``model`` is any :mod:`difflens.simulate` front end (it has
    ``filter_weights()``); ``title`` defaults to one per kernel.
    """
    if not hasattr(model, "filter_weights"):
        raise TypeError(f"{type(model).__name__} has no filter_weights(); display_filters shows the kernels of "
                        "difflens.simulate front-end models")
    weights, titles = model.filter_weights()
    return imshow(weights, title=titles if title is None else title, col_wrap=col_wrap, zoom=zoom,
                  vrange=vrange, **kwargs)


def pyrshow(pyr_coeffs: Any, vrange: str | tuple[float, float] = "indep1", zoom: float = 1,
            show_residuals: bool = True, cmap: Any = None, plot_complex: str = "rectangular",
            batch_idx: int = 0, channel_idx: int = 0, **kwargs: Any) -> Any:
    """Show steerable-pyramid coefficients: one row per scale, one column per orientation.

    plenoptic's ``po.pyrshow`` (its layout is pyrtools'): the bands in
    ``(scale, orientation)`` order with titles ``"height SS, band BB"``, then the
    residual highpass and lowpass; every panel is drawn at the size of the largest, with
    its zoom in the title. Complex bands give two panels each (see ``plot_complex``).

    Parameters
    ----------
    pyr_coeffs
        Coefficients from :class:`difflens.simulate.SteerablePyramidFreq` (plenoptic 1.4
        layout: scale -> ``(B, C, O, H, W)``) or a dict keyed by ``(scale, orientation)``
        tuples (plenoptic 1.1 / pyrtools layout, 4-D values) plus the residual names.
    vrange
        As in :func:`imshow`, plus ``"auto0pyr"``..``"auto3pyr"``: one range per scale (row),
        each residual its own.
    zoom
        Screen pixels per element of the largest band (an int >= 1 or ``1/d``).
    show_residuals
        Show the residual highpass and lowpass too (default ``True``).
    cmap
        Colormap (default: :func:`imshow`'s).
    plot_complex
        ``"rectangular"``, ``"polar"`` or ``"logpolar"`` (see :func:`imshow`).
    batch_idx, channel_idx
        Which batch element and channel to show (ints).
    **kwargs
        Passed to :func:`imshow` (e.g. ``col_wrap``) and on to ``Axes.imshow``.

    Returns
    -------
    matplotlib.figure.Figure
        One axes per panel, in order.

    Raises
    ------
    TypeError
        ``batch_idx`` or ``channel_idx`` not an int.
    ValueError
        Bands whose sizes are not the largest band's divided by a power of 2 (image sizes
        not divisible by ``2**num_scales``; the message lists the sizes found).

    Examples
    --------
    >>> import torch
    >>> from difflens.simulate import SteerablePyramidFreq
    >>> pyr = SteerablePyramidFreq((32, 32), height=2, order=1)
    >>> fig = pyrshow(pyr(torch.rand(1, 1, 32, 32)))
    >>> len(fig.axes)  # 2 scales x 2 orientations + 2 residuals
    6
    """
    for name, idx in (("batch_idx", batch_idx), ("channel_idx", channel_idx)):
        if isinstance(idx, bool) or not isinstance(idx, (int, np.integer)):
            raise TypeError(f"{name} must be an int but got {idx!r}")
    bands, residuals = {}, {}
    for key, value in pyr_coeffs.items():
        arr, _ = _to_numpy(value)
        if isinstance(key, str):
            residuals[key] = arr[batch_idx, channel_idx]
        elif isinstance(key, tuple):
            bands[key] = arr[batch_idx, channel_idx]
        else:
            for o in range(arr.shape[2]):
                bands[(key, o)] = arr[batch_idx, channel_idx, o]
    if not bands and not (show_residuals and residuals):
        raise ValueError("nothing to show: pyr_coeffs has no bands (and residuals are hidden)")
    keys = sorted(bands)
    images = [bands[k] for k in keys]
    titles = [f"height {s:02d}, band {b:02d}" for s, b in keys]
    n_orient = max((k[1] for k in keys), default=0) + 1
    if show_residuals:
        for key in ("residual_highpass", "residual_lowpass"):
            if key in residuals:
                images.append(residuals[key])
                titles.append(key.replace("_", " "))
    shapes = [im.shape for im in images]
    big = max(shapes)
    if any(big[0] % s[0] or big[1] % s[1] or big[0] // s[0] != big[1] // s[1]
           or (big[0] // s[0]) & (big[0] // s[0] - 1) for s in shapes):
        raise ValueError("to show pyramid coefficients at one size, the image height and width must "
                         "be divisible by 2 once per scale (and once more for the residual lowpass); "
                         f"found band sizes {[tuple(s) for s in shapes]}")
    panels, _, panel_titles = _collect(images, titles, False, None, None, plot_complex)
    per_band = len(panels) // len(images)  # 2 when complex
    n_cols = kwargs.pop("col_wrap", None) or n_orient * per_band
    if isinstance(vrange, str) and vrange.endswith("pyr"):
        num = vrange[4:-3] or "1"
        if not vrange.startswith("auto") or num not in "0123":
            raise ValueError(f"vrange ending in 'pyr' must be 'auto0pyr'..'auto3pyr'; got {vrange!r}")
        n_band_panels = len(keys) * per_band
        ranges = []
        for start in range(0, n_band_panels, n_cols):
            row = panels[start:min(start + n_cols, n_band_panels)]
            ranges += [_stat(np.concatenate([p.ravel() for p in row]), num)] * len(row)
        ranges += [_stat(p, num) for p in panels[n_band_panels:]]
        vrange = ranges
    return imshow(panels, vrange=vrange, zoom=zoom, title=panel_titles, col_wrap=n_cols, cmap=cmap,
                  **kwargs)
