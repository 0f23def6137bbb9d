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

from .environments import Truck, check_finite, unroll_truck
from .models import init_linear

__all__ = ["ClippedAdam", "Policy", "StartSampler", "TruckTraining", "evaluate_truck", "with_target"]


class ClippedAdam(torch.optim.Adam):
    """Adam whose gradient is clipped to a total norm of at most ``max_norm`` before each step.

    Backpropagation through a long unroll of a model can give rare huge gradients (a truck
    near a jack-knife); clipping keeps one such batch from undoing the training. ``step(closure)``
    evaluates the closure, clips, then takes Adam's step.
    """

    def __init__(self, params, lr: float = 1e-3, max_norm: float = 1.0, **kw) -> None:
        if not max_norm > 0:
            raise ValueError(f"max_norm must be > 0, got {max_norm!r}")
        super().__init__(params, lr=lr, **kw)
        self.max_norm = float(max_norm)

    def step(self, closure=None):  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        grads = [p for group in self.param_groups for p in group["params"] if p.grad is not None]
        torch.nn.utils.clip_grad_norm_(grads, self.max_norm)
        super().step()
        return loss


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


def with_target(policy: Callable[[Tensor], Tensor], target_y: Tensor) -> Callable[[Tensor], Tensor]:
    """The truck controller for docks at ``(0, target_y)``: ``s (B, 4) -> policy([s, target_y]) (B, 1)``.

    ``policy`` takes the 5-vector ``[x, y, theta_cab, theta_trailer, y_target]`` (a :class:`Policy`
    with ``state_dim=5``): the target is part of its input, so one controller docks at any point of
    the wall. ``target_y`` is ``(B,)``, one dock per truck (rows stay aligned through an unroll).
    """
    if target_y.ndim != 1:
        raise ValueError(f"target_y must have shape (B,), got {list(target_y.shape)}")

    def act(s: Tensor) -> Tensor:
        if s.shape[0] != target_y.shape[0]:
            raise ValueError(f"{s.shape[0]} states for {target_y.shape[0]} targets")
        return policy(torch.cat([s, target_y.to(s)[:, None]], -1))

    return act


