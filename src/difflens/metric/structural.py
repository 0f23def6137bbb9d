"""Structural similarity: SSIM (Wang et al. 2004), its map, and multi-scale SSIM (Wang et al. 2003).

The same values as plenoptic 1.4.0's ``ssim`` / ``ssim_map`` / ``ms_ssim``: an 11x11
Gaussian window (std 1.5 pixels, ``min(11, height, width)`` taps for small images),
valid (unpadded) averages unless ``pad`` is given, ``C1 = 0.01**2``, ``C2 = 0.03**2``.
The five local averages (two means, two second moments and the cross moment) run as one
stacked correlation, by FFT (:func:`difflens.tools.conv.correlate2d`) instead of five
direct 11x11 convolutions, on mean-shifted images (float32 stays within ~1e-6 of float64).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from difflens.tools.conv import SpectrumCache, correlate2d, same_padding
from difflens.tools.validate import check_image_pair

__all__ = ["MS_SSIM_POWER_FACTORS", "gaussian_window_1d", "ms_ssim", "ssim", "ssim_components", "ssim_map"]

C1 = 0.01 ** 2
C2 = 0.03 ** 2
WINDOW_SIZE = 11
WINDOW_STD = 1.5
#: Wang et al. (2003)'s exponents of the five scales, fine to coarse.
MS_SSIM_POWER_FACTORS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)

# spectra of the window at the image sizes last used (a cache: results never depend on it)
_WINDOW_SPECTRA = SpectrumCache(max_entries=8)

PadMode = Literal[False, "constant", "reflect", "replicate", "circular"]


def gaussian_window_1d(size: int, std: float = WINDOW_STD, dtype: torch.dtype = torch.float32,
                       device: torch.device | str | None = None) -> Tensor:
    """``size`` taps of a Gaussian of standard deviation ``std`` (pixels), summing to one.

    Its outer product with itself is plenoptic's ``circular_gaussian2d(size, std)``.

    Examples
    --------
    >>> w = gaussian_window_1d(11)
    >>> w.shape, round(float(w.sum()), 6)
    (torch.Size([11]), 1.0)
    """
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-x ** 2 / (2 * std ** 2))
    return (g / g.sum()).to(dtype=dtype, device=device)


def _warn_range(images: Sequence[Tensor], func_name: str) -> None:
    lo = min(float(x.detach().min()) for x in images)
    hi = max(float(x.detach().max()) for x in images)
    if lo < 0 or hi > 1:
        warnings.warn(f"Image range falls outside [0, 1] (values in [{lo:.4g}, {hi:.4g}]). {func_name} "
                      "output may not make sense.", stacklevel=3)


def _check(img1: Tensor, img2: Tensor, func_name: str, warn: bool = True) -> tuple[int, ...]:
    shape = check_image_pair(img1, img2, func_name)
    if warn:
        _warn_range((img1, img2), func_name)
    if warn and shape[1] > 1:
        warnings.warn(f"{func_name} was designed for grayscale images and here it will be computed separately "
                      "for each channel (so channels are treated in the same way as batches).", stacklevel=3)
    return shape


def _average(stacked: Tensor, size: int, h: int, w: int) -> Tensor:
    """Valid windowed averages of ``(N, 1, h, w)`` maps: ``(N, 1, h - size + 1, w - size + 1)``.

    The valid part of a circular same-size correlation (no wrap-around reaches it), by FFT
    from 16x16 images up (:func:`difflens.tools.conv.choose_method`), directly below.
    """
    g = gaussian_window_1d(size, dtype=stacked.dtype, device=stacked.device)
    out = correlate2d(stacked, torch.outer(g, g)[None, None], pad_mode="circular", cache=_WINDOW_SPECTRA)
    top = (size - 1) // 2
    return out[..., top:top + h - size + 1, top:top + w - size + 1]


class _FixedImageMoments:
    """The last fixed image's centred copy, windowed mean and variance (a memo, never a result source).

    MAD competition and metamer-style loops compare one fixed reference image with a changing
    one; its two maps need not be recomputed each call. The entry holds the image itself, so it
    is reused only for that very tensor object, unchanged (same version counter and storage),
    at the same shape and window size; anything else recomputes.
    """

    def __init__(self) -> None:
        self.key: tuple | None = None
        self.image: Tensor | None = None
        self.value: tuple[Tensor, Tensor, Tensor, Tensor] | None = None

    def get(self, img: Tensor, shape: tuple[int, ...], size: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        key = (img._version, img.data_ptr(), tuple(img.shape), img.dtype, img.device, shape, size)
        if self.image is img and self.key == key and self.value is not None:
            return self.value
        b, c, h, w = shape
        with torch.no_grad():
            x = img.expand(shape).reshape(b * c, 1, h, w)
            sx = x.mean((-1, -2), keepdim=True)
            xc = x - sx
            m, e = _average(torch.cat([xc, xc * xc], 0), size, h, w).chunk(2)
            value = (xc, sx, m, e - m * m)
        self.image, self.key, self.value = img, key, value
        return value


_FIXED = _FixedImageMoments()


def _local_moments(img1: Tensor, img2: Tensor, shape: tuple[int, ...], size: int
                   ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Windowed means of x and y, their variances and covariance: five ``(B, C, h, w)`` maps.

    Moments are taken of images shifted by their (constant, detached) means: variances and
    the covariance are unchanged, and E[x^2] - E[x]^2 no longer cancels two numbers near
    0.25, which keeps float32 within ~1e-6 of the float64 result. When exactly one image
    carries a gradient, the other's maps come from :class:`_FixedImageMoments` and only
    three maps are averaged (and differentiated).
    """
    b, c, h, w = shape
    fixed_first = not img1.requires_grad and img2.requires_grad
    fixed_second = img1.requires_grad and not img2.requires_grad
    if fixed_first or fixed_second:
        fixed, moving = (img1, img2) if fixed_first else (img2, img1)
        xc, sx, mx, vx = _FIXED.get(fixed, shape, size)
        y = moving.expand(shape).reshape(b * c, 1, h, w)
        sy = y.detach().mean((-1, -2), keepdim=True)
        yc = y - sy
        my, eyy, exy = _average(torch.cat([yc, yc * yc, xc * yc], 0), size, h, w).chunk(3)
        vy, cov = eyy - my * my, exy - mx * my
        mu_x, mu_y = mx + sx, my + sy
        maps = (mu_x, mu_y, vx, vy, cov) if fixed_first else (mu_y, mu_x, vy, vx, cov)
    else:
        x = img1.expand(shape).reshape(b * c, 1, h, w)
        y = img2.expand(shape).reshape(b * c, 1, h, w)
        sx = x.detach().mean((-1, -2), keepdim=True)
        sy = y.detach().mean((-1, -2), keepdim=True)
        xc, yc = x - sx, y - sy
        m1, m2, e11, e22, e12 = _average(torch.cat([xc, yc, xc * xc, yc * yc, xc * yc], 0), size, h, w).chunk(5)
        maps = (m1 + sx, m2 + sy, e11 - m1 * m1, e22 - m2 * m2, e12 - m1 * m2)
    return tuple(t.reshape(b, c, *t.shape[-2:]) for t in maps)


