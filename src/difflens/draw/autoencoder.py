"""The inverse-graphics autoencoder: an encoder network writes marker commands, a renderer draws them.

The *encoder* (:class:`MLPEncoder` or :class:`ConvEncoder`) maps an image to
``decoder.n_raw`` unconstrained numbers. The *decoder* is a fixed,
parameter-free program that squashes those numbers into drawing commands and
renders them with :func:`~difflens.draw.renderer.render_markers`:

- :class:`StaticDecoder` (the seed's first variant): ``n_markers`` independent
  markers, each ``x, y, size`` (and optionally intensity) through a sigmoid.
- :class:`GestureDecoder` (the seed's second variant): one pen stroke of
  ``n_points`` markers starting at a fixed point (default: the left middle);
  each step is ``max_step * tanh(.)`` per coordinate, each point has its own
  intensity and size (sigmoids), and positions are the cumulative sum.

All lengths are in pixels of the ``shape`` canvas.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from difflens.tools.rng import default_generator

from .renderer import JOINS, canvas_shape, gesture_positions, render_markers

__all__ = ["Commands", "ConvEncoder", "DrawingAutoencoder", "GestureDecoder", "MLPEncoder", "StaticDecoder", "init_parameters"]


@dataclass
class Commands:
    """Drawing commands for a batch of ``B`` images with ``P`` markers each.

    positions ``(B, P, 2)`` pixels; sizes ``(B, P)`` pixels (Gaussian std);
    intensities ``(B, P)`` in [0, 1]; velocities ``(B, P - 1, 2)`` in [-1, 1]
    for a gesture, ``None`` for static markers.
    """

    positions: Tensor
    sizes: Tensor
    intensities: Tensor
    velocities: Tensor | None = None

    def detach(self) -> Commands:
        """A copy of the commands with every tensor detached from the graph."""
        v = None if self.velocities is None else self.velocities.detach()
        return Commands(self.positions.detach(), self.sizes.detach(), self.intensities.detach(), v)


def init_parameters(module: nn.Module, generator: torch.Generator) -> nn.Module:
    """Re-draw every Linear/Conv weight and bias from ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``.

    This is PyTorch's default initialisation, but drawn from ``generator``
    instead of the global random state, so a model is reproducible from an
    explicit seed. Returns ``module``.
    """
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)):
                fan_in = m.weight[0].numel()
                bound = 1.0 / fan_in ** 0.5
                w = torch.rand(m.weight.shape, generator=generator, dtype=m.weight.dtype)
                m.weight.copy_((2 * w - 1) * bound)
                if m.bias is not None:
                    b = torch.rand(m.bias.shape, generator=generator, dtype=m.bias.dtype)
                    m.bias.copy_((2 * b - 1) * bound)
    return module


def _mlp(sizes: Sequence[int], activation: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


class MLPEncoder(nn.Module):
    """Dense network ``(B, C, H, W) -> (B, n_outputs)``: flatten, ``hidden`` ReLU layers, linear output.

    ``generator``: the weights are drawn from it (:func:`init_parameters`); default
    :func:`~difflens.tools.rng.default_generator` (seed 0), never torch's global generator.
    """

    def __init__(self, n_outputs: int, image_shape: Sequence[int] = (1, 28, 28),
                 hidden: Sequence[int] = (256, 256), generator: torch.Generator | None = None):
        super().__init__()
        n_in = 1
        for s in image_shape:
            n_in *= int(s)
        self.image_shape = tuple(int(s) for s in image_shape)
        self.net = _mlp([n_in, *hidden, int(n_outputs)])
        init_parameters(self, default_generator(generator))

    def forward(self, images: Tensor) -> Tensor:
        """Raw decoder inputs ``(B, n_outputs)`` from images ``(B, C, H, W)``."""
        return self.net(images.flatten(1))


class ConvEncoder(nn.Module):
    """Small CNN ``(B, C, H, W) -> (B, n_outputs)``: strided 3x3 convolutions, then an MLP head.

    ``channels`` sets the convolutions (each halves the resolution); ``hidden``
    the dense layers after flattening; ``generator`` as for :class:`MLPEncoder`.
    """

    def __init__(self, n_outputs: int, image_shape: Sequence[int] = (1, 28, 28),
                 channels: Sequence[int] = (16, 32), hidden: Sequence[int] = (256,),
                 generator: torch.Generator | None = None):
        super().__init__()
        c, h, w = (int(s) for s in image_shape)
        self.image_shape = (c, h, w)
        convs: list[nn.Module] = []
        for out in channels:
            convs += [nn.Conv2d(c, int(out), 3, stride=2, padding=1), nn.ReLU()]
            c, h, w = int(out), (h + 1) // 2, (w + 1) // 2
        self.features = nn.Sequential(*convs)
        self.head = _mlp([c * h * w, *hidden, int(n_outputs)])
        init_parameters(self, default_generator(generator))

    def forward(self, images: Tensor) -> Tensor:
        """Raw decoder inputs ``(B, n_outputs)`` from images ``(B, C, H, W)``."""
        return self.head(self.features(images).flatten(1))


class _Decoder(nn.Module):
    n_raw: int

    def __init__(self, shape: int | Sequence[int], min_size: float, max_size: float,
                 join: str, temperature: float):
        super().__init__()
        if not 0 < min_size <= max_size:
            raise ValueError(f"need 0 < min_size <= max_size, got {min_size}, {max_size}")
        if join not in JOINS:
            raise ValueError(f"join must be one of {JOINS}, got {join!r}")
        self.shape = canvas_shape(shape)
        self.min_size, self.max_size = float(min_size), float(max_size)
        self.join, self.temperature = join, float(temperature)

    def _check(self, raw: Tensor) -> None:
        if raw.ndim != 2 or raw.shape[1] != self.n_raw:
            raise ValueError(f"{type(self).__name__} expects raw outputs of shape (B, {self.n_raw}), "
                             f"got {tuple(raw.shape)}")

    def _canvas_size(self, like: Tensor) -> Tensor:
        """``(W, H)`` in pixels, in the (x, y) order of positions, with ``like``'s dtype and device."""
        h, w = self.shape
        return torch.tensor([w, h], dtype=like.dtype, device=like.device)

    def _size(self, z: Tensor) -> Tensor:
        return self.min_size + (self.max_size - self.min_size) * torch.sigmoid(z)

    def render(self, commands: Commands, scale: float = 1.0) -> Tensor:
        """Images ``(B, 1, H*scale, W*scale)`` of ``commands`` (``scale`` > 1 for sharper figures)."""
        h, w = self.shape
        shape = (int(round(h * scale)), int(round(w * scale)))
        img = render_markers(commands.positions * scale, commands.sizes * scale, commands.intensities,
                             shape, self.join, self.temperature)
        return img[:, None]

    def forward(self, raw: Tensor) -> tuple[Tensor, Commands]:
        """``(images (B, 1, H, W), commands)`` rendered from the encoder's raw outputs ``(B,
        n_raw)``."""
        commands = self.commands(raw)
        return self.render(commands), commands

    def commands(self, raw: Tensor) -> Commands:  # pragma: no cover - abstract
        """The drawing :class:`Commands` (pixel positions, sizes, intensities) from raw outputs
        ``(B, n_raw)``."""
        raise NotImplementedError

    def code(self, commands: Commands) -> Tensor:  # pragma: no cover - abstract
        """The ``(B, D)`` features of ``commands`` used for clustering (see the class notes for
        which)."""
        raise NotImplementedError