def _policy_inputs(policy) -> int | None:
    scale = getattr(policy, "scale", None)
    return int(scale.shape[0]) if isinstance(scale, Tensor) else None


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

    def targets(self, lo: float, hi: float) -> Tensor:
        """``(batch_size,)`` dock positions ``y`` uniform in ``[lo, hi]`` (from the same generator)."""
        return self.env.uniform(self.batch_size, [lo], [hi], self.generator)[:, 0]

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
    ``e = |rear - target|^2 + w_angle * theta_trailer^2`` (at the pose where the rear reaches the
    wall; with ``root=True`` its square root ``sqrt(e + 1e-4)``, a distance that keeps pulling the
    near misses as hard as the far ones), plus ``w_jackknife * relu(|theta_c - theta_t| - 80 deg)^2``
    summed along the unroll.

    Parameters
    ----------
    env : Truck
        Geometry, termination and start region.
    policy : Policy
        The controller.
    model : callable, optional
        The transition used for the unroll (default the true kinematics ``env.step``).
    batch_size, lr, max_steps : int, float, int
        Start poses per iteration, Adam's rate, unroll length.
    w_angle, w_jackknife : float
        Weights of the trailer-angle error and of the jack-knife penalty.
    decay_steps : int, optional
        The learning rate decays tenfold over this many steps (default constant).
    ramp : int
        Draws over which the start region grows to the full one (see :class:`StartSampler`).
    root : bool
        Train on the square root of the docking error (see above).
    clip_grad : float, optional
        Clip the gradient's total norm to this (:class:`ClippedAdam`; default no clipping).
    target_range : tuple of float, optional
        ``(lo, hi)``: train one controller for docks anywhere on the wall with ``y`` in that
        range. Each start pose is drawn relative to its own random dock (its ``y`` shifted by the
        dock's), ``policy`` takes ``[x, y, theta_c, theta_t, y_target]`` (``Policy(5, ...)``, see
        :func:`with_target`) and the error is measured to that dock. Default: the truck's one
        ``target``.
    generator : torch.Generator, optional
        Start poses. ``optimization`` is the engine; :meth:`train` runs it.
    """

    def __init__(self, env: Truck, policy: Policy, model: Callable[[Tensor, Tensor], Tensor] | None = None, *,
                 batch_size: int = 64, lr: float = 3e-3, max_steps: int = 120, w_angle: float = 1.0,
                 w_jackknife: float = 10.0, decay_steps: int | None = None, ramp: int = 0, root: bool = False,
                 clip_grad: float | None = None, target_range: tuple[float, float] | None = None,
                 generator: torch.Generator | None = None) -> None:
        if target_range is not None:
            lo, hi = (float(v) for v in target_range)
            if not lo <= hi:
                raise ValueError(f"target_range must be (lo, hi) with lo <= hi, got {target_range!r}")
            if _policy_inputs(policy) not in (None, env.state_dim + 1):
                raise ValueError(f"with target_range the policy takes {env.state_dim + 1} inputs (the state and "
                                 f"the dock's y), this one takes {_policy_inputs(policy)}")
            target_range = (lo, hi)
        elif _policy_inputs(policy) not in (None, env.state_dim):
            raise ValueError(f"the policy takes {_policy_inputs(policy)} inputs, the truck's state has "
                             f"{env.state_dim} (give target_range for a target-conditioned policy)")
        self.target_range = target_range
        self.env, self.policy = env, policy
        self.model = model if model is not None else env.step
        self.max_steps, self.w_angle, self.w_jackknife, self.root = max_steps, w_angle, w_jackknife, bool(root)
        self.sampler = StartSampler(env, batch_size, default_generator(generator), ramp)
        sched = None
        if decay_steps:
            sched = lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.1 ** (1.0 / decay_steps))
        if clip_grad is None:
            opt = lambda p: torch.optim.Adam(p, lr=lr)
        else:
            opt = lambda p: ClippedAdam(p, lr=lr, max_norm=clip_grad)
        self.optimization = Optimization(policy, self.loss, optimizer=opt,
                                         scheduler=sched, state={"sampler": self.sampler}, record_change=False)

    def loss(self) -> Tensor:
        """The engine's loss: over a batch of sampled starts, the mean of the final docking error
        (squared position error plus ``w_angle`` times the squared trailer angle) of the truck
        unrolled through the model under the policy, plus ``w_jackknife`` times the summed squared
        hitch angle beyond 80 degrees.
        """
        s0 = self.sampler.sample()
        if self.target_range is None:
            act, target = self.policy, self.env.target.to(s0)
        else:
            ty = self.sampler.targets(*self.target_range).to(s0)
            s0 = s0 + torch.stack([torch.zeros_like(ty), ty, torch.zeros_like(ty), torch.zeros_like(ty)], -1)
            act, target = with_target(self.policy, ty), torch.stack([torch.zeros_like(ty), ty], -1)
        out = unroll_truck(self.env, self.model, s0, act, self.max_steps)
        f = out["final"]
        err = ((f[:, :2] - target) ** 2).sum(-1) + self.w_angle * f[:, 3] ** 2
        if self.root:
            err = (err + 1e-4).sqrt()
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
                   step: Callable[[Tensor, Tensor], Tensor] | None = None,
                   target_y: Tensor | None = None) -> dict[str, Tensor]:
    """Dock from every start ``(B, 4)`` on the true kinematics (or ``step``); no gradients.

    ``target_y``: ``(B,)`` docks at ``(0, target_y)`` for a target-conditioned policy (see
    :func:`with_target`); default the truck's ``target``.
    Returns :meth:`Truck.dock`'s keys plus ``success`` ``(B,)``, ``position_error`` ``(B,)``
    (trailer lengths) and ``angle_error_deg`` ``(B,)``.
    """
    env.check_state(starts, "starts")
    if target_y is None:
        act, target = policy, env.target.to(starts)
    else:
        check_finite(target_y, "target_y")
        if target_y.shape != starts.shape[:1]:
            raise ValueError(f"target_y must have shape ({starts.shape[0]},), got {list(target_y.shape)}")
        act = with_target(policy, target_y)
        target = torch.stack([torch.zeros_like(target_y), target_y], -1).to(starts)
    with torch.no_grad():
        out = unroll_truck(env, step or env.step, starts, act, max_steps)
    f = out["final"]
    out["success"] = env.success(f, out["reached_wall"], out["jackknifed"], target=target)
    out["position_error"] = (f[:, :2] - target).norm(dim=-1)
    out["angle_error_deg"] = torch.rad2deg(f[:, 3].abs())
    return out
