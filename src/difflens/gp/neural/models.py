"""Neural-process models: each an ``nn.Module`` with ``forward(x_context, y_context, x_target) -> (mean, std)``.

Shapes: ``x_context`` (B, N, Dx), ``y_context`` (B, N, Dy), ``x_target`` (B, M, Dx);
``mean`` and ``std`` are (B, M, Dy), ``std = min_std + softplus(raw)`` (> 0). Every
target is predicted independently given the context (a Gaussian per point).

- :class:`CNP` (Garnelo et al. 2018): ``r = mean_i h(x_i, y_i)``, ``(mean, std) = g(x_t, r)``.
  An empty context gives ``r = 0`` (the model's learned prior).
- :class:`AttentiveCNP`: targets attend to the contexts (multi-head cross-attention,
  keys and queries from an MLP of ``x``); an empty context gives a zero representation.
- :class:`LatentNP`: a CNP with a global latent variable, trained with its ELBO and
  evaluated with an importance-sampled likelihood of the targets jointly.
- :class:`ConvCNP` (Gordon et al. 2020), 1-D inputs: a set convolution puts the
  data on a uniform grid (a density channel and the density-normalised values), a
  CNN maps it (by default a U-Net: strided convolutions down, transposed
  convolutions up with skip connections, a receptive field of ~4 units at a
  fraction of a dilated CNN's cost; or the dilated CNN of earlier versions), and
  a set convolution reads the result back at the targets. The grid is anchored
  at multiples of its *period* (the spacing times ``2**levels`` for the U-Net,
  the spacing for the dilated CNN) and extended to cover every context and target
  input (plus ``margin``), so shifting all inputs by a multiple of the period
  shifts the predictions exactly (translation equivariance); a batch that would
  need more than ``max_grid_points`` grid points is refused with a ``ValueError``.
  An empty context gives a zero density: the CNN's output at no data, the same
  everywhere.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from difflens.tools.rng import default_generator

from .validate import check_context

__all__ = ["CNP", "AttentiveCNP", "ConvCNP", "LatentNP", "UNet1d", "init_parameters", "mlp"]


def init_parameters(model: nn.Module, generator: torch.Generator | None = None) -> nn.Module:
    """Draw every weight of ``model`` from ``generator`` (never torch's global generator); returns ``model``.

    Linear, convolution and transposed-convolution layers get PyTorch's default scheme,
    ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` for weights and biases; attention input projections are Xavier-uniform with zero biases.
    Default generator: :func:`~difflens.tools.rng.default_generator`.
    """
    g = default_generator(generator)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.ConvTranspose1d, nn.ConvTranspose2d)):
                bound = 1.0 / math.sqrt(m.weight[0].numel())
                nn.init.uniform_(m.weight, -bound, bound, generator=g)
                if m.bias is not None:
                    nn.init.uniform_(m.bias, -bound, bound, generator=g)
            elif isinstance(m, nn.MultiheadAttention):
                nn.init.xavier_uniform_(m.in_proj_weight, generator=g)
                nn.init.zeros_(m.in_proj_bias)
    return model


def mlp(sizes: list[int]) -> nn.Sequential:
    """ReLU MLP with the given layer sizes (no activation after the last)."""
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class _Gaussian(nn.Module):
    def __init__(self, min_std: float) -> None:
        super().__init__()
        if not min_std > 0:
            raise ValueError(f"min_std must be > 0, got {min_std}")
        self.min_std = float(min_std)

    def _out(self, raw: Tensor, dy: int) -> tuple[Tensor, Tensor]:
        mean, s = raw[..., :dy], raw[..., dy:]
        return mean, self.min_std + F.softplus(s)


class CNP(_Gaussian):
    """Conditional neural process: deterministic encoder, mean aggregation, Gaussian decoder.

    Parameters
    ----------
    x_dim, y_dim : int
        Input and output dimensions (default 1, 1).
    hidden : int
        Width of the encoder and decoder MLPs and of the representation (default 128).
    layers : int
        Hidden layers of each MLP (default 3).
    min_std : float
        Floor of the predicted standard deviation (default 0.005).
    generator : torch.Generator, optional
        Draws the initial weights (:func:`init_parameters`).
    """

    def __init__(self, x_dim: int = 1, y_dim: int = 1, hidden: int = 128, layers: int = 3,
                 min_std: float = 0.005, generator: torch.Generator | None = None) -> None:
        super().__init__(min_std)
        self.x_dim, self.y_dim = int(x_dim), int(y_dim)
        self.encoder = mlp([x_dim + y_dim] + [hidden] * layers)
        self.decoder = mlp([x_dim + hidden] + [hidden] * layers + [2 * y_dim])
        init_parameters(self, generator)

    def represent(self, x_context: Tensor, y_context: Tensor) -> Tensor:
        """The aggregated representation ``(B, hidden)`` (zeros for an empty context)."""
        if x_context.shape[1] == 0:
            return x_context.new_zeros(x_context.shape[0], self.encoder[-1].out_features)
        return self.encoder(torch.cat([x_context, y_context], -1)).mean(1)

    def forward(self, x_context: Tensor, y_context: Tensor, x_target: Tensor) -> tuple[Tensor, Tensor]:
        """Predictive ``(mean, std)`` at ``x_target`` ``(B, Nt, x_dim)``, each ``(B, Nt, y_dim)``,
        given the context ``x_context`` ``(B, Nc, x_dim)``, ``y_context`` ``(B, Nc, y_dim)``; ``std
        > 0``.
        """
        check_context(x_context, y_context, x_target)
        r = self.represent(x_context, y_context)
        h = torch.cat([x_target, r[:, None].expand(-1, x_target.shape[1], -1)], -1)
        return self._out(self.decoder(h), self.y_dim)


class AttentiveCNP(_Gaussian):
    """A CNP whose targets attend to the contexts (deterministic path with cross-attention).

    Parameters (``generator`` included) as :class:`CNP`, plus ``heads`` (default 8) of ``nn.MultiheadAttention``.
    """

    def __init__(self, x_dim: int = 1, y_dim: int = 1, hidden: int = 128, layers: int = 3, heads: int = 8,
                 min_std: float = 0.005, generator: torch.Generator | None = None) -> None:
        super().__init__(min_std)
        self.x_dim, self.y_dim, self.hidden = int(x_dim), int(y_dim), int(hidden)
        self.encoder = mlp([x_dim + y_dim] + [hidden] * layers)
        self.key = mlp([x_dim, hidden, hidden])
        self.attention = nn.MultiheadAttention(hidden, heads, batch_first=True)
        self.decoder = mlp([x_dim + hidden] + [hidden] * layers + [2 * y_dim])
        init_parameters(self, generator)

    def forward(self, x_context: Tensor, y_context: Tensor, x_target: Tensor) -> tuple[Tensor, Tensor]:
        """Predictive ``(mean, std)`` at ``x_target`` ``(B, Nt, x_dim)``, each ``(B, Nt, y_dim)``,
        given the context ``x_context`` ``(B, Nc, x_dim)``, ``y_context`` ``(B, Nc, y_dim)``; ``std
        > 0``.
        """
        check_context(x_context, y_context, x_target)
        b, m = x_target.shape[:2]
        if x_context.shape[1] == 0:
            r = x_target.new_zeros(b, m, self.hidden)
        else:
            values = self.encoder(torch.cat([x_context, y_context], -1))
            r, _ = self.attention(self.key(x_target), self.key(x_context), values, need_weights=False)
        return self._out(self.decoder(torch.cat([x_target, r], -1)), self.y_dim)


class UNet1d(nn.Module):
    """A 1-D U-Net: ``levels`` strided convolutions down, as many transposed convolutions up, skip connections.

    ``(B, in_channels, G) -> (B, 2 * channels, G)`` for ``G`` a multiple of ``2**levels``. A
    1x1 convolution lifts the input to ``channels``; level ``l`` halves the length with a
    stride-2 convolution (kernel ``kernel_size``) and ReLU; the way up doubles it with a
    transposed convolution, concatenating the skip from the same level; the output is the
    last up-sampled map beside the lifted input. Receptive field about
    ``2 (kernel_size - 1) (2**levels - 1)`` grid points.

    Parameters
    ----------
    in_channels : int
        Input channels.
    channels : int
        Width of every layer (default 32).
    levels : int
        Down-sampling steps (default 4).
    kernel_size : int
        Odd kernel size (default 5).
    """

    def __init__(self, in_channels: int, channels: int = 32, levels: int = 4, kernel_size: int = 5) -> None:
        super().__init__()
        if kernel_size % 2 != 1 or levels < 1:
            raise ValueError(f"need an odd kernel_size and levels >= 1, got {kernel_size} and {levels}")
        self.levels, pad = int(levels), kernel_size // 2
        self.lift = nn.Conv1d(in_channels, channels, 1)
        self.down = nn.ModuleList(nn.Conv1d(channels, channels, kernel_size, stride=2, padding=pad)
                                  for _ in range(levels))
        self.up = nn.ModuleList(nn.ConvTranspose1d(channels if i == 0 else 2 * channels, channels, kernel_size,
                                                   stride=2, padding=pad, output_padding=1) for i in range(levels))

    def forward(self, x: Tensor) -> Tensor:
        """``(B, in_channels, G) -> (B, 2 * channels, G)``; ``G`` must be a multiple of ``2**levels``."""
        if x.shape[-1] % (1 << self.levels):
            raise ValueError(f"UNet1d needs a length that is a multiple of 2**levels = {1 << self.levels}, "
                             f"got {x.shape[-1]}")
        h = self.lift(x)
        skips = [h]
        for conv in self.down:
            h = torch.relu(conv(h))
            skips.append(h)
        skips.pop()  # the deepest map is h itself
        for i, conv in enumerate(self.up):
            h = torch.relu(conv(h if i == 0 else torch.cat([h, skips.pop()], 1)))
        return torch.cat([h, skips.pop()], 1)


class ConvCNP(_Gaussian):
    """Convolutional CNP for 1-D inputs (translation-equivariant).

    Parameters
    ----------
    y_dim : int
        Output dimension (default 1).
    points_per_unit : float
        Grid density (default 32 points per unit of x).
    channels : int
        CNN width (default 32).
    cnn : {"unet", "dilated"}
        The CNN on the grid (default ``"unet"``: :class:`UNet1d` with ``levels``; ``"dilated"``:
        one stride-1 convolution per entry of ``dilations``, the model of earlier versions).
    levels : int
        U-Net depth (default 4: a receptive field of ~120 grid points, ~3.8 units at 32 per unit).
    dilations : tuple of int
        For ``cnn="dilated"``: one conv layer per entry (default ``(1, 2, 4, 8, 1)``, a receptive
        field of ~2 units at 32 points per unit).
    kernel_size : int
        Odd kernel size of the CNN (default 5).
    margin : float
        Grid extension beyond the outermost input, in x units (default 0.5).
    max_grid_points : int
        Refuse batches whose inputs span more grid points than this (default 65,536).
    min_std : float
        Floor of the predicted standard deviation (default 0.005).
    generator : torch.Generator, optional
        Draws the initial weights (:func:`init_parameters`).

    Attributes
    ----------
    period : float
        The grid is anchored at multiples of this (x units): a shift of every input by a multiple
        of it shifts the predictions exactly. ``2**levels / points_per_unit`` for the U-Net,
        ``1 / points_per_unit`` for the dilated CNN.
    """

    def __init__(self, y_dim: int = 1, points_per_unit: float = 32.0, channels: int = 32, cnn: str = "unet",
                 levels: int = 4, dilations: tuple[int, ...] = (1, 2, 4, 8, 1), kernel_size: int = 5,
                 margin: float = 0.5, max_grid_points: int = 65536, min_std: float = 0.005,
                 generator: torch.Generator | None = None) -> None:
        super().__init__(min_std)
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        if not points_per_unit > 0 or not margin >= 0:
            raise ValueError(f"need points_per_unit > 0 and margin >= 0, got {points_per_unit} and {margin}")
        if cnn not in ("unet", "dilated"):
            raise ValueError(f"cnn must be 'unet' or 'dilated', got {cnn!r}")
        self.x_dim, self.y_dim = 1, int(y_dim)
        self.points_per_unit, self.margin, self.max_grid_points = float(points_per_unit), float(margin), \
            int(max_grid_points)
        spacing = 1.0 / self.points_per_unit
        self.log_scale_in = nn.Parameter(torch.tensor(math.log(2 * spacing)))
        self.log_scale_out = nn.Parameter(torch.tensor(math.log(2 * spacing)))
        if cnn == "unet":
            self.cnn: nn.Module = UNet1d(1 + y_dim, channels, levels, kernel_size)
            self.grid_multiple, width = 1 << int(levels), 2 * channels
        else:
            convs: list[nn.Module] = [nn.Conv1d(1 + y_dim, channels, 1)]
            for d in dilations:
                convs += [nn.ReLU(), nn.Conv1d(channels, channels, kernel_size, padding=d * (kernel_size // 2),
                                               dilation=d)]
            self.cnn = nn.Sequential(*convs)
            self.grid_multiple, width = 1, channels
        self.period = self.grid_multiple / self.points_per_unit
        self.head = mlp([width, channels, 2 * y_dim])
        init_parameters(self, generator)

    def grid(self, x_context: Tensor, x_target: Tensor) -> Tensor:
        """The grid ``(G,)`` covering every input of the batch plus ``margin`` (to within a spacing).

        It starts at a multiple of :attr:`period` and holds a multiple of ``period *
        points_per_unit`` points (what the U-Net's down-sampling needs).
        """
        xs = torch.cat([x_context.reshape(-1), x_target.reshape(-1)])
        ppu, q = self.points_per_unit, self.grid_multiple
        lo = math.floor((float(xs.min()) - self.margin) * ppu / q) * q
        hi = math.ceil((float(xs.max()) + self.margin) * ppu / q) * q
        hi = max(hi, lo + q)
        if hi - lo > self.max_grid_points:
            raise ValueError(f"the inputs span [{float(xs.min()):.3g}, {float(xs.max()):.3g}]: a ConvCNP grid of "
                             f"{hi - lo} points at {ppu:g} per unit exceeds max_grid_points="
                             f"{self.max_grid_points}; lower points_per_unit or split the batch")
        return torch.arange(lo, hi, device=xs.device, dtype=x_target.dtype) / ppu

    @staticmethod
    def _weights(a: Tensor, b: Tensor, log_scale: Tensor) -> Tensor:
        return torch.exp(-0.5 * ((a[..., :, None] - b[..., None, :]) / log_scale.exp()).square())

    def forward(self, x_context: Tensor, y_context: Tensor, x_target: Tensor) -> tuple[Tensor, Tensor]:
        """Predictive ``(mean, std)`` at ``x_target`` ``(B, Nt, x_dim)``, each ``(B, Nt, y_dim)``,
        given the context ``x_context`` ``(B, Nc, x_dim)``, ``y_context`` ``(B, Nc, y_dim)``; ``std
        > 0``.
        """
        check_context(x_context, y_context, x_target)
        if x_context.shape[-1] != 1:
            raise ValueError(f"ConvCNP takes 1-D inputs (B, N, 1), got x_context of shape {tuple(x_context.shape)}")
        g = self.grid(x_context, x_target)  # (G,)
        b = x_target.shape[0]
        w = self._weights(x_context[..., 0], g, self.log_scale_in)  # (B, N, G)
        density = w.sum(1, keepdim=True)  # (B, 1, G)
        values = torch.einsum("bng,bnd->bdg", w, y_context) / (density + 1e-8)
        h = self.cnn(torch.cat([density, values], 1))  # (B, C, G)
        wt = self._weights(x_target[..., 0], g, self.log_scale_out)  # (B, M, G)
        feats = torch.einsum("bmg,bcg->bmc", wt, h.expand(b, -1, -1))
        return self._out(self.head(feats), self.y_dim)


class LatentNP(_Gaussian):
    """Latent-variable neural process: a deterministic path (as :class:`CNP`) and a global latent ``z``.

    ``q(z | set) = N(mu(s), sigma(s)^2)`` with ``s`` the mean of an MLP of the set's pairs;
    the decoder maps ``(x_t, r, z)`` to a Gaussian. Trained with the ELBO
    (:meth:`training_loss`): ``E_{q(z|C,T)} log p(y_T | z) - KL(q(z|C,T) || q(z|C))``;
    evaluated with an importance-sampled estimate of the joint ``log p(y_T | C)``
    (:meth:`log_likelihood`). :meth:`forward` returns the prediction at the mean of
    ``q(z | C)`` (one Gaussian per target, not the mixture).

    Parameters as :class:`CNP`, plus ``latent`` (dimension of ``z``, default 64).
    """

    def __init__(self, x_dim: int = 1, y_dim: int = 1, hidden: int = 128, layers: int = 3, latent: int = 64,
                 min_std: float = 0.005, generator: torch.Generator | None = None) -> None:
        super().__init__(min_std)
        self.x_dim, self.y_dim, self.latent = int(x_dim), int(y_dim), int(latent)
        self.encoder = mlp([x_dim + y_dim] + [hidden] * layers)
        self.latent_encoder = mlp([x_dim + y_dim] + [hidden] * layers)
        self.latent_head = mlp([hidden, hidden, 2 * latent])
        self.decoder = mlp([x_dim + hidden + latent] + [hidden] * layers + [2 * y_dim])
        init_parameters(self, generator)

    def _pool(self, net: nn.Module, x: Tensor, y: Tensor, width: int) -> Tensor:
        if x.shape[1] == 0:
            return x.new_zeros(x.shape[0], width)
        return net(torch.cat([x, y], -1)).mean(1)

    def q(self, x: Tensor, y: Tensor) -> torch.distributions.Normal:
        """``q(z | {(x_i, y_i)})``, batch shape ``(B, latent)`` (an empty set gives a fixed learned prior)."""
        h = self.latent_head(self._pool(self.latent_encoder, x, y, self.latent_encoder[-1].out_features))
        return torch.distributions.Normal(h[..., :self.latent], 0.01 + 0.99 * torch.sigmoid(h[..., self.latent:]))

    def decode(self, x_context: Tensor, y_context: Tensor, x_target: Tensor, z: Tensor) -> tuple[Tensor, Tensor]:
        """Gaussian at the targets given latent samples ``z`` (S, B, latent): ``(S, B, M, Dy)`` each."""
        r = self._pool(self.encoder, x_context, y_context, self.encoder[-1].out_features)
        s, (b, m, _) = z.shape[0], x_target.shape
        h = torch.cat([x_target.expand(s, b, m, -1), r[None, :, None].expand(s, b, m, -1),
                       z[:, :, None].expand(s, b, m, -1)], -1)
        return self._out(self.decoder(h), self.y_dim)

    def forward(self, x_context: Tensor, y_context: Tensor, x_target: Tensor) -> tuple[Tensor, Tensor]:
        """Predictive ``(mean, std)`` at ``x_target`` ``(B, Nt, x_dim)``, each ``(B, Nt, y_dim)``,
        given the context ``x_context`` ``(B, Nc, x_dim)``, ``y_context`` ``(B, Nc, y_dim)``; ``std
        > 0``.
        """
        check_context(x_context, y_context, x_target)
        mean, std = self.decode(x_context, y_context, x_target, self.q(x_context, y_context).mean[None])
        return mean[0], std[0]

    def _randn(self, shape, generator: torch.Generator, like: Tensor) -> Tensor:
        return torch.randn(shape, generator=generator, device=generator.device).to(like)

    def training_loss(self, x_context: Tensor, y_context: Tensor, x_target: Tensor, y_target: Tensor,
                      generator: torch.Generator) -> Tensor:
        """Negative ELBO per target point (one reparameterised sample of ``z`` from ``q(z | C, T)``)."""
        from torch.distributions import kl_divergence

        check_context(x_context, y_context, x_target, y_target)
        post, prior = self.q(x_target, y_target), self.q(x_context, y_context)
        z = post.mean + post.stddev * self._randn(post.mean.shape, generator, post.mean)
        mean, std = self.decode(x_context, y_context, x_target, z[None])
        ll = (-0.5 * ((y_target - mean[0]) / std[0]).square() - std[0].log() - 0.5 * math.log(2 * math.pi)).sum((1, 2))
        kl = kl_divergence(post, prior).sum(-1)
        return ((kl - ll) / (x_target.shape[1] * self.y_dim)).mean()

    def log_likelihood(self, x_context: Tensor, y_context: Tensor, x_target: Tensor, y_target: Tensor,
                       generator: torch.Generator, samples: int = 64) -> Tensor:
        """Importance-sampled ``log p(y_T | C) / M`` per task, ``(B,)``, proposal ``q(z | C, T)``."""
        check_context(x_context, y_context, x_target, y_target)
        with torch.no_grad():
            post, prior = self.q(torch.cat([x_context, x_target], 1), torch.cat([y_context, y_target], 1)), \
                self.q(x_context, y_context)
            z = post.mean + post.stddev * self._randn((samples, *post.mean.shape), generator, post.mean)
            mean, std = self.decode(x_context, y_context, x_target, z)
            ll = (-0.5 * ((y_target - mean) / std).square() - std.log() - 0.5 * math.log(2 * math.pi)).sum((2, 3))
            w = ll + prior.log_prob(z).sum(-1) - post.log_prob(z).sum(-1)
            return (torch.logsumexp(w, 0) - math.log(samples)) / (x_target.shape[1] * self.y_dim)
