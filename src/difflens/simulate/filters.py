"""Filter constructors for the front-end models (they build tensors; no convolution here)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["check_std", "circular_gaussian2d", "validate_filter_args"]

StdLike = int | float | Sequence[float] | Tensor


def validate_filter_args(kernel_size: int | Sequence[int] | Tensor, std: StdLike,
                         out_channels: int | None, std_name: str = "std",
                         out_channels_name: str = "out_channels") -> tuple[tuple[int, int], Tensor, int]:
    """Check and normalise the common Gaussian-filter arguments (plenoptic's rules).

    Returns ``(kernel_size, std, out_channels)``: ``kernel_size`` as an ``(kh, kw)``
    tuple of positive ints, ``std`` as a 1-D floating tensor of length
    ``out_channels`` (integers become float32), ``out_channels`` inferred from
    ``len(std)`` when ``None``. Raises ``ValueError`` naming the offending argument
    (a NaN, inf, non-positive or underflowing ``std`` included, see :func:`check_std`).
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
    if not bool(torch.isfinite(std).all()):
        raise ValueError(f"{std_name} must be finite, got {std.tolist()}")
    if torch.any(std <= 0):
        raise ValueError(f"{std_name} must be positive, got {std.tolist()}")
    check_std(std, std_name, (int(ks[0]), int(ks[1])))
    if len(std) != out_channels:
        raise ValueError(f"If non-scalar, len({std_name}) must equal {out_channels_name} "
                         f"({len(std)} != {out_channels})")
    return (int(ks[0]), int(ks[1])), std, out_channels


def check_std(std: Tensor, name: str, kernel_size: tuple[int, int]) -> None:
    """Raise ``ValueError`` unless every ``std`` gives a valid ``kernel_size`` kernel in ``std``'s dtype.

    Valid: finite, and ``|std|`` large enough that the kernel's largest value (at the
    pixel nearest the centre) does not underflow to zero, which would make the
    normalised kernel 0/0 = NaN. The sign does not matter (only ``std**2`` enters).
    One small pass over ``std``; call it where the kernel is built, not per pixel.

    Parameters
    ----------
    std : Tensor
        ``(O,)`` standard deviations in pixels.
    name : str
        The parameter's name in the message (e.g. ``"luminance.std"``).
    kernel_size : (int, int)
        ``(kh, kw)``; even sizes centre the kernel between pixels (nearest offset 0.5).
    """
    kh, kw = kernel_size
    r2_min = (0.25 if kh % 2 == 0 else 0.0) + (0.25 if kw % 2 == 0 else 0.0)
    with torch.no_grad():
        s = std.detach()
        peak = torch.exp(r2_min / (-2.0 * s**2))  # as gaussian_bank computes it: NaN when s**2 underflows
        ok = torch.isfinite(s) & torch.isfinite(peak) & (peak > 0)
        if bool(ok.all()):
            return
        bad = s[~ok].tolist()
    if not all(math.isfinite(v) for v in bad):
        raise ValueError(f"{name} must be finite, got {s.tolist()}")
    tiny = torch.finfo(s.dtype).tiny * torch.finfo(s.dtype).eps  # smallest subnormal
    # below sqrt(0.5 / max) the division's reciprocal of 2 std^2 overflows (0 * inf = NaN)
    floor = max(math.sqrt(r2_min / (-2.0 * math.log(tiny))), math.sqrt(0.5 / torch.finfo(s.dtype).max))
    raise ValueError(f"{name} = {bad} is too small for a {kh}x{kw} kernel in {s.dtype}: the kernel "
                     f"underflows to zero (NaN once normalised); use |{name}| of at least about {floor:.3g} pixels")


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
