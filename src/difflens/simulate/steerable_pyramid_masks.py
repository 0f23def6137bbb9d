"""The masks of a Fourier-domain steerable pyramid (numpy, float64, built once per pyramid).

Radial profiles are raised cosines in log-frequency, angular profiles
``cos(theta - pi k / (order + 1)) ** order``, both read from the lookup tables
matlabPyrTools, pyrtools and plenoptic use (linear interpolation into uniform tables),
so the masks, and the coefficients, equal theirs. :func:`pyramid_masks` returns every
mask in "unshifted" FFT order (DC at index 0) with the indices that crop one level's
spectrum to the next; :class:`~difflens.simulate.SteerablePyramidFreq` keeps them as
buffers.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import NamedTuple

import numpy as np
from torch import Tensor

__all__ = ["LevelMasks", "PyramidMasks", "crop_box", "ifftshift2", "interp_uniform", "polar_grid", "pyramid_masks",
           "radial_table", "unshifted_crop_index"]


class LevelMasks(NamedTuple):
    """One scale's masks (see :meth:`SteerablePyramidFreq.level_masks <difflens.simulate.SteerablePyramidFreq.level_masks>`).

    ``himask`` ``(H_i, W_i)``, ``anglemask`` ``(num_orientations, H_i, W_i)``, ``lomask`` on
    the next grid, ``crop_rows`` / ``crop_cols`` the next grid's indices in this one
    (``None`` without downsampling). Tensors from a pyramid, arrays from :func:`pyramid_masks`.
    """

    himask: Tensor | np.ndarray
    anglemask: Tensor | np.ndarray
    lomask: Tensor | np.ndarray
    crop_rows: Tensor | np.ndarray | None
    crop_cols: Tensor | np.ndarray | None



class _Level(NamedTuple):
    himask: np.ndarray
    anglemask: np.ndarray
    anglemask_recon: np.ndarray
    lomask: np.ndarray
    crop_rows: np.ndarray | None
    crop_cols: np.ndarray | None


class PyramidMasks(NamedTuple):
    """All masks of a pyramid (:func:`pyramid_masks`), unshifted FFT order, float64."""

    lo0mask: np.ndarray
    hi0mask: np.ndarray
    levels: list
    sizes: OrderedDict


def radial_table(width: float) -> tuple[np.ndarray, np.ndarray]:
    """Raised-cosine lookup table in log2-frequency: ``(x, cos(..)**2)``, flat beyond its ends."""
    n = 256
    x = np.pi * np.arange(-n - 1, 2) / (2 * n)
    y = np.cos(x) ** 2
    y[0], y[-1] = y[1], y[-2]
    x = -width / 2.0 + (2.0 * width / np.pi) * (x + np.pi / 4)
    return x, y


def interp_uniform(x: np.ndarray, x0: float, dx: float, table: np.ndarray) -> np.ndarray:
    """``np.interp(x, x0 + dx * arange(len(table)), table)``, without the binary search.

    Piecewise-linear through the table, constant beyond its ends.
    """
    t = (x - x0) / dx
    i = np.clip(np.floor(t), 0, table.size - 2).astype(np.intp)
    frac = np.clip(t - i, 0.0, 1.0)
    lo = table[i]
    return lo + frac * (table[i + 1] - lo)


def polar_grid(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Angle and log2-radius of the centred frequency grid of an ``shape`` image (in [-1, 1))."""
    h, w = shape
    xs = np.linspace(-1.0, 1.0, w + 1)[:-1]
    ys = np.linspace(-1.0, 1.0, h + 1)[:-1]
    xx, yy = np.meshgrid(xs, ys)
    angle = np.arctan2(yy, xx)
    radius = np.sqrt(xx ** 2 + yy ** 2)
    ch, cw = (math.ceil((s + 0.5) / 2) - 1 for s in shape)
    radius[ch, cw] = radius[ch, cw - 1]  # avoid log(0) at DC: the value next to it
    return angle, np.log2(radius)


