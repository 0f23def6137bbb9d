"""Filter constructors for the front-end models (they build tensors; no convolution here)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["circular_gaussian2d", "validate_filter_args"]

StdLike = int | float | Sequence[float] | Tensor


def validate_filter_args(kernel_size: int | Sequence[int] | Tensor, std: StdLike,
                         out_channels: int | None, std_name: str = "std",
                         out_channels_name: str = "out_channels") -> tuple[tuple[int, int], Tensor, int]:
    """Check and normalise the common Gaussian-filter arguments (plenoptic's rules).

    Returns ``(kernel_size, std, out_channels)``: ``kernel_size`` as an ``(kh, kw)``
    tuple of positive ints, ``std`` as a 1-D floating tensor of length
    ``out_channels`` (integers become float32), ``out_channels`` inferred from
    ``len(std)`` when ``None``. Raises ``ValueError`` naming the offending argument.
    """
    std = torch.as_tensor(std)
    if not torch.is_floating_point(std):
        std = std.to(torch.float32)
    if std.ndim > 1:
        raise ValueError(f"{std_name} must be a scalar or 1-D, got shape {tuple(std.shape)}")
    if out_channels is None:
        out_channels = len(std) if std.ndim != 0 else 1
    if isinstance(out_channels, bool) or not isinstance(out_channels, int) or out_channels < 1:
        raise ValueError(f"{out_channels_name} must be a positive integer, got {out_channels!r}")
    if std.ndim == 0:
        std = std.repeat(out_channels)
    ks = torch.as_tensor(kernel_size)
    if torch.is_floating_point(ks) or ks.dtype == torch.bool:
        raise ValueError(f"kernel_size must be integer-valued, got {kernel_size!r}")
    ks = ks.flatten().tolist()
    if len(ks) == 1:
        ks = ks * 2
    if len(ks) != 2:
        raise ValueError(f"kernel_size must be one or two integers, got {kernel_size!r}")
    if min(ks) < 1:
        raise ValueError(f"kernel_size must be positive, got {kernel_size!r}")
    if torch.any(std <= 0):
        raise ValueError(f"{std_name} must be positive, got {std.tolist()}")
    if len(std) != out_channels:
        raise ValueError(f"If non-scalar, len({std_name}) must equal {out_channels_name} "
                         f"({len(std)} != {out_channels})")
    return (int(ks[0]), int(ks[1])), std, out_channels


def gaussian_bank(kernel_size: tuple[int, int], std: Tensor) -> Tensor:
    """Unchecked core of :func:`circular_gaussian2d`: ``std`` 1-D ``(O,)`` -> ``(O, 1, kh, kw)``.

    Computed in ``std``'s dtype and device; differentiable in ``std``.
    """
    kh, kw = kernel_size
    y = torch.arange(kh, dtype=std.dtype, device=std.device) - (kh - 1) / 2
    x = torch.arange(kw, dtype=std.dtype, device=std.device) - (kw - 1) / 2
    r2 = x[None, :] ** 2 + y[:, None] ** 2
    filt = torch.exp(r2 / (-2.0 * std**2).view(-1, 1, 1, 1))
    return filt / filt.sum(dim=(1, 2, 3), keepdim=True)


def circular_gaussian2d(kernel_size: int | Sequence[int] | Tensor, std: StdLike,
                        out_channels: int | None = None) -> Tensor:
    """Centred, circularly symmetric 2-D Gaussian kernels, each summing to one.

    Parameters
    ----------
    kernel_size
        ``(kh, kw)`` or one int. Odd sizes centre the kernel on a pixel; even sizes
        centre it between pixels.
    std
        Standard deviation(s) in pixels: a scalar, or one per output channel.
    out_channels
        Number of kernels; inferred from ``len(std)`` when ``None``.

    Returns
    -------
    Tensor
        ``(out_channels, 1, kh, kw)``, dtype and device of ``std`` (float32 for Python
        numbers). Value ``exp(-(dx^2 + dy^2) / (2 std^2))`` with offsets from the kernel
        centre, normalised by the total pixel sum (not by ``2 pi std^2``).
    """
    kernel_size, std, out_channels = validate_filter_args(kernel_size, std, out_channels)
    return gaussian_bank(kernel_size, std)