def ssim_components(img1: Tensor, img2: Tensor, pad: PadMode = False, func_name: str = "SSIM",
                    luminance: bool = True, weight: bool = True, warn: bool = True
                    ) -> tuple[Tensor | None, Tensor, Tensor | None]:
    """SSIM map, contrast-structure map and the Wang & Simoncelli (2008) weight map.

    Parameters
    ----------
    img1, img2 : Tensor
        ``(batch, channel, height, width)``, batch and channel broadcast.
    pad : False or str
        ``False`` (valid averages, maps shrink by ``size - 1``) or a padding mode of
        :func:`difflens.tools.conv.same_padding`.
    func_name : str
        Name used in warnings and errors.
    luminance : bool
        ``False`` skips the SSIM map (returned as ``None``): MS-SSIM's finer scales need only
        the contrast-structure map.
    weight : bool
        ``False`` skips the weight map (returned as ``None``).
    warn : bool
        ``False`` skips the range and channel warnings (checks of shapes and dtypes stay).

    Returns
    -------
    (ssim_map, contrast_structure_map, weight) : tuple of Tensor
        Each ``(batch, channel, h, w)``.
    """
    shape = _check(img1, img2, func_name, warn)
    size = min(WINDOW_SIZE, shape[2], shape[3])
    if pad is not False:
        img1 = same_padding(img1, (size, size), pad_mode=pad)
        img2 = same_padding(img2, (size, size), pad_mode=pad)
        shape = (*shape[:2], *img1.shape[-2:])
    mu1, mu2, var1, var2, cov = _local_moments(img1, img2, shape, size)
    mu1_sq, mu2_sq, mu12 = mu1 * mu1, mu2 * mu2, mu1 * mu2
    cs = (2.0 * cov + C2) / (var1 + var2 + C2)
    smap = (2 * mu12 + C1) / (mu1_sq + mu2_sq + C1) * cs if luminance else None
    w = torch.log((1 + var1 / C2) * (1 + var2 / C2)) if weight else None
    return smap, cs, w


def _warn_small(h: int, w: int, multiscale: bool = False) -> None:
    if min(h, w) < WINDOW_SIZE:
        where = "for some scales of the input image, " if multiscale else ""
        warnings.warn(f"SSIM uses 11x11 convolutional kernel, but {where}the height and/or the width of the "
                      f"input image ({h}x{w}) is smaller than 11, so the kernel size is set to be the minimum "
                      "of these two numbers.", stacklevel=3)


