"""Policies learned by backpropagation through an unrolled (learned) model: the truck backer-upper.

:class:`Policy` maps a state to a bounded action; :class:`TruckTraining` trains it by unrolling
policy and model from random start poses until each truck reaches the dock wall, jack-knifes or
runs out of steps, and backpropagating the final docking error through the whole unroll
(Nguyen & Widrow, 1990).
"""

from __future__ import annotations

import math
import os
from typing import Callable

import torch
from torch import Tensor, nn

from difflens.engine import Optimization
from difflens.tools.rng import default_generator

from .environments import Truck, unroll_truck
from .models import init_linear

__all__ = ["Policy", "StartSampler", "TruckTraining", "evaluate_truck"]


class Policy(nn.Module):
    """An MLP controller ``a = mid + half * tanh(net(features(s)))``: always inside ``[low, high]``.

    Parameters
    ----------
    state_dim: n; low, high: ``(m,)`` action bounds; hidden: width; layers: hidden layers.
    scale: ``(n,)`` divisor of the state before the network (default ones).
    generator: initial weights (default :func:`difflens.tools.rng.default_generator`).
    """

    def __init__(self, state_dim: int, low: Tensor, high: Tensor, hidden: int = 32, layers: int = 2,
                 scale: Tensor | None = None, generator: torch.Generator | None = None,
                 dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        low, high = torch.as_tensor(low, dtype=dtype), torch.as_tensor(high, dtype=dtype)
        self.register_buffer("a_mid", (high + low) / 2)
        self.register_buffer("a_half", (high - low) / 2)
        self.register_buffer("scale", torch.ones(state_dim, dtype=dtype) if scale is None
                             else torch.as_tensor(scale, dtype=dtype))
        dims = [state_dim] + [hidden] * layers
        mods: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            mods += [nn.Linear(a, b, dtype=dtype), nn.Tanh()]
        mods.append(nn.Linear(dims[-1], low.shape[0], dtype=dtype))
        self.net = init_linear(nn.Sequential(*mods), default_generator(generator))

    def forward(self, s: Tensor) -> Tensor:
        """Actions ``(..., m)`` within ``[low, high]`` (a tanh output) for states ``s`` ``(...,
        n)``."""
        return self.a_mid + self.a_half * torch.tanh(self.net(s / self.scale))


class StartSampler:
    """Random start poses from its own generator (checkpointed), with a curriculum.

    Over the first ``ramp`` draws the region grows linearly from a small one in front of the dock
    (x in [1.5, 2], |y| <= 0.3, angles within 10 degrees) to the truck's full training region.
    """

    def __init__(self, env: Truck, batch_size: int, generator: torch.Generator, ramp: int = 0) -> None:
        self.env, self.batch_size, self.generator, self.ramp = env, batch_size, generator, int(ramp)
        self.draws = 0

    def sample(self) -> Tensor:
        """``(batch_size, 4)`` truck start poses from the current (growing) curriculum region."""
        frac = 1.0 if self.ramp <= 0 else min(1.0, (self.draws + 1) / self.ramp)
        self.draws += 1
        easy_lo = [1.5, -0.3, -math.radians(10), -math.radians(10)]
        easy_hi = [2.0, 0.3, math.radians(10), math.radians(10)]
        lo = [e + frac * (f - e) for e, f in zip(easy_lo, self.env.region_low)]
        hi = [e + frac * (f - e) for e, f in zip(easy_hi, self.env.region_high)]
        s = self.env.uniform(self.batch_size, lo, hi, self.generator)
        hitch = self.env.uniform(self.batch_size, [-frac * self.env.max_hitch], [frac * self.env.max_hitch + 1e-12],
                                  self.generator)[:, 0]
        s[:, 2] = s[:, 3] + hitch
        return s

    def state_dict(self) -> dict:
        """The sampler's state for a checkpoint: its generator's state and how many draws it made.
        """
        return {"generator": self.generator.get_state(), "draws": self.draws}

    def load_state_dict(self, state: dict) -> None:
        """Restore a :meth:`state_dict` (a resumed run then draws what an uninterrupted one would).
        """
        self.generator.set_state(state["generator"])
        self.draws = int(state["draws"])


class TruckTraining:
    """Train a truck :class:`Policy` through a model ``step(s, a)`` (the learned emulator, or the truth).

    Loss per batch of start poses: the mean over trucks of the final docking error
    ``|rear - target|^2 + w_angle * theta_trailer^2`` (at the pose where the rear reaches the
    wall), plus ``w_jackknife * relu(|theta_c - theta_t| - 80 deg)^2`` summed along the unroll.

    Parameters
    ----------
    env: the :class:`Truck` (geometry, termination, start region). policy: the controller.
    model: the transition used for the unroll (default the true kinematics ``env.step``).
    batch_size, lr, max_steps: start poses per iteration, Adam's rate, unroll length.
    ramp: draws over which the start region grows to the full one (see :class:`StartSampler`).
    generator: start poses. ``optimization`` is the engine; :meth:`train` runs it.
    """

    def __init__(self, env: Truck, policy: Policy, model: Callable[[Tensor, Tensor], Tensor] | None = None, *,
                 batch_size: int = 64, lr: float = 3e-3, max_steps: int = 120, w_angle: float = 1.0,
                 w_jackknife: float = 10.0, decay_steps: int | None = None, ramp: int = 0,
                 generator: torch.Generator | None = None) -> None:
        self.env, self.policy = env, policy
        self.model = model if model is not None else env.step
        self.max_steps, self.w_angle, self.w_jackknife = max_steps, w_angle, w_jackknife
        self.sampler = StartSampler(env, batch_size, default_generator(generator), ramp)
        sched = None
        if decay_steps:
            sched = lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.1 ** (1.0 / decay_steps))
        self.optimization = Optimization(policy, self.loss, optimizer=lambda p: torch.optim.Adam(p, lr=lr),
                                         scheduler=sched, state={"sampler": self.sampler}, record_change=False)

    def loss(self) -> Tensor:
        """The engine's loss: over a batch of sampled starts, the mean of the final docking error
        (squared position error plus ``w_angle`` times the squared trailer angle) of the truck
        unrolled through the model under the policy, plus ``w_jackknife`` times the summed squared
        hitch angle beyond 80 degrees.
        """
        s0 = self.sampler.sample()
        out = unroll_truck(self.env, self.model, s0, self.policy, self.max_steps)
        f = out["final"]
        err = ((f[:, :2] - self.env.target.to(f)) ** 2).sum(-1) + self.w_angle * f[:, 3] ** 2
        hitch = (out["states"][..., 2] - out["states"][..., 3]).abs()
        jk = torch.relu(hitch - math.radians(80.0)).pow(2).sum(1)
        return (err + self.w_jackknife * jk).mean()

    def train(self, steps: int, *, progress: bool | str = False,
              checkpoint_path: str | os.PathLike | None = None, resume: bool = False) -> "TruckTraining":
        """Run ``steps`` Adam iterations (each: one batch of fresh start poses)."""
        self.optimization.configure(progress=progress, checkpoint_path=checkpoint_path)
        self.optimization.run(steps, resume=resume)
        return self


def evaluate_truck(env: Truck, policy: Callable[[Tensor], Tensor], starts: Tensor, max_steps: int = 150,
                   step: Callable[[Tensor, Tensor], Tensor] | None = None) -> dict[str, Tensor]:
    """Dock from every start ``(B, 4)`` on the true kinematics (or ``step``); no gradients.

    Returns :meth:`Truck.dock`'s keys plus ``success`` ``(B,)``, ``position_error`` ``(B,)``
    (trailer lengths) and ``angle_error_deg`` ``(B,)``.
    """
    env.check_state(starts, "starts")
    with torch.no_grad():
        out = unroll_truck(env, step or env.step, starts, policy, max_steps)
    f = out["final"]
    out["success"] = env.success(f, out["reached_wall"], out["jackknifed"])
    out["position_error"] = (f[:, :2] - env.target.to(f)).norm(dim=-1)
    out["angle_error_deg"] = torch.rad2deg(f[:, 3].abs())
    return out