class StaticDecoder(_Decoder):
    """``n_markers`` independent markers: ``x, y`` = canvas size * sigmoid, size in ``[min_size, max_size]``.

    With ``learn_intensity=False`` (the seed) every marker has intensity 1; raw
    outputs are ``(B, n_markers * 3)`` (``* 4`` with intensities). The code used
    for clustering is the marker positions ``(x / W, y / H)`` (``code="positions"``,
    default; sizes add little but spread, they lowered k-means accuracy on the
    bundled digits) or ``code="all"``: positions, ``size / max_size`` and intensities.
    """

    def __init__(self, n_markers: int = 10, shape: int | Sequence[int] = 28, min_size: float = 0.75,
                 max_size: float = 3.5, learn_intensity: bool = False, join: str = "max",
                 temperature: float = 0.05, code: str = "positions"):
        super().__init__(shape, min_size, max_size, join, temperature)
        if code not in ("positions", "all"):
            raise ValueError(f"code must be 'positions' or 'all', got {code!r}")
        self.code_kind = code
        if n_markers < 1:
            raise ValueError(f"n_markers must be >= 1, got {n_markers}")
        self.n_markers = int(n_markers)
        self.learn_intensity = bool(learn_intensity)
        self.n_raw = self.n_markers * (4 if learn_intensity else 3)

    def commands(self, raw: Tensor) -> Commands:
        self._check(raw)
        z = raw.reshape(len(raw), self.n_markers, -1)
        positions = torch.sigmoid(z[..., :2]) * self._canvas_size(raw)
        sizes = self._size(z[..., 2])
        intensities = torch.sigmoid(z[..., 3]) if self.learn_intensity else torch.ones_like(sizes)
        return Commands(positions, sizes, intensities)

    def code(self, commands: Commands) -> Tensor:
        parts = [(commands.positions / self._canvas_size(commands.positions)).flatten(1)]
        if self.code_kind == "all":
            parts.append(commands.sizes / self.max_size)
        if self.code_kind == "all" and self.learn_intensity:
            parts.append(commands.intensities)
        return torch.cat(parts, dim=1)


