"""Small signal helpers: dynamic-range rescaling, a soft-edged disk mask, tensors to numpy."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["make_disk", "rescale", "to_numpy"]


def rescale(x: Tensor, a: float = 0.0, b: float = 1.0) -> Tensor:
    """Linearly map the range ``[x.min(), x.max()]`` of ``x`` onto ``[a, b]``.

    The min and max are taken over the whole tensor (all batches and channels). A
    constant ``x`` maps to ``a`` everywhere. Differentiable; shape, dtype and device
    of ``x`` are kept (plenoptic's ``tools.rescale``).
    """
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if not (x.is_floating_point() or x.is_complex()):
        x = x.to(torch.get_default_dtype())
    lo = x.min()
    span = x.max() - lo
    g = (x - lo) / torch.where(span > 0, span, torch.ones_like(span))
    return a + g * (b - a)


def make_disk(img_size: int | tuple[int, int] | torch.Size, outer_radius: float | None = None,
              inner_radius: float | None = None, *, dtype: torch.dtype = torch.float32,
              device: str | torch.device | None = None) -> Tensor:
    """Disk mask of shape ``img_size``: 1 inside ``inner_radius``, 0 beyond ``outer_radius``.

    Between the radii the value falls as a raised cosine. The centre is the image
    centre ``((h - 1) / 2, (w - 1) / 2)``; radii are in pixels. Defaults:
    ``outer_radius = (min(h, w) - 1) / 2`` and ``inner_radius = outer_radius / 2``
    (plenoptic's ``tools.make_disk``, vectorised).
    """
    if isinstance(img_size, int):
        img_size = (img_size, img_size)
    if len(img_size) != 2:
        raise ValueError(f"img_size must be an int or (height, width), got {img_size!r}")
    h, w = int(img_size[0]), int(img_size[1])
    if outer_radius is None:
        outer_radius = (min(h, w) - 1) / 2
    if inner_radius is None:
        inner_radius = outer_radius / 2
    i = torch.arange(h, dtype=torch.float64, device=device) - (h - 1) / 2
    j = torch.arange(w, dtype=torch.float64, device=device) - (w - 1) / 2
    r = torch.sqrt(i[:, None] ** 2 + j[None, :] ** 2)
    width = outer_radius - inner_radius
    decay = (r - inner_radius) / width if width != 0 else torch.zeros_like(r)
    mask = (1 + torch.cos(math.pi * decay)) / 2
    mask = torch.where(r > outer_radius, torch.zeros_like(r), mask)
    mask = torch.where(r < inner_radius, torch.ones_like(r), mask)
    return mask.to(dtype)


def to_numpy(x: Tensor | np.ndarray | Any, squeeze: bool = False) -> np.ndarray:
    """``x`` as a NumPy array on the host, with the matching dtype (plenoptic's ``to_numpy``).

    Parameters
    ----------
    x : Tensor or array
        A tensor (detached and copied to the CPU; gradients are dropped) or anything
        ``numpy.asarray`` accepts (an array is returned as it is).
    squeeze : bool
        Remove every dimension of size 1. Default ``False``.

    Returns
    -------
    numpy.ndarray
        Same shape (unless squeezed) and corresponding dtype (``torch.float32`` ->
        ``float32``, ``torch.complex64`` -> ``complex64``, ...). ``bfloat16``, which
        NumPy lacks, becomes ``float32``.
    """
    if isinstance(x, Tensor):
        t = x.detach().cpu()
        if t.dtype == torch.bfloat16:
            t = t.float()
        x = t.resolve_conj().resolve_neg().numpy()
    else:
        x = np.asarray(x)
    return x.squeeze() if squeeze else x
