"""Laplacian pyramid (Burt & Adelson 1983), plenoptic 1.4.0's ``LaplacianPyramid``.

Each level is the image minus its blurred-downsampled-upsampled copy; the last
level is the remaining lowpass image. The blur is the 5-tap binomial filter
``[1, 4, 6, 4, 1] / 16 * sqrt(2)`` (pyrtools' ``binom5``) applied separably, with
reflected borders when downsampling and the zero-insertion upsampling plenoptic
uses, so the levels equal plenoptic's and reconstruction is exact.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from difflens.tools.validate import check_image

_BINOM5 = (1.0, 4.0, 6.0, 4.0, 1.0)


def binomial_filter_1d(dtype: torch.dtype = torch.float32,
                       device: torch.device | str | None = None) -> Tensor:
    """The 5-tap binomial filter ``[1, 4, 6, 4, 1] * sqrt(2) / 16`` (sums to ``sqrt(2)``).

    Examples
    --------
    >>> round(binomial_filter_1d().sum().item(), 6) == round(2 ** 0.5, 6)
    True
    """
    return torch.tensor(_BINOM5, dtype=dtype, device=device) * (math.sqrt(2.0) / 16.0)


def binomial_filter_2d(factor: float, dtype: torch.dtype, device: torch.device | str | None) -> Tensor:
    """``factor * outer(b, b)`` for the binomial taps ``b``, built in float64 then cast.

    Built like plenoptic's (outer product in double precision, rounded once, then the exact
    factor 2 or 1/2), so deep levels, whose values grow by 2 per level, agree to rounding.
    """
    taps = binomial_filter_1d(torch.float64)
    return (torch.outer(taps, taps).to(dtype=dtype, device=device) * factor)[None, None]


def _correlate(x: Tensor, filt: Tensor, stride: int = 1) -> Tensor:
    """Correlate ``(N, 1, H, W)`` with a ``(1, 1, 5, 5)`` filter (no padding)."""
    return F.conv2d(x, filt, stride=stride)


def blur_downsample(x: Tensor, scale_filter: bool = True) -> Tensor:
    """Blur with the 2-D binomial filter (reflected borders) and keep every second pixel.

    Parameters
    ----------
    x
        ``(batch, channel, height, width)`` image; output is ``ceil(height / 2) x ceil(width / 2)``.
    scale_filter
        ``True``: the 2-D filter sums to 1 (keeps the mean); ``False``: it sums to 2.

    Returns
    -------
    Tensor
        The downsampled image.
    """
    b, c, h, w = x.shape
    if min(h, w) < 3:
        raise ValueError(f"cannot blur-downsample an image of height/width {(h, w)}: reflected "
                         "padding needs at least 3 pixels a side (use fewer scales)")
    filt = binomial_filter_2d(0.5 if scale_filter else 1.0, x.dtype, x.device)
    y = F.pad(x.reshape(b * c, 1, h, w), (2, 2, 2, 2), mode="reflect")
    y = _correlate(y, filt, stride=2)
    return y.reshape(b, c, *y.shape[-2:])


def upsample_blur(x: Tensor, odd: tuple[int, int], scale_filter: bool = True) -> Tensor:
    """Upsample by 2 (zero insertion, reflected borders) and blur with the binomial filter.

    Parameters
    ----------
    x
        ``(batch, channel, height, width)`` image.
    odd
        ``(odd_height, odd_width)``, each 0 or 1: the output is ``2 * height - odd_height`` by
        ``2 * width - odd_width``.
    scale_filter
        ``True``: the 2-D filter sums to 4 (keeps the mean); ``False``: it sums to 2.

    Returns
    -------
    Tensor
        The upsampled image.
    """
    b, c, h, w = x.shape
    odd_h, odd_w = (int(v) for v in odd)
    filt = binomial_filter_2d(2.0 if scale_filter else 1.0, x.dtype, x.device)
    y = F.pad(x.reshape(b * c, 1, h, w), (1, 1, 1, 1), mode="reflect")
    # zero insertion; one extra zero row/column at the end for an even output
    up = y.new_zeros(b * c, 1, 2 * (h + 2) - 1 + (1 - odd_h), 2 * (w + 2) - 1 + (1 - odd_w))
    up[..., : 2 * (h + 2) - 1 : 2, : 2 * (w + 2) - 1 : 2] = y
    out = _correlate(up, filt)
    return out.reshape(b, c, *out.shape[-2:])


class LaplacianPyramid(nn.Module):
    """Laplacian pyramid: plenoptic 1.4.0's ``LaplacianPyramid``.

    Parameters
    ----------
    n_scales
        Number of levels, including the final lowpass image (default 5).
    scale_filter
        ``True``: the downsampling filter sums to 1 and the upsampling one to 4, so level
        ``n`` is divided by ``2**n`` relative to ``False`` (default ``False``: both sum to 2).

    Attributes
    ----------
    n_scales : int
    scale_filter : bool

    Raises
    ------
    ValueError
        ``n_scales`` not a positive integer; at call time, an image too small for
        ``n_scales`` levels (the message names the size needed).

    Examples
    --------
    >>> import torch
    >>> from difflens.simulate import LaplacianPyramid
    >>> lpyr = LaplacianPyramid(n_scales=3)
    >>> x = torch.rand(1, 1, 32, 30)
    >>> [tuple(c.shape[-2:]) for c in lpyr(x)]
    [(32, 30), (16, 15), (8, 8)]
    >>> bool((lpyr.recon_pyr(lpyr(x)) - x).abs().max() < 1e-5)
    True
    """

    def __init__(self, n_scales: int = 5, scale_filter: bool = False) -> None:
        super().__init__()
        if isinstance(n_scales, bool) or not isinstance(n_scales, int) or n_scales < 1:
            raise ValueError(f"n_scales must be a positive integer, got {n_scales!r}")
        self.n_scales = n_scales
        self.scale_filter = bool(scale_filter)
        self.eval()

    def forward(self, x: Tensor) -> list[Tensor]:
        """Levels of ``x``, fine to coarse.

        Parameters
        ----------
        x
            ``(batch, channel, height, width)`` floating-point image.

        Returns
        -------
        list of Tensor
            ``n_scales`` tensors; level ``k`` has height ``ceil(height / 2**k)`` (likewise width).
        """
        check_image(x, "image", ndim=4)
        smallest = min(x.shape[-2:])
        need = 2 ** (self.n_scales - 1) + 1 if self.n_scales > 1 else 1
        if smallest < need:
            raise ValueError(f"image of height/width {tuple(x.shape[-2:])} is too small for "
                             f"n_scales={self.n_scales}: each downsampling needs at least 3 pixels a "
                             f"side, so the image needs at least {need} pixels a side")
        levels = []
        for _ in range(self.n_scales - 1):
            odd = (x.shape[-2] % 2, x.shape[-1] % 2)
            down = blur_downsample(x, scale_filter=self.scale_filter)
            levels.append(x - upsample_blur(down, odd, scale_filter=self.scale_filter))
            x = down
        levels.append(x)
        return levels

    def recon_pyr(self, y: list[Tensor]) -> Tensor:
        """Rebuild the image from its levels (exact up to float rounding).

        Parameters
        ----------
        y
            ``n_scales`` tensors as :meth:`forward` returns them, fine to coarse.

        Returns
        -------
        Tensor
            ``(batch, channel, height, width)`` image.
        """
        if len(y) != self.n_scales:
            raise ValueError(f"expected {self.n_scales} levels (n_scales), got {len(y)}")
        x = y[-1]
        for level in reversed(y[:-1]):
            odd = (level.shape[-2] % 2, level.shape[-1] % 2)
            x = level + upsample_blur(x, odd, scale_filter=self.scale_filter)
        return x
