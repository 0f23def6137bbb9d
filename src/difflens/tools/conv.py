"""Same-size 2-D correlation: padding, a direct path, an FFT path, and the choice between them.

Everything here follows the convention of :func:`torch.nn.functional.conv2d`
(cross-correlation, weight shape ``(out_channels, in_channels / groups, kh, kw)``)
preceded by :func:`same_padding`, so that

``correlate2d(x, w, pad_mode) == F.conv2d(same_padding(x, w.shape[-2:], pad_mode=pad_mode), w)``

up to floating-point rounding, whichever ``method`` runs it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .fftconv import SpectrumCache, fft_correlate2d, fft_supported

__all__ = [
    "FFT_MIN_KERNEL_AREA",
    "PAD_MODES",
    "SpectrumCache",
    "choose_method",
    "correlate2d",
    "direct_correlate2d",
    "fft_correlate2d",
    "same_padding",
]

PAD_MODES = ("circular", "reflect", "replicate", "constant")

# Crossover measured with `benchmarks/convolution.py --crossover --clock cpu --threads 1`
# (forward+backward, float32, 2 kernels, torch 2.13 CPU; table in docs/simulate.md).
# Circular padding: the FFT path wins from 5x5 kernels up at every image size >= 16x16.
# Padded modes pay for the padding and a larger FFT: FFT from 9x9 kernels on small
# images, from 7x7 at 128x128 and from 5x5 at 256x256. 3x3 kernels stay direct.
FFT_MIN_KERNEL_AREA = 25
_PADDED_RULE = ((256 * 256, 25), (128 * 128, 49), (0, 81))  # (min image area, min kernel area)
FFT_MIN_IMAGE_AREA = 16 * 16


def _pair(value: int | Sequence[int] | Tensor, name: str) -> tuple[int, int]:
    if isinstance(value, Tensor):
        value = value.tolist()
    if isinstance(value, int):
        return (value, value)
    try:
        items = tuple(int(v) for v in value)
    except TypeError:
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}") from None
    if len(items) == 1:
        return (items[0], items[0])
    if len(items) != 2:
        raise ValueError(f"{name} must have one or two values, got {value!r}")
    return items  # type: ignore[return-value]


def _same_pad_amount(size: int, kernel: int, stride: int, dilation: int) -> int:
    return max((math.ceil(size / stride) - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)


def same_padding(
    image: Tensor,
    kernel_size: int | Sequence[int] | Tensor,
    stride: int | Sequence[int] = 1,
    dilation: int | Sequence[int] = 1,
    pad_mode: str = "circular",
) -> Tensor:
    """Pad ``image`` so a convolution with ``kernel_size`` returns its height and width.

    Parameters
    ----------
    image
        Tensor whose last two dimensions are (height, width); 4-D
        ``(batch, channel, height, width)`` for every mode but ``"constant"``
        (a limit of :func:`torch.nn.functional.pad`).
    kernel_size
        ``(kh, kw)``, or one int for a square kernel (tuples, lists and tensors accepted).
    stride, dilation
        The values the following convolution will use (int or pair). Default 1.
    pad_mode
        ``"circular"`` (default, wrap around), ``"reflect"``, ``"replicate"`` or
        ``"constant"`` (zeros); see :func:`torch.nn.functional.pad`.

    Returns
    -------
    Tensor
        ``image`` grown by ``kernel - 1`` pixels (stride 1): ``(kh - 1) // 2`` on top,
        the rest at the bottom, and likewise left/right. Same as plenoptic 1.4.0.
    """
    if not isinstance(image, Tensor):
        raise TypeError(f"image must be a torch.Tensor, got {type(image).__name__}")
    if image.ndim < 2:
        raise ValueError(f"image must have at least 2 dimensions (height, width), got shape "
                         f"{tuple(image.shape)}")
    if pad_mode not in PAD_MODES:
        raise ValueError(f"pad_mode must be one of {PAD_MODES}, got {pad_mode!r}")
    kh, kw = _pair(kernel_size, "kernel_size")
    sh, sw = _pair(stride, "stride")
    dh, dw = _pair(dilation, "dilation")
    pad_h = _same_pad_amount(image.shape[-2], kh, sh, dh)
    pad_w = _same_pad_amount(image.shape[-1], kw, sw, dw)
    if pad_h == 0 and pad_w == 0:
        return image
    return F.pad(image, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2],
                 mode=pad_mode)


def _check_operands(x: Tensor, weight: Tensor, groups: int) -> None:
    if not isinstance(x, Tensor) or not isinstance(weight, Tensor):
        raise TypeError("x and weight must be torch.Tensors, got "
                        f"{type(x).__name__} and {type(weight).__name__}")
    if x.ndim != 4:
        raise ValueError(f"x must be 4-D (batch, channel, height, width), got shape {tuple(x.shape)}")
    if weight.ndim != 4:
        raise ValueError("weight must be 4-D (out_channels, in_channels / groups, kh, kw), got "
                         f"shape {tuple(weight.shape)}")
    if groups < 1 or x.shape[1] % groups or weight.shape[0] % groups:
        raise ValueError(f"groups={groups} must divide both the input channels ({x.shape[1]}) "
                         f"and the weight's out_channels ({weight.shape[0]})")
    if weight.shape[1] * groups != x.shape[1]:
        raise ValueError(f"weight of shape {tuple(weight.shape)} with groups={groups} expects "
                         f"{weight.shape[1] * groups} input channels, x has {x.shape[1]}")


def direct_correlate2d(x: Tensor, weight: Tensor, pad_mode: str = "reflect",
                       groups: int = 1) -> Tensor:
    """Same-size correlation by :func:`same_padding` then :func:`torch.nn.functional.conv2d`.

    ``x``: ``(B, C, H, W)``; ``weight``: ``(O, C / groups, kh, kw)``; returns ``(B, O, H, W)``.
    """
    _check_operands(x, weight, groups)
    xp = same_padding(x, weight.shape[-2:], pad_mode=pad_mode)
    return F.conv2d(xp, weight.to(x.dtype), groups=groups)


def choose_method(image_shape: Sequence[int], kernel_shape: Sequence[int], dtype: torch.dtype,
                  pad_mode: str = "circular") -> str:
    """``"fft"`` or ``"direct"``: which same-size correlation path is faster for these sizes.

    The rule is the crossover measured on CPU (docs/simulate.md): with circular padding,
    FFT for kernels of at least 25 taps (5x5); with the other modes, at least 81 taps
    (9x9), 49 from 128x128 images, 25 from 256x256. Images under 16x16, half
    precision, complex inputs and circular kernels larger than the image go direct.
    """
    h, w = int(image_shape[-2]), int(image_shape[-1])
    kh, kw = int(kernel_shape[-2]), int(kernel_shape[-1])
    if not fft_supported(dtype) or (pad_mode == "circular" and (kh > h or kw > w)):
        return "direct"
    if h * w < FFT_MIN_IMAGE_AREA:
        return "direct"
    if pad_mode == "circular":
        return "fft" if kh * kw >= FFT_MIN_KERNEL_AREA else "direct"
    min_area = next(k for pixels, k in _PADDED_RULE if h * w >= pixels)
    return "fft" if kh * kw >= min_area else "direct"


def correlate2d(
    x: Tensor,
    weight: Tensor,
    pad_mode: str = "reflect",
    groups: int = 1,
    method: str = "auto",
    cache: SpectrumCache | None = None,
) -> Tensor:
    """Same-size 2-D cross-correlation of ``x`` with ``weight``, by FFT or directly.

    Parameters
    ----------
    x
        ``(B, C, H, W)`` real tensor, any device.
    weight
        ``(O, C / groups, kh, kw)``; cast to ``x.dtype``.
    pad_mode
        Boundary handling, as in :func:`same_padding`: ``"circular"``, ``"reflect"``,
        ``"replicate"`` or ``"constant"`` (zeros).
    groups
        As in :func:`torch.nn.functional.conv2d`.
    method
        ``"auto"`` (default: :func:`choose_method`), ``"fft"`` or ``"direct"``.
    cache
        Optional :class:`SpectrumCache` reusing the kernel's FFT between calls while
        ``weight`` keeps the same values (used only on CPU, and only when ``weight``
        carries no gradient).

    Returns
    -------
    Tensor
        ``(B, O, H, W)``, dtype and device of ``x``; differentiable in ``x`` and ``weight``.
    """
    _check_operands(x, weight, groups)
    if pad_mode not in PAD_MODES:
        raise ValueError(f"pad_mode must be one of {PAD_MODES}, got {pad_mode!r}")
    if method == "auto":
        method = choose_method(x.shape, weight.shape, x.dtype, pad_mode)
    if method == "fft":
        if not fft_supported(x.dtype):
            raise TypeError(f"method='fft' needs a float32 or float64 input, got {x.dtype}")
        return fft_correlate2d(x, weight, pad_mode, groups, cache)
    if method == "direct":
        return direct_correlate2d(x, weight, pad_mode, groups)
    raise ValueError(f"method must be 'auto', 'fft' or 'direct', got {method!r}")
