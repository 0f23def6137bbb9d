"""Distances in a model's representation space, and the normalised Laplacian pyramid as a model."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from .normalized_laplacian import normalized_laplacian_pyramid

__all__ = ["NLP", "model_metric", "model_metric_factory"]

EPSILON = 1e-10


def model_metric(x: Tensor, y: Tensor, model: Callable[[Tensor], Tensor]) -> Tensor:
    r"""Root mean squared difference of ``model(x)`` and ``model(y)`` (plenoptic 1.1's ``model_metric``).

    :math:`\sqrt{\frac{1}{n}\sum_i (M(x)_i - M(y)_i)^2 + 10^{-10}}` over every element of
    the representations (the 1e-10 keeps the gradient finite at zero distance).

    Parameters
    ----------
    x, y : Tensor
        Images the model accepts (usually ``(batch, channel, height, width)``).
    model : callable
        ``image -> representation`` tensor (an ``nn.Module`` or a function).

    Returns
    -------
    Tensor
        A scalar (0-d).

    Raises
    ------
    TypeError
        ``model`` is not callable or does not return a tensor.
    ValueError
        The two representations have shapes that do not broadcast.

    Examples
    --------
    >>> import torch
    >>> from difflens.metric import model_metric
    >>> x = torch.zeros(1, 1, 8, 8)
    >>> float(model_metric(x, x + 0.5, lambda im: 2 * im))
    1.0
    """
    if not callable(model):
        raise TypeError(f"model must be callable image -> representation, got {type(model).__name__}")
    rx, ry = model(x), model(y)
    if not (isinstance(rx, Tensor) and isinstance(ry, Tensor)):
        raise TypeError(f"model must return tensors, got {type(rx).__name__} and {type(ry).__name__}")
    try:
        torch.broadcast_shapes(rx.shape, ry.shape)
    except RuntimeError:
        raise ValueError(f"model(x) has shape {tuple(rx.shape)} and model(y) {tuple(ry.shape)}: they must "
                         "match (give x and y the same shape)") from None
    return torch.sqrt(torch.mean((rx - ry) ** 2) + EPSILON)


def model_metric_factory(model: Callable[[Tensor], Tensor]) -> Callable[[Tensor, Tensor], Tensor]:
    """``(x, y) -> model_metric(x, y, model)`` (plenoptic 1.4's name for the same distance).

    Examples
    --------
    >>> import torch
    >>> from difflens.metric import model_metric_factory
    >>> metric = model_metric_factory(lambda im: im)
    >>> float(metric(torch.zeros(1, 1, 4, 4), torch.ones(1, 1, 4, 4)))
    1.0
    """
    if not callable(model):
        raise TypeError(f"model must be callable image -> representation, got {type(model).__name__}")

    def metric(x: Tensor, y: Tensor) -> Tensor:
        return model_metric(x, y, model)

    metric.__name__ = f"model_metric_{getattr(model, '__name__', type(model).__name__)}"
    return metric


class NLP(nn.Module):
    """The normalised Laplacian pyramid as a model: all six levels flattened, ``(1, 1, n)``.

    plenoptic 1.1's ``metric.NLP``; batch and channel sizes of 1 only (as there).

    Examples
    --------
    >>> import torch
    >>> from difflens.metric import NLP
    >>> NLP()(torch.rand(1, 1, 64, 64)).shape
    torch.Size([1, 1, 5460])
    """

    def forward(self, image: Tensor) -> Tensor:
        if image.ndim != 4 or image.shape[0] > 1 or image.shape[1] > 1:
            raise ValueError(f"NLP supports one image of one channel, (1, 1, height, width); got shape "
                             f"{tuple(image.shape)}")
        levels = normalized_laplacian_pyramid(image)
        return torch.cat([lv.flatten() for lv in levels]).reshape(1, 1, -1)