class GestureDecoder(_Decoder):
    """One pen gesture of ``n_points`` markers from ``start`` with steps of at most ``max_step``.

    Raw outputs ``(B, 2 (n_points - 1) + 2 n_points)``: velocities (tanh), then
    per-point intensity and size (sigmoids). ``start`` is given as a fraction of
    the canvas ``(x / W, y / H)``; the default ``(0.15, 0.5)`` is the left middle
    of the MNIST digit box. The code used for clustering is
    ``(velocities, intensities)`` as in the seed, or ``code="positions"`` for the
    pen positions (divided by the canvas size) with the intensities.

    ``speed="constant"`` replaces the tanh velocities by unit direction vectors
    (each pair of raw outputs normalised), so every step has length ``max_step``
    and the code becomes the sequence of drawing directions, a chain code.
    """

    def __init__(self, n_points: int = 40, shape: int | Sequence[int] = 28, max_step: float = 2.0,
                 start: Sequence[float] = (0.15, 0.5), min_size: float = 0.6, max_size: float = 2.0,
                 join: str = "max", temperature: float = 0.05, code: str = "velocities",
                 speed: str = "free"):
        super().__init__(shape, min_size, max_size, join, temperature)
        if speed not in ("free", "constant"):
            raise ValueError(f"speed must be 'free' or 'constant', got {speed!r}")
        self.speed = speed
        if n_points < 2:
            raise ValueError(f"n_points must be >= 2, got {n_points}")
        if not max_step > 0:
            raise ValueError(f"max_step must be > 0, got {max_step}")
        if len(start) != 2:
            raise ValueError(f"start must be (x_fraction, y_fraction), got {start}")
        if code not in ("velocities", "positions"):
            raise ValueError(f"code must be 'velocities' or 'positions', got {code!r}")
        self.n_points, self.max_step, self.code_kind = int(n_points), float(max_step), code
        h, w = self.shape
        self.start = (float(start[0]) * w, float(start[1]) * h)
        self.n_raw = 2 * (self.n_points - 1) + 2 * self.n_points

    def commands(self, raw: Tensor) -> Commands:
        self._check(raw)
        s = self.n_points - 1
        z = raw[:, : 2 * s].reshape(len(raw), s, 2)
        if self.speed == "free":
            velocities = torch.tanh(z)
        else:  # unit direction vectors: every step has length max_step
            velocities = z / torch.sqrt((z ** 2).sum(-1, keepdim=True) + 1e-8)
        intensities = torch.sigmoid(raw[:, 2 * s: 2 * s + self.n_points])
        sizes = self._size(raw[:, 2 * s + self.n_points:])
        positions = gesture_positions(velocities, self.start, self.max_step)
        return Commands(positions, sizes, intensities, velocities)

    def code(self, commands: Commands) -> Tensor:
        if self.code_kind == "velocities":
            return torch.cat([commands.velocities.flatten(1), commands.intensities], dim=1)
        positions = commands.positions / self._canvas_size(commands.positions)
        return torch.cat([positions.flatten(1), commands.intensities], dim=1)


class DrawingAutoencoder(nn.Module):
    """``encoder`` + parameter-free ``decoder``: ``model(images) -> reconstructions`` ``(B, 1, H, W)``.

    ``model.commands(images)`` gives the :class:`Commands`; ``model.code(images)``
    the ``(B, D)`` features used for clustering.
    """

    def __init__(self, encoder: nn.Module, decoder: _Decoder):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def commands(self, images: Tensor) -> Commands:
        """The drawing :class:`Commands` the decoder renders for images ``(B, C, H, W)``."""
        return self.decoder.commands(self.encoder(images))

    def forward(self, images: Tensor) -> Tensor:
        """Reconstructions ``(B, 1, H, W)`` of images ``(B, C, H, W)``."""
        return self.decoder(self.encoder(images))[0]

    def code(self, images: Tensor) -> Tensor:
        """The ``(B, D)`` clustering features of images ``(B, C, H, W)``."""
        return self.decoder.code(self.commands(images))
