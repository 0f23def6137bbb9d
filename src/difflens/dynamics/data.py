"""Ground-truth trajectories: random initial conditions spun up onto the attractor,
tight-tolerance float64 integration, disjoint splits and normalisation.

Shapes: trajectories are ``(n, T, d)`` (trajectory, time sample, variable);
``T = n_samples``, samples ``dt`` apart starting on the attractor.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from .integrators import integrate
from .systems import Lorenz63

__all__ = ["TrajectoryData", "attractor_initial_conditions", "ground_truth", "make_dataset"]


def _check_generator(generator) -> torch.Generator:
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator (every random draw takes one), got "
                        f"{type(generator).__name__}")
    return generator


def attractor_initial_conditions(system: nn.Module, n: int, generator: torch.Generator,
                                 spinup: float = 20.0, center: Tensor | None = None, spread: float = 10.0,
                                 dtype: torch.dtype = torch.float64, device: torch.device | str | None = None,
                                 ) -> Tensor:
    """``(n, d)`` states on the attractor: random draws, then ``spinup`` time units of integration.

    Draws are ``center + spread * N(0, 1)`` (``center`` default: (0, 0, 25) for
    3-D systems, zeros otherwise), then integrated with dopri5 (rtol 1e-8) for
    ``spinup`` model time units so transients have decayed (Lorenz-63 contracts
    phase-space volume by exp(-13.67) per time unit).
    """
    _check_generator(generator)
    if int(n) < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if spinup <= 0:
        raise ValueError(f"spinup must be > 0 time units, got {spinup}")
    d = int(getattr(system, "dim", 3))
    if center is None:
        center = torch.tensor([0.0, 0.0, 25.0]) if d == 3 else torch.zeros(d)
    noise = torch.randn(int(n), d, generator=generator, dtype=torch.float64)
    x0 = (center.to(torch.float64) + spread * noise).to(dtype=dtype, device=device)
    t = torch.tensor([0.0, float(spinup)], dtype=dtype, device=device)
    with torch.no_grad():
        return integrate(system, x0, t, method="dopri5", rtol=1e-8, atol=1e-8)[-1]


def ground_truth(system: nn.Module, x0: Tensor, n_samples: int, dt: float, rtol: float = 1e-10,
                 atol: float = 1e-10) -> Tensor:
    """``(n, n_samples, d)``: adaptive dopri5 at tight tolerance from ``x0`` ``(n, d)``, sampled every ``dt``.

    Sample 0 is ``x0``. Use float64 ``x0``: at rtol = atol = 1e-10 the reference
    stays within ~1e-3 of the exact Lorenz-63 solution for about 20 Lyapunov times.
    """
    if x0.ndim != 2:
        raise ValueError(f"x0 must have shape (n, d), got {list(x0.shape)}")
    if int(n_samples) < 1 or not dt > 0:
        raise ValueError(f"need n_samples >= 1 and dt > 0, got {n_samples}, {dt}")
    t = torch.arange(int(n_samples), dtype=x0.dtype, device=x0.device) * float(dt)
    with torch.no_grad():
        states = integrate(system, x0, t, method="dopri5", rtol=rtol, atol=atol)
    return states.transpose(0, 1).contiguous()


@dataclass
class TrajectoryData:
    """Disjoint train / validation / test trajectories of one system, and their statistics.

    Attributes
    ----------
    train, val, test: ``(n, T, d)`` physical-unit trajectories, ``dt`` apart.
    dt: the sampling step (model time units).
    mean, std: ``(d,)`` per-variable mean and standard deviation of ``train``
        (the attractor's statistics; VPT normalises errors by ``std``).
    delta_std: ``(d,)`` standard deviation of one-step increments ``x[n+1] - x[n]`` in ``train``.
    delta2_std: ``(d,)`` standard deviation of second differences ``x[n+1] - 2 x[n] + x[n-1]``.
    info: how the data were made (system, tolerances, seed draws).
    """

    train: Tensor
    val: Tensor
    test: Tensor
    dt: float
    mean: Tensor
    std: Tensor
    delta_std: Tensor
    delta2_std: Tensor
    info: dict = field(default_factory=dict)

    def normalise(self, x: Tensor) -> Tensor:
        """``(x - mean) / std`` for ``x`` of shape ``(..., d)``."""
        return (x - self.mean.to(x)) / self.std.to(x)

    def denormalise(self, z: Tensor) -> Tensor:
        """Inverse of :meth:`normalise`."""
        return z * self.std.to(z) + self.mean.to(z)

    def to(self, dtype: torch.dtype | None = None, device: torch.device | str | None = None) -> TrajectoryData:
        """A copy with every tensor moved/cast."""
        def mv(x: Tensor) -> Tensor:
            return x.to(dtype=dtype or x.dtype, device=device or x.device)
        return TrajectoryData(mv(self.train), mv(self.val), mv(self.test), self.dt, mv(self.mean), mv(self.std),
                              mv(self.delta_std), mv(self.delta2_std), dict(self.info))


def make_dataset(generator: torch.Generator, system: nn.Module | None = None, n_train: int = 64,
                 n_val: int = 16, n_test: int = 128, train_samples: int = 2000, test_samples: int = 2000,
                 dt: float = 0.01, spinup: float = 20.0, rtol: float = 1e-10, atol: float = 1e-10,
                 device: torch.device | str | None = None) -> TrajectoryData:
    """Make a :class:`TrajectoryData` (float64) for ``system`` (default :class:`Lorenz63`).

    Every trajectory starts from its own random draw spun up onto the attractor,
    so the splits are disjoint; ``n_test`` trajectories (``test_samples`` long)
    give the held-out initial conditions for VPT. Train and validation
    trajectories are ``train_samples`` long. Ground truth: dopri5 at
    ``rtol``/``atol`` in float64.
    """
    _check_generator(generator)
    for name, v in (("n_train", n_train), ("n_val", n_val), ("n_test", n_test)):
        if int(v) < 1:
            raise ValueError(f"{name} must be >= 1, got {v}")
    if train_samples < 3 or test_samples < 2:
        raise ValueError("need train_samples >= 3 and test_samples >= 2")
    system = system if system is not None else Lorenz63(device=device)
    n = n_train + n_val + n_test
    x0 = attractor_initial_conditions(system, n, generator, spinup=spinup, device=device)
    long = max(train_samples, test_samples)
    traj = ground_truth(system, x0, long, dt, rtol=rtol, atol=atol)
    train = traj[:n_train, :train_samples]
    val = traj[n_train:n_train + n_val, :train_samples]
    test = traj[n_train + n_val:, :test_samples]
    flat = train.reshape(-1, train.shape[-1])
    delta = (train[:, 1:] - train[:, :-1]).reshape(-1, train.shape[-1])
    delta2 = (train[:, 2:] - 2 * train[:, 1:-1] + train[:, :-2]).reshape(-1, train.shape[-1])
    info = {"system": repr(system), "rtol": rtol, "atol": atol, "spinup": spinup, "dt": dt}
    return TrajectoryData(train.contiguous(), val.contiguous(), test.contiguous(), float(dt), flat.mean(0),
                          flat.std(0), delta.std(0), delta2.std(0), info)
