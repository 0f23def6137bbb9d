"""Meta-learning tasks for neural processes: curves drawn from a GP prior, split into context and target.

A task batch holds ``x_context`` (B, N, 1), ``y_context`` (B, N, 1), ``x_target``
(B, M, 1), ``y_target`` (B, M, 1); the targets are disjoint from the contexts.
Every draw comes from the sampler's explicit ``torch.Generator``; its state is
in :meth:`GPTaskSampler.state_dict`, so a training run resumed from a
checkpoint draws the same tasks.

Kernels (:func:`task_kernel`), on ``x in [-2, 2]`` by default:

- ``"se"``: squared exponential, lengthscale 0.4, variance 1 (the DeepMind CNP notebook's);
- ``"matern52"``: Matérn-5/2, lengthscale 0.4, variance 1;
- ``"periodic"``: periodic, period 1, lengthscale 1 (scikit-learn's ExpSineSquared), variance 1;
- ``"weakly_periodic"``: periodic (period 1, variance 0.5) + squared exponential (0.4, variance 0.5).

Observations carry Gaussian noise of standard deviation ``noise_std`` (default
0.02, the notebook's ``sigma_noise``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ..kernels import Kernel, Matern, Periodic, SquaredExponential
from ..linalg import cholesky_jittered

__all__ = ["KERNEL_NAMES", "DigitTaskSampler", "GPTaskSampler", "Tasks", "task_kernel"]

KERNEL_NAMES = ("se", "matern52", "periodic", "weakly_periodic")
"""The task kernels :func:`task_kernel` and :class:`GPTaskSampler` accept by name."""


def task_kernel(name: str) -> Kernel:
    """The generating kernel called ``name`` (one of :data:`KERNEL_NAMES`), in float64."""
    if name == "se":
        return SquaredExponential(0.4, 1.0)
    if name == "matern52":
        return Matern(2.5, 0.4, 1.0)
    if name == "periodic":
        return Periodic(1.0, 1.0, 1.0)
    if name == "weakly_periodic":
        return Periodic(1.0, 1.0, 0.5) + SquaredExponential(0.4, 0.5)
    raise ValueError(f"unknown task kernel {name!r}; choose one of {KERNEL_NAMES}")


@dataclass
class Tasks:
    """A batch of tasks: contexts ``(B, N, D)``/``(B, N, 1)`` and disjoint targets ``(B, M, D)``/``(B, M, 1)``."""

    x_context: Tensor
    y_context: Tensor
    x_target: Tensor
    y_target: Tensor

    def to(self, device=None, dtype=None) -> Tasks:
        """The batch moved/cast (all four tensors)."""
        return Tasks(*(t.to(device=device, dtype=dtype) for t in self))

    def __iter__(self):
        return iter((self.x_context, self.y_context, self.x_target, self.y_target))

    @property
    def all_x(self) -> Tensor:
        """Contexts then targets, ``(B, N + M, D)`` (what a training loss predicts)."""
        return torch.cat([self.x_context, self.x_target], 1)

    @property
    def all_y(self) -> Tensor:
        return torch.cat([self.y_context, self.y_target], 1)


def _int_range(value: Any, name: str, low: int) -> tuple[int, int]:
    lo, hi = (value, value) if isinstance(value, int) else tuple(value)
    if not (isinstance(lo, int) and isinstance(hi, int)) or lo < low or hi < lo:
        raise ValueError(f"{name} must be an int >= {low} or a range (lo, hi) with {low} <= lo <= hi, got {value!r}")
    return int(lo), int(hi)


class GPTaskSampler:
    """Batches of GP-prior curves split at random into context and target points.

    Parameters
    ----------
    kernel : Kernel or str
        The generating kernel (a :class:`~difflens.gp.kernels.Kernel` or a name from
        :data:`KERNEL_NAMES`); evaluated in float64.
    generator : torch.Generator
        A CPU generator: every input, curve, noise and split size comes from it.
    batch_size : int
        Tasks per batch (default 16).
    n_context : int or (int, int)
        Context points per task, drawn uniformly in the inclusive range per batch (default (3, 50)).
    n_target : int or (int, int)
        Target points per task (disjoint from the context; default 50).
    x_range : (float, float)
        Inputs are uniform on this interval (default (-2, 2)).
    noise_std : float
        Standard deviation of the observation noise (default 0.02).
    dtype : torch.dtype
        dtype of the returned tensors (default float32; the curves are drawn in float64).
    """

    def __init__(self, kernel: Kernel | str, generator: torch.Generator, *, batch_size: int = 16,
                 n_context: int | tuple[int, int] = (3, 50), n_target: int | tuple[int, int] = 50,
                 x_range: tuple[float, float] = (-2.0, 2.0), noise_std: float = 0.02,
                 dtype: torch.dtype = torch.float32) -> None:
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        self.kernel_name = kernel if isinstance(kernel, str) else type(kernel).__name__
        self.kernel = (task_kernel(kernel) if isinstance(kernel, str) else kernel).to(torch.float64)
        if not isinstance(self.kernel, Kernel):
            raise TypeError(f"kernel must be a difflens.gp Kernel or a name in {KERNEL_NAMES}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        self.n_context = _int_range(n_context, "n_context", 0)
        self.n_target = _int_range(n_target, "n_target", 1)
        lo, hi = (float(v) for v in x_range)
        if not lo < hi:
            raise ValueError(f"x_range must be (low, high) with low < high, got {x_range!r}")
        if not noise_std > 0:
            raise ValueError(f"noise_std must be > 0, got {noise_std!r}")
        self.x_range, self.noise_std, self.dtype = (lo, hi), float(noise_std), dtype
        self.batch_size, self.generator, self.draws = int(batch_size), generator, 0

    def _size(self, bounds: tuple[int, int]) -> int:
        lo, hi = bounds
        return lo if lo == hi else int(torch.randint(lo, hi + 1, (1,), generator=self.generator))

    def sample(self, batch_size: int | None = None, n_context: int | None = None,
               x_range: tuple[float, float] | None = None) -> Tasks:
        """One batch of tasks (sizes drawn from the sampler's ranges unless given)."""
        g = self.generator
        b = self.batch_size if batch_size is None else int(batch_size)
        n = self._size(self.n_context) if n_context is None else int(n_context)
        m = self._size(self.n_target)
        lo, hi = x_range or self.x_range
        x = lo + (hi - lo) * torch.rand(b, n + m, 1, generator=g, dtype=torch.float64)
        with torch.no_grad():
            cov = torch.stack([self.kernel(xi) for xi in x])
            cov.diagonal(dim1=-2, dim2=-1).add_(self.noise_std ** 2)
            L, info = torch.linalg.cholesky_ex(cov)  # one batched factorisation; jitter only where it fails
            for i in torch.nonzero(info).reshape(-1).tolist():
                L[i] = cholesky_jittered(cov[i], what="task covariance", warn=False)[0]
        y = L @ torch.randn(b, n + m, 1, generator=g, dtype=torch.float64)
        self.draws += 1
        t = Tasks(x[:, :n], y[:, :n], x[:, n:], y[:, n:])
        return t.to(dtype=self.dtype)

    def state_dict(self) -> dict[str, Any]:
        """The sampler's state for a checkpoint: its generator's state and how many draws it made.
        """
        return {"generator": self.generator.get_state(), "draws": self.draws}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` (a resumed run then draws what an uninterrupted one would).
        """
        self.generator.set_state(state["generator"])
        self.draws = int(state["draws"])


class DigitTaskSampler:
    """Image completion: pixel coordinates in [-1, 1]^2 -> intensity, with a random context fraction.

    Parameters
    ----------
    images : Tensor
        ``(K, 1, H, W)`` images in [0, 1] (e.g. :func:`difflens.data.digits.load_digits`).
    generator : torch.Generator
        Draws the images and the context pixels.
    batch_size : int
        Images per batch (default 16).
    context_fraction : (float, float)
        The fraction of pixels in the context is uniform on this range per batch (default (0.05, 0.5));
        the targets are all pixels.
    """

    def __init__(self, images: Tensor, generator: torch.Generator, *, batch_size: int = 16,
                 context_fraction: tuple[float, float] = (0.05, 0.5)) -> None:
        if not isinstance(images, Tensor) or images.ndim != 4 or images.shape[1] != 1:
            raise ValueError(f"images must have shape (K, 1, H, W), got {getattr(images, 'shape', type(images))}")
        lo, hi = context_fraction
        if not 0 <= lo <= hi <= 1:
            raise ValueError(f"context_fraction must be (lo, hi) with 0 <= lo <= hi <= 1, got {context_fraction}")
        self.images, self.generator, self.batch_size = images.float(), generator, int(batch_size)
        self.context_fraction, self.draws = (float(lo), float(hi)), 0
        h, w = images.shape[-2:]
        gy, gx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
        self.coords = torch.stack([gy.reshape(-1), gx.reshape(-1)], -1)  # (H W, 2)

    def complete(self, images: Tensor, fraction: float, generator: torch.Generator) -> Tasks:
        """Tasks for the given images ``(b, 1, H, W)`` with ``round(fraction * H W)`` context pixels."""
        b, p = images.shape[0], self.coords.shape[0]
        n = round(fraction * p)
        order = torch.argsort(torch.rand(b, p, generator=generator), -1)[:, :n]
        values = images.reshape(b, p, 1).float()
        xs = self.coords.expand(b, p, 2)
        return Tasks(torch.gather(xs, 1, order[..., None].expand(b, n, 2)),
                     torch.gather(values, 1, order[..., None]), xs.clone(), values)

    def sample(self) -> Tasks:
        """One batch of completion tasks from random images, with a random context fraction."""
        g = self.generator
        idx = torch.randint(0, self.images.shape[0], (self.batch_size,), generator=g)
        lo, hi = self.context_fraction
        frac = lo + (hi - lo) * float(torch.rand((), generator=g))
        self.draws += 1
        return self.complete(self.images[idx], frac, g)

    def state_dict(self) -> dict[str, Any]:
        """The sampler's state for a checkpoint: its generator's state and how many draws it made.
        """
        return {"generator": self.generator.get_state(), "draws": self.draws}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` (a resumed run then draws what an uninterrupted one would).
        """
        self.generator.set_state(state["generator"])
        self.draws = int(state["draws"])