def crop_box(dims: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) of the centred half-size block of a centred spectrum."""
    ctr = np.ceil((dims + 0.5) / 2).astype(int)
    lodims = np.ceil((dims - 0.5) / 2).astype(int)
    loctr = np.ceil((lodims + 0.5) / 2).astype(int)
    start = ctr - loctr
    return start, start + lodims


def unshifted_crop_index(n_big: int, start: int, n_small: int) -> np.ndarray:
    """Indices into an unshifted length-``n_big`` spectrum giving the unshifted centred crop.

    The centred crop ``fftshift(U)[start:start + n_small]``, ifftshifted again, equals
    ``U[index]``.
    """
    b = np.arange(n_small)
    return (start + (b + n_small // 2) % n_small - n_big // 2) % n_big


def ifftshift2(a: np.ndarray) -> np.ndarray:
    """``np.fft.ifftshift`` over the last two axes: centred to unshifted FFT order."""
    return np.fft.ifftshift(a, axes=(-2, -1))


def pyramid_masks(image_shape: tuple[int, int], num_scales: int, order: int, twidth: int, is_complex: bool,
                  downsample: bool) -> PyramidMasks:
    """Every mask of a steerable pyramid, in unshifted FFT order (float64 arrays).

    Parameters
    ----------
    image_shape
        ``(height, width)`` in pixels.
    num_scales
        Number of bandpass scales.
    order
        Angular order (``order + 1`` orientations).
    twidth
        Radial transition width, in octaves.
    is_complex
        Complex (analytic) bands: the forward angular masks are one-sided (times 2).
    downsample
        Crop each level's spectrum to half its size.

    Returns
    -------
    PyramidMasks
        ``lo0mask``, ``hi0mask`` (full grid); ``levels``: per scale the highpass mask, the
        forward and reconstruction angular masks ``(order + 1, H_i, W_i)``, the lowpass mask
        on the next grid and the crop indices; ``sizes``: the output size of each key.
    """
    xr, yr = radial_table(twidth)
    hi_table = np.sqrt(yr)                      # highpass profile
    lo_table = np.sqrt(1.0 - hi_table ** 2)     # its power complement
    lut = 1024
    xc = np.pi * np.arange(-(2 * lut + 1), lut + 2) / lut
    xc0, dxc = xc[0], np.pi / lut
    xr0, dxr = xr[0], (xr[-1] - xr[0]) / (xr.size - 1)
    n_or = order + 1
    const = (2.0 ** (2 * order)) * (math.factorial(order) ** 2) / (n_or * math.factorial(2 * order))
    cos_n = np.sqrt(const) * np.cos(xc) ** order
    if is_complex:
        wrapped = (xc + np.pi) % (2 * np.pi) - np.pi
        ang_fwd, ang_rec = 2.0 * cos_n * (np.abs(wrapped) < np.pi / 2), cos_n
    else:
        ang_fwd = ang_rec = cos_n

    angle, log_rad = polar_grid(image_shape)
    lo0 = ifftshift2(interp_uniform(log_rad, xr0, dxr, lo_table))
    hi0 = ifftshift2(interp_uniform(log_rad, xr0, dxr, hi_table))
    dims = np.array(image_shape)
    sizes = OrderedDict([("residual_highpass", tuple(image_shape))])
    levels = []
    for i in range(num_scales):
        xr0 = xr0 - 1.0  # one octave down
        sizes[i] = tuple(int(d) for d in dims)
        himask = interp_uniform(log_rad, xr0, dxr, hi_table)
        fwd = np.stack([interp_uniform(angle, xc0 + np.pi * b / n_or, dxc, ang_fwd) for b in range(n_or)])
        rec = fwd if ang_rec is ang_fwd else np.stack(
            [interp_uniform(angle, xc0 + np.pi * b / n_or, dxc, ang_rec) for b in range(n_or)])
        rows = cols = None
        if downsample:
            start, end = crop_box(dims)
            small = end - start
            rows = unshifted_crop_index(int(dims[0]), int(start[0]), int(small[0]))
            cols = unshifted_crop_index(int(dims[1]), int(start[1]), int(small[1]))
            log_rad = log_rad[start[0]:end[0], start[1]:end[1]]
            angle = angle[start[0]:end[0], start[1]:end[1]]
            dims = small
        lomask = ifftshift2(interp_uniform(log_rad, xr0, dxr, lo_table))
        levels.append(_Level(ifftshift2(himask), ifftshift2(fwd), ifftshift2(rec), lomask, rows, cols))
    sizes["residual_lowpass"] = tuple(int(d) for d in dims)
    return PyramidMasks(lo0, hi0, levels, sizes)
