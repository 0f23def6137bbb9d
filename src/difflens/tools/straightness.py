"""Image sequences and their straightness: lines, Brownian bridges, translations, deviation from a line.

The helpers of :class:`~difflens.synthesize.Geodesic` (plenoptic 1.1's ``po.tools``
names). A sequence is a tensor ``(T, channel, height, width)``: frame ``t`` is ``sequence[t]``;
an anchor image is ``(1, channel, height, width)``.

Examples
--------
>>> import torch
>>> from difflens.tools.straightness import deviation_from_line, make_straight_line
>>> a, b = torch.zeros(1, 1, 4, 4), torch.ones(1, 1, 4, 4)
>>> line = make_straight_line(a, b, 4)
>>> line.shape
torch.Size([5, 1, 4, 4])
>>> along, off = deviation_from_line(line)
>>> along.tolist(), float(off.max())
([0.0, 0.25, 0.5, 0.75, 1.0], 0.0)
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .rng import default_generator

__all__ = ["make_straight_line", "sample_brownian_bridge", "deviation_from_line", "translation_sequence"]


def _check_anchor(image: Tensor, name: str) -> None:
    if not isinstance(image, Tensor) or image.ndim != 4:
        shape = tuple(image.shape) if isinstance(image, Tensor) else type(image).__name__
        raise ValueError(f"{name} must be a 4-d tensor (1, channel, height, width), got {shape}")
    if image.shape[0] != 1:
        raise ValueError(f"input_tensor batch dimension must be 1: {name} has batch {image.shape[0]} "
                         "(one anchor image, shape (1, channel, height, width))")


def _check_pair(start: Tensor, stop: Tensor, n_steps: int) -> None:
    _check_anchor(start, "start")
    _check_anchor(stop, "stop")
    if start.shape != stop.shape:
        raise ValueError(f"start and stop must be same shape, but got {tuple(start.shape)} and {tuple(stop.shape)}")
    _check_steps(n_steps)


def _check_steps(n_steps: int) -> None:
    if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps <= 0:
        raise ValueError(f"n_steps must be positive, but got {n_steps!r}")


def make_straight_line(start: Tensor, stop: Tensor, n_steps: int) -> Tensor:
    """The pixel-wise linear interpolation ("pixel fade") from ``start`` to ``stop``.

    Parameters
    ----------
    start, stop : Tensor
        Anchor images ``(1, C, H, W)`` of the same shape.
    n_steps : int
        Number of transitions (> 0); the line has ``n_steps + 1`` frames.

    Returns
    -------
    Tensor
        ``(n_steps + 1, C, H, W)``: frame ``t`` is ``(1 - t/n) start + (t/n) stop``,
        on ``start``'s device and dtype.

    Raises
    ------
    ValueError
        A batch other than 1, different shapes, or ``n_steps <= 0``.
    """
    _check_pair(start, stop, n_steps)
    tt = torch.linspace(0, 1, n_steps + 1, device=start.device, dtype=start.dtype).view(-1, 1, 1, 1)
    return (1 - tt) * start + tt * stop


def sample_brownian_bridge(start: Tensor, stop: Tensor, n_steps: int, max_norm: float = 1.0,
                           generator: torch.Generator | None = None) -> Tensor:
    """A random path from ``start`` to ``stop``: a Brownian bridge pinned at both anchors.

    Parameters
    ----------
    start, stop : Tensor
        Anchor images ``(1, C, H, W)`` of the same shape.
    n_steps : int
        Number of transitions (> 0).
    max_norm : float
        How far (L2) the bridge strays from the straight line near its middle: each of the
        ``d = C * H * W`` components has standard deviation about ``max_norm / sqrt(d)``
        there (>= 0; 0 gives the straight line). Default 1.
    generator : torch.Generator, optional
        Draws the increments (default :func:`difflens.tools.rng.default_generator`).

    Returns
    -------
    Tensor
        ``(n_steps + 1, C, H, W)``, equal to ``start`` and ``stop`` at its ends.

    Raises
    ------
    ValueError
        As :func:`make_straight_line`, or ``max_norm < 0``.
    """
    _check_pair(start, stop, n_steps)
    if not (isinstance(max_norm, (int, float)) and math.isfinite(max_norm) and max_norm >= 0):
        raise ValueError(f"max_norm must be non-negative but got {max_norm!r}")
    g = default_generator(generator, device=start.device)
    d = start[0].numel()
    sigma = math.sqrt(1.0 / n_steps / d) * 2.0 * float(max_norm)
    steps = sigma * torch.randn(n_steps, d, generator=g, device=start.device, dtype=start.dtype)
    walk = torch.cat([start.reshape(1, d), start.reshape(1, d) + torch.cumsum(steps, 0)])
    tt = torch.linspace(0, 1, n_steps + 1, device=start.device, dtype=start.dtype)[:, None]
    bridge = walk - tt * (walk[-1:] - stop.reshape(1, d))
    return bridge.reshape(n_steps + 1, *start.shape[1:])


def deviation_from_line(sequence: Tensor, normalize: bool = True) -> tuple[Tensor, Tensor]:
    """How far each frame of ``sequence`` lies along and off the line through its two end frames.

    Parameters
    ----------
    sequence : Tensor
        ``(T, ...)``, T >= 2 frames (images or representations) whose end frames differ.
    normalize : bool
        Divide both distances by the distance between the end frames. Default ``True``.

    Returns
    -------
    along, off : Tensor
        ``(T,)`` each: the Euclidean distance from the first frame of each frame's
        projection onto the line, and the distance of the frame from the line.

    Raises
    ------
    ValueError
        Fewer than two frames, or end frames that coincide (no line).
    """
    if not isinstance(sequence, Tensor) or sequence.ndim < 2 or sequence.shape[0] < 2:
        raise ValueError("sequence must be a tensor (T, ...) with at least 2 frames, got "
                         f"{tuple(sequence.shape) if isinstance(sequence, Tensor) else type(sequence).__name__}")
    y = sequence.reshape(sequence.shape[0], -1)
    direction = y[-1] - y[0]
    length = torch.linalg.vector_norm(direction)
    if not bool(length > 0):
        raise ValueError("the first and last frames of sequence are equal: there is no line to deviate from")
    centred = y - y[0]
    along = centred @ (direction / length)
    off = torch.linalg.vector_norm(centred - along[:, None] * (direction / length), dim=1)
    if normalize:
        along, off = along / length, off / length
    return along, off


def translation_sequence(image: Tensor, n_steps: int = 10) -> Tensor:
    """``image`` shifted right by 0, 1, ..., ``n_steps`` pixels (circularly): a natural "video".

    Parameters
    ----------
    image : Tensor
        ``(1, C, H, W)``.
    n_steps : int
        Number of one-pixel shifts (> 0). Default 10.

    Returns
    -------
    Tensor
        ``(n_steps + 1, C, H, W)``; frame ``k`` is ``torch.roll(image, k, -1)``.

    Raises
    ------
    ValueError
        A batch other than 1, or ``n_steps <= 0``.
    """
    _check_anchor(image, "image")
    _check_steps(n_steps)
    return torch.cat([torch.roll(image, k, -1) for k in range(n_steps + 1)])