def ssim(img1: Tensor, img2: Tensor, weighted: bool = False, pad: PadMode = False) -> Tensor:
    r"""Mean structural similarity index of each image and channel (Wang et al. 2004).

    A similarity, not a distance: 1 for identical images, in [-1, 1].

    Parameters
    ----------
    img1, img2 : Tensor
        ``(batch, channel, height, width)`` of one dtype; heights and widths equal, batch
        and channel sizes equal or 1 (broadcast). Values are expected in [0, 1].
    weighted : bool
        ``False``: the plain mean of the SSIM map. ``True``: weighted by
        :math:`\log((1 + \sigma_1^2 / C_2)(1 + \sigma_2^2 / C_2))` (Wang & Simoncelli 2008).
    pad : False or str
        ``False`` (default): average only where the window fits. A mode of
        :func:`torch.nn.functional.pad` (``"constant"``, ``"reflect"``, ``"replicate"``,
        ``"circular"``): pad first so the map has the image's size.

    Returns
    -------
    Tensor
        ``(batch, channel)``.

    Raises
    ------
    ValueError
        Not 4-D, different heights/widths, batch/channel sizes that do not broadcast,
        different dtypes.

    Warns
    -----
    UserWarning
        Values outside [0, 1]; more than one channel; height or width under 11.

    Examples
    --------
    >>> import torch
    >>> from difflens.metric import ssim
    >>> x = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    >>> ssim(x, x)
    tensor([[1.],
            [1.]])
    """
    smap, _, weight = ssim_components(img1, img2, pad, weight=weighted)
    if weighted:
        value = (smap * weight).sum((-1, -2)) / weight.sum((-1, -2))
    else:
        value = smap.mean((-1, -2))
    _warn_small(img1.shape[2], img1.shape[3])
    return value


def ssim_map(img1: Tensor, img2: Tensor) -> Tensor:
    """The SSIM map (valid averages): ``(batch, channel, height - 10, width - 10)`` for images >= 11 px.

    Same inputs, errors and warnings as :func:`ssim`.

    Examples
    --------
    >>> import torch
    >>> from difflens.metric import ssim_map
    >>> ssim_map(torch.rand(1, 1, 32, 32), torch.rand(1, 1, 32, 32)).shape
    torch.Size([1, 1, 22, 22])
    """
    _warn_small(img1.shape[2], img1.shape[3]) if isinstance(img1, Tensor) and img1.ndim == 4 else None
    return ssim_components(img1, img2, weight=False)[0]


def _downsample(img: Tensor) -> Tensor:
    """Halve height and width by 2x2 averaging (odd sizes first extended by replication)."""
    img = F.pad(img, (0, img.shape[3] % 2, 0, img.shape[2] % 2), mode="replicate")
    return F.avg_pool2d(img, kernel_size=2)


def ms_ssim(img1: Tensor, img2: Tensor, power_factors: Sequence[float] | Tensor | None = None) -> Tensor:
    r"""Multi-scale SSIM (Wang, Simoncelli & Bovik 2003).

    :math:`\mathrm{SSIM}_M^{a_M} \prod_{i<M} \mathrm{CS}_i^{a_i}`: the mean contrast-structure
    of every scale but the coarsest and the mean SSIM of the coarsest, each clipped at 0
    and raised to its power factor; scales come from 2x2 average pooling.

    Parameters
    ----------
    img1, img2 : Tensor
        As for :func:`ssim`.
    power_factors : sequence of float, optional
        Exponents, fine to coarse; their number is the number of scales. Default
        :data:`MS_SSIM_POWER_FACTORS` ``(0.0448, 0.2856, 0.3001, 0.2363, 0.1333)``.

    Returns
    -------
    Tensor
        ``(batch, channel)``.

    Raises
    ------
    ValueError
        As :func:`ssim`; an empty ``power_factors``.

    Examples
    --------
    >>> import torch
    >>> from difflens.metric import ms_ssim
    >>> x = torch.rand(1, 1, 176, 176, generator=torch.Generator().manual_seed(0))
    >>> ms_ssim(x, x)
    tensor([[1.]])
    """
    factors = list(MS_SSIM_POWER_FACTORS if power_factors is None else power_factors)
    if not factors:
        raise ValueError("power_factors must hold at least one exponent (one per scale)")
    value: Tensor | float = 1.0
    for i, p in enumerate(factors[:-1]):
        # 2x2 averages of images in [0, 1] stay in [0, 1]: the range is checked at the first scale only
        _, cs, _ = ssim_components(img1, img2, func_name="MS-SSIM", luminance=False, weight=False, warn=i == 0)
        value = value * F.relu(cs.mean((-1, -2))).pow(p)
        img1, img2 = _downsample(img1), _downsample(img2)
    smap, _, _ = ssim_components(img1, img2, func_name="MS-SSIM", weight=False, warn=len(factors) == 1)
    value = value * F.relu(smap.mean((-1, -2))).pow(factors[-1])
    _warn_small(img1.shape[2], img1.shape[3], multiscale=True)
    return value
