"""A differentiable marker renderer: Gaussian blobs joined into one image.

Each marker ``p`` is an isotropic 2-D Gaussian with centre ``(x_p, y_p)``,
standard deviation ``s_p`` and peak intensity ``a_p``::

    I_p(u, v) = a_p * exp(-((u - x_p)^2 + (v - y_p)^2) / (2 s_p^2))

evaluated at the pixel centres. The markers are joined pixel by pixel:

- ``"max"``: ``max_p I_p`` (the seed's choice; the gradient reaches only the
  winning marker at each pixel),
- ``"softor"``: ``1 - prod_p (1 - I_p)`` (the probabilistic union of inks; equal
  to the max for one marker, between max and sum otherwise; intensities must
  lie in [0, 1]; every marker gets gradient),
- ``"logsumexp"``: ``tau * log(mean_p exp(I_p / tau))`` (a smooth max that is 0
  where all markers are 0, lies between the mean and the max, and tends to the
  max as ``tau -> 0``),
- ``"sum"``: ``sum_p I_p`` (additive ink, unbounded).

Coordinates are in pixels: the image covers ``[0, W] x [0, H]``, ``x`` runs
along the columns and ``y`` down the rows, and pixel ``(i, j)`` has its centre at
``(x, y) = (j + 0.5, i + 0.5)``. To render the same markers at ``k`` times the
resolution, multiply positions and sizes by ``k``.

The functional form :func:`render_markers` does the work; :class:`MarkerRenderer`
is a thin :class:`torch.nn.Module` holding the canvas size and the join.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = ["JOINS", "MarkerRenderer", "canvas_shape", "gesture_positions", "join_markers", "render_markers"]

JOINS = ("max", "softor", "logsumexp", "sum")
"""The ways :func:`join_markers` can combine marker images (``join=`` of the renderers)."""


def canvas_shape(shape: int | Sequence[int]) -> tuple[int, int]:
    """A canvas size ``H`` (square) or ``(H, W)`` as a checked ``(H, W)`` tuple of positive ints."""
    if isinstance(shape, int):
        shape = (shape, shape)
    shape = tuple(int(s) for s in shape)
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"canvas shape must be (H, W) with positive sizes, got {shape}")
    return shape  # type: ignore[return-value]


def render_markers(
    positions: Tensor,
    sizes: Tensor,
    intensities: Tensor | None = None,
    shape: int | Sequence[int] = 28,
    join: str = "max",
    temperature: float = 0.05,
) -> Tensor:
    """Render Gaussian markers and join them into images.

    Parameters
    ----------
    positions: ``(..., P, 2)`` marker centres ``(x, y)`` in pixels (see the module docstring).
    sizes: ``(..., P)`` Gaussian standard deviations in pixels (must be > 0).
    intensities: ``(..., P)`` peak values; ``None`` means 1 for every marker.
    shape: canvas ``(H, W)`` or one int for a square canvas (default 28).
    join: ``"max"`` (default), ``"softor"``, ``"logsumexp"`` or ``"sum"``.
    temperature: ``tau`` of the ``"logsumexp"`` join (default 0.05).

    Returns
    -------
    ``(..., H, W)`` images with the dtype and device of ``positions``.
    Leading batch dimensions broadcast between the three inputs.

    Examples
    --------
    Two markers on the default 28 x 28 canvas, and a batch of 5 strokes of 3 markers each:

    >>> import torch
    >>> from difflens.draw import render_markers
    >>> image = render_markers(torch.tensor([[14.0, 14.0], [5.0, 20.0]]), torch.tensor([1.5, 1.0]))
    >>> image.shape, bool(0 < image.max() <= 1)
    (torch.Size([28, 28]), True)
    >>> positions = torch.rand(5, 3, 2, generator=torch.Generator().manual_seed(0)) * 28
    >>> render_markers(positions, torch.full((5, 3), 1.2), join="softor").shape
    torch.Size([5, 28, 28])
    """
    if not isinstance(positions, Tensor) or not isinstance(sizes, Tensor):
        raise TypeError("positions and sizes must be torch tensors")
    if positions.ndim < 2 or positions.shape[-1] != 2:
        raise ValueError(f"positions must have shape (..., P, 2), got {tuple(positions.shape)}")
    if sizes.ndim < 1 or sizes.shape[-1] != positions.shape[-2]:
        raise ValueError(
            f"sizes must have shape (..., P) with P={positions.shape[-2]} markers, got {tuple(sizes.shape)}"
        )
    if intensities is None:
        intensities = torch.ones_like(sizes)
    elif intensities.shape[-1] != positions.shape[-2]:
        raise ValueError(
            f"intensities must have shape (..., P) with P={positions.shape[-2]}, got {tuple(intensities.shape)}"
        )
    if join not in JOINS:
        raise ValueError(f"join must be one of {JOINS}, got {join!r}")
    if join == "logsumexp" and not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    height, width = canvas_shape(shape)
    dtype, device = positions.dtype, positions.device
    u = torch.arange(width, dtype=dtype, device=device) + 0.5  # (W,) column centres
    v = torch.arange(height, dtype=dtype, device=device) + 0.5  # (H,) row centres
    inv = 1.0 / (2.0 * sizes.to(dtype) ** 2)  # (..., P)
    # Separable Gaussian: exp(-(du^2 + dv^2) k) = exp(-du^2 k) * exp(-dv^2 k)
    gx = torch.exp(-((u - positions[..., 0:1]) ** 2) * inv[..., None])  # (..., P, W)
    gy = torch.exp(-((v - positions[..., 1:2]) ** 2) * inv[..., None])  # (..., P, H)
    gy = gy * intensities.to(dtype)[..., None]
    markers = gy[..., :, None] * gx[..., None, :]  # (..., P, H, W)
    return join_markers(markers, join=join, temperature=temperature)


def join_markers(markers: Tensor, join: str = "max", temperature: float = 0.05) -> Tensor:
    """Join ``(..., P, H, W)`` marker images over ``P`` into ``(..., H, W)`` (see module docstring)."""
    if join == "max":
        return markers.amax(dim=-3)
    if join == "sum":
        return markers.sum(dim=-3)
    if join == "softor":
        # 1 - prod(1 - m), computed in log space for many markers; clamp keeps log finite at m = 1.
        one_minus = (1.0 - markers).clamp_min(torch.finfo(markers.dtype).tiny)
        return 1.0 - torch.exp(torch.log(one_minus).sum(dim=-3))
    if join == "logsumexp":
        n = markers.shape[-3]
        return temperature * (torch.logsumexp(markers / temperature, dim=-3) - torch.log(
            torch.tensor(float(n), dtype=markers.dtype, device=markers.device)))
    raise ValueError(f"join must be one of {JOINS}, got {join!r}")


def gesture_positions(velocities: Tensor, start: Tensor | Sequence[float], max_step: float) -> Tensor:
    """Positions of a single pen gesture from bounded velocities.

    ``positions[..., 0, :] = start`` and
    ``positions[..., k, :] = start + max_step * sum_{j < k} velocities[..., j, :]``
    for ``k = 1..S``; so each coordinate of each step moves by at most
    ``max_step`` pixels when the velocities lie in [-1, 1] (e.g. from ``tanh``).

    Parameters
    ----------
    velocities: ``(..., S, 2)`` steps ``(dx, dy)`` in units of ``max_step``.
    start: ``(2,)`` or ``(..., 2)`` start point ``(x, y)`` in pixels.
    max_step: the step scale in pixels (> 0).

    Returns
    -------
    ``(..., S + 1, 2)`` positions in pixels, the start point first.
    """
    if velocities.ndim < 2 or velocities.shape[-1] != 2:
        raise ValueError(f"velocities must have shape (..., S, 2), got {tuple(velocities.shape)}")
    if not max_step > 0:
        raise ValueError(f"max_step must be > 0, got {max_step}")
    start = torch.as_tensor(start, dtype=velocities.dtype, device=velocities.device)
    if start.shape[-1] != 2:
        raise ValueError(f"start must have shape (..., 2), got {tuple(start.shape)}")
    steps = max_step * velocities
    zero = torch.zeros_like(steps[..., :1, :])
    offsets = torch.cat([zero, torch.cumsum(steps, dim=-2)], dim=-2)  # (..., S+1, 2)
    return start.unsqueeze(-2) + offsets


class MarkerRenderer(nn.Module):
    """``nn.Module`` wrapper of :func:`render_markers` with a fixed canvas and join.

    ``MarkerRenderer(shape=28, join="max")(positions, sizes, intensities)`` returns
    ``(..., H, W)`` images; it has no parameters.
    """

    def __init__(self, shape: int | Sequence[int] = 28, join: str = "max", temperature: float = 0.05):
        super().__init__()
        if join not in JOINS:
            raise ValueError(f"join must be one of {JOINS}, got {join!r}")
        self.shape = canvas_shape(shape)
        self.join = join
        self.temperature = float(temperature)

    def forward(self, positions: Tensor, sizes: Tensor, intensities: Tensor | None = None) -> Tensor:
        """Images ``(..., H, W)``: :func:`render_markers` with this renderer's canvas, join and
        temperature."""
        return render_markers(positions, sizes, intensities, self.shape, self.join, self.temperature)

    def extra_repr(self) -> str:
        """The settings shown inside the module's ``repr``."""
        extra = f", temperature={self.temperature}" if self.join == "logsumexp" else ""
        return f"shape={self.shape}, join={self.join!r}{extra}"
