"""The normalised Laplacian pyramid and its distance, NLPD (Laparra, Ballé, Berardino & Simoncelli 2016).

Six Laplacian-pyramid levels (:class:`difflens.simulate.LaplacianPyramid` with
``scale_filter=True``), each divided by ``sigma + (|level| * filter)``, a local sum of
absolute neighbours (zero-padded 5x5 correlation). The six filters and constants are the
published ones (Laparra et al.'s MATLAB code ``NLP_dist.m``, the values plenoptic ships in
``DN_filts.npy`` / ``DN_sigmas.npy``), written out below.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import Tensor

from difflens.simulate.laplacian_pyramid import LaplacianPyramid
from difflens.tools.validate import check_image, check_image_pair

__all__ = [
    "DN_SIGMAS",
    "N_SCALES",
    "divisive_normalization_filters",
    "nlpd",
    "normalized_laplacian_pyramid",
]

N_SCALES = 6
#: The additive constant of each level's divisive normalisation, fine to coarse.
DN_SIGMAS = (0.0248, 0.0185, 0.0179, 0.0191, 0.0220, 0.2782)
# Each level's pooling filter as {(row, column) in the 5x5 filter: weight}; every other tap is 0.
_DN_TAPS = (
    {(1, 2): 0.1011, (2, 1): 0.1493, (2, 3): 0.1460, (2, 4): 0.0072, (3, 2): 0.1015},
    {(1, 2): 0.0757, (2, 1): 0.1986, (2, 3): 0.1846, (3, 2): 0.0837},
    {(1, 2): 0.0477, (2, 1): 0.2138, (2, 3): 0.2243, (3, 2): 0.0467},
    {(2, 1): 0.2503, (2, 3): 0.2616},
    {(2, 1): 0.2598, (2, 3): 0.2552},
    {(2, 1): 0.2215, (2, 3): 0.0717},
)
_PYRAMID = LaplacianPyramid(n_scales=N_SCALES, scale_filter=True)


def divisive_normalization_filters(dtype: torch.dtype = torch.float32,
                                   device: torch.device | str | None = None) -> Tensor:
    """The six 5x5 pooling filters, ``(6, 1, 1, 5, 5)``: one ``(1, 1, 5, 5)`` conv weight per level.

    Examples
    --------
    >>> divisive_normalization_filters().shape
    torch.Size([6, 1, 1, 5, 5])
    """
    filters = torch.zeros(N_SCALES, 1, 1, 5, 5, dtype=torch.float64)
    for level, taps in enumerate(_DN_TAPS):
        for (r, c), v in taps.items():
            filters[level, 0, 0, r, c] = v
    return filters.to(dtype=dtype, device=device)


def normalized_laplacian_pyramid(img: Tensor) -> list[Tensor]:
    """The normalised Laplacian pyramid of ``img``: six levels, fine to coarse.

    Parameters
    ----------
    img : Tensor
        ``(batch, channel, height, width)``, at least 33 pixels a side (six levels); each
        channel is handled separately.

    Returns
    -------
    list of Tensor
        Level ``k`` is ``(batch, channel, ceil(height / 2**k), ceil(width / 2**k))``.

    Raises
    ------
    ValueError
        Not 4-D, or too small for six levels (the message names the size needed).

    Examples
    --------
    >>> import torch
    >>> from difflens.metric import normalized_laplacian_pyramid
    >>> [tuple(p.shape[-2:]) for p in normalized_laplacian_pyramid(torch.rand(1, 1, 64, 64))]
    [(64, 64), (32, 32), (16, 16), (8, 8), (4, 4), (2, 2)]
    """
    check_image(img, "img", ndim=4)
    b, c = img.shape[:2]
    filters = divisive_normalization_filters(img.dtype, img.device)
    out = []
    for level, (coeffs, sigma) in enumerate(zip(_PYRAMID(img), DN_SIGMAS)):
        h, w = coeffs.shape[-2:]
        pooled = F.conv2d(coeffs.abs().reshape(b * c, 1, h, w), filters[level], padding=2).reshape(b, c, h, w)
        out.append(coeffs / (sigma + pooled))
    return out


def nlpd(img1: Tensor, img2: Tensor) -> Tensor:
    """Normalised Laplacian pyramid distance: the mean over six levels of each level's RMS difference.

    Each level's root mean squared difference (plus 1e-10 under the root, which keeps the
    gradient finite at zero distance) is averaged with equal weight, so the coarse levels,
    with fewer coefficients, weigh more per coefficient.

    Parameters
    ----------
    img1, img2 : Tensor
        ``(batch, channel, height, width)`` of one dtype; heights and widths equal (>= 33),
        batch and channel sizes equal or 1 (broadcast). Values are expected in [0, 1].

    Returns
    -------
    Tensor
        ``(batch, channel)``.

    Raises
    ------
    ValueError
        Not 4-D, different heights/widths, batch/channel sizes that do not broadcast,
        different dtypes, images too small for six levels.

    Warns
    -----
    UserWarning
        More than one channel; values outside [0, 1].

    Examples
    --------
    >>> import torch
    >>> from difflens.metric import nlpd
    >>> x = torch.rand(1, 1, 64, 64, generator=torch.Generator().manual_seed(0))
    >>> bool(nlpd(x, x) < 1e-4), bool(nlpd(x, 1 - x) > 0.5)
    (True, True)
    """
    shape = check_image_pair(img1, img2, "NLPD")
    if shape[1] > 1:
        warnings.warn("NLPD was designed for grayscale images and here it will be computed separately for "
                      "each channel (so channels are treated in the same way as batches).", stacklevel=2)
    lo = min(float(img1.detach().min()), float(img2.detach().min()))
    hi = max(float(img1.detach().max()), float(img2.detach().max()))
    if lo < 0 or hi > 1:
        warnings.warn(f"Image range falls outside [0, 1] (values in [{lo:.4g}, {hi:.4g}]). NLPD output may "
                      "not make sense.", stacklevel=2)
    y1 = normalized_laplacian_pyramid(img1)
    y2 = normalized_laplacian_pyramid(img2)
    dist = [torch.sqrt((a - b).pow(2).mean((2, 3)) + 1e-10) for a, b in zip(y1, y2)]
    return torch.stack(dist).mean(0)
