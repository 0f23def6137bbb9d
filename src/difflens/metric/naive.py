"""Mean squared error, the baseline image metric."""

from __future__ import annotations

import torch
from torch import Tensor

from difflens.tools.validate import check_image_pair

__all__ = ["mse"]


def mse(img1: Tensor, img2: Tensor) -> Tensor:
    r"""Mean squared error over height and width: :math:`\frac{1}{n}\sum_i (x_i - y_i)^2`.

    Parameters
    ----------
    img1, img2 : Tensor
        ``(..., height, width)`` images (usually ``(batch, channel, height, width)``) of one
        dtype and the same height and width; the leading dimensions broadcast.

    Returns
    -------
    Tensor
        The leading (broadcast) dimensions: ``(batch, channel)`` for 4-D inputs.

    Raises
    ------
    ValueError
        Fewer than 2 dimensions, different heights/widths, leading dimensions that do not
        broadcast, different dtypes.

    Examples
    --------
    >>> import torch
    >>> from difflens.metric import mse
    >>> x = torch.zeros(1, 1, 4, 4)
    >>> mse(x, x + 0.5)
    tensor([[0.2500]])
    """
    check_image_pair(img1, img2, "mse", ndim=None)
    return torch.pow(img1 - img2, 2).mean((-1, -2))
