"""Differentiable control problems, batched over start states.

Every environment is an ``nn.Module``-free plain object with

* ``state_dim``, ``action_dim``, ``low``/``high`` (action bounds, tensors ``(action_dim,)``);
* ``step(s, a) -> s'``: one differentiable transition, ``s`` ``(..., state_dim)``,
  ``a`` ``(..., action_dim)``. **Actions outside the bounds are clipped** to
  ``[low, high]`` (a projection; its gradient is zero outside the box);
* ``cost(s, a) -> (...,)``: the running cost of being in ``s`` and applying ``a``;
* ``sample_starts(n, generator) -> (n, state_dim)``: start states of the valid set;
* ``check_state(s)``: raises ``ValueError`` naming the problem for a state of the
  wrong shape, with NaN/inf, or outside the environment's valid set.

Environments
------------
:class:`PointMass`  a 2-D double integrator (linear: ``s' = A s + B a``), for LQR.
:class:`Car`        the notes' MPC car: state ``[x, y, heading, speed]``, actions
                    ``[acceleration, steering curvature]``, round obstacles.
:class:`Pendulum`   a torque-limited pendulum (``theta = 0`` upright), RK4 substeps.
:class:`Truck`      the truck backer-upper (cab and trailer kinematics of Nguyen & Widrow).
:class:`ControlledLorenz`  Lorenz-63 with an additive control ``dx/dt = f(x) + u``.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor

from difflens.dynamics.integrators import rk4_step
from difflens.dynamics.systems import Lorenz63
from difflens.tools.rng import default_generator

__all__ = ["Car", "ControlledLorenz", "Environment", "Pendulum", "PointMass", "Truck", "check_finite"]


def check_finite(x: Tensor, name: str) -> None:
    """Raise ``ValueError`` naming ``name`` when ``x`` is not a floating tensor or holds NaN/inf."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {x.dtype}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or inf")


class Environment:
    """Base class: bounds, clipping, validation and start sampling (see the module doc)."""

    state_dim: int = 0
    action_dim: int = 0
    name: str = "environment"

    def __init__(self, low: Sequence[float], high: Sequence[float], dtype: torch.dtype = torch.float64,
                 device: torch.device | str | None = None) -> None:
        self.dtype = dtype
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.low = torch.as_tensor(low, dtype=dtype, device=self.device)
        self.high = torch.as_tensor(high, dtype=dtype, device=self.device)
        if self.low.shape != (self.action_dim,) or bool((self.low >= self.high).any()):
            raise ValueError(f"action bounds must be ({self.action_dim},) with low < high, got {low}, {high}")

    # -- actions and states -----------------------------------------------------------------
    def clip(self, a: Tensor) -> Tensor:
        """Project actions onto the box ``[low, high]`` (what :meth:`step` applies)."""
        return torch.minimum(torch.maximum(a, self.low.to(a)), self.high.to(a))

    def check_action(self, a: Tensor, name: str = "action") -> None:
        """Shape and finiteness of an action batch (values outside the bounds are clipped, not refused)."""
        check_finite(a, name)
        if a.shape[-1:] != (self.action_dim,):
            raise ValueError(f"{name} must have shape (..., {self.action_dim}) for {self.name}, "
                             f"got {list(a.shape)}")

    def check_state(self, s: Tensor, name: str = "state") -> None:
        """Raise ``ValueError`` for a wrong shape, NaN/inf, or a state outside the valid set."""
        check_finite(s, name)
        if s.shape[-1:] != (self.state_dim,):
            raise ValueError(f"{name} must have shape (..., {self.state_dim}) for {self.name}, "
                             f"got {list(s.shape)}")
        bad = ~self.valid(s)
        if bool(bad.any()):
            idx = tuple(int(i) for i in bad.nonzero()[0])
            raise ValueError(f"{name}{list(idx)} = {s[idx].tolist()} is outside the valid set of {self.name}: "
                             f"{self.valid_set}")

    valid_set: str = "any finite state"

    def valid(self, s: Tensor) -> Tensor:
        """``(...,)`` bool: the states in the valid set (default: all)."""
        return torch.ones(s.shape[:-1], dtype=torch.bool, device=s.device)

    # -- to be provided ---------------------------------------------------------------------
    def step(self, s: Tensor, a: Tensor) -> Tensor:  # pragma: no cover - abstract
        """One time step: the next states ``(..., state_dim)`` from states ``s`` ``(...,
        state_dim)`` and actions ``a`` ``(..., action_dim)`` (clipped to ``[low, high]`` first);
        differentiable.
        """
        raise NotImplementedError

    def cost(self, s: Tensor, a: Tensor) -> Tensor:  # pragma: no cover - abstract
        """``(...,)`` running cost of taking actions ``a`` ``(..., action_dim)`` in states ``s``
        ``(..., state_dim)``."""
        raise NotImplementedError

    def terminal_cost(self, s: Tensor) -> Tensor:
        """``(...,)`` cost of the last state of a horizon (default: the running cost at zero action)."""
        return self.cost(s, torch.zeros(*s.shape[:-1], self.action_dim, dtype=s.dtype, device=s.device))

    def sample_starts(self, n: int, generator: torch.Generator | None = None) -> Tensor:  # pragma: no cover
        """``(n, state_dim)`` start states drawn from the environment's start region with
        ``generator`` (default :func:`difflens.tools.rng.default_generator`).
        """
        raise NotImplementedError

    def uniform(self, n: int, lo: Sequence[float], hi: Sequence[float], generator) -> Tensor:
        """``(n, len(lo))`` states uniform in the box ``[lo, hi]``, drawn from ``generator``
        (default :func:`difflens.tools.rng.default_generator`), in the environment's dtype and
        device.
        """
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be an int >= 1, got {n!r}")
        g = default_generator(generator)
        lo_t = torch.as_tensor(lo, dtype=self.dtype)
        hi_t = torch.as_tensor(hi, dtype=self.dtype)
        u = torch.rand(n, len(lo), generator=g, dtype=self.dtype)
        return (lo_t + (hi_t - lo_t) * u).to(self.device)

    def rollout(self, s0: Tensor, actions: Tensor) -> Tensor:
        """States ``(B, T+1, state_dim)`` from ``s0`` ``(B, state_dim)`` under ``actions`` ``(B, T, action_dim)``."""
        states = [s0]
        for t in range(actions.shape[1]):
            states.append(self.step(states[-1], actions[:, t]))
        return torch.stack(states, 1)


class PointMass(Environment):
    """A 2-D point mass (double integrator): ``p' = p + dt v + dt^2/2 a``, ``v' = v + dt a``.

    State ``[x, y, vx, vy]``; action the acceleration ``[ax, ay]`` in ``[-a_max, a_max]``.
    Cost ``|s|_Q^2 + |a|_R^2`` with ``Q = diag(1, 1, q_v, q_v)``, ``R = r I``: the linear-quadratic
    problem that :func:`~difflens.control.lqr` solves exactly (without bounds).
    """

    state_dim, action_dim, name = 4, 2, "PointMass"

    def __init__(self, dt: float = 0.1, a_max: float = 1.0, q_v: float = 0.1, r: float = 0.01, **kw) -> None:
        super().__init__([-a_max] * 2, [a_max] * 2, **kw)
        self.dt = float(dt)
        I2 = torch.eye(2, dtype=self.dtype, device=self.device)
        Z = torch.zeros(2, 2, dtype=self.dtype, device=self.device)
        self.A = torch.cat([torch.cat([I2, dt * I2], 1), torch.cat([Z, I2], 1)], 0)
        self.B = torch.cat([0.5 * dt * dt * I2, dt * I2], 0)
        self.Q = torch.diag(torch.tensor([1.0, 1.0, q_v, q_v], dtype=self.dtype, device=self.device))
        self.R = r * I2

    def step(self, s: Tensor, a: Tensor) -> Tensor:
        a = self.clip(a)
        return s @ self.A.T.to(s) + a @ self.B.T.to(s)

    def cost(self, s: Tensor, a: Tensor) -> Tensor:
        return ((s @ self.Q.to(s)) * s).sum(-1) + ((a @ self.R.to(a)) * a).sum(-1)

    def sample_starts(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return self.uniform(n, [-2, -2, -0.5, -0.5], [2, 2, 0.5, 0.5], generator)


class Car(Environment):
    """The notes' MPC car: state ``[x, y, heading, speed]``, actions ``[acceleration, curvature]``.

    ``x' = x + dt v cos(h)``, ``y' = y + dt v sin(h)``, ``h' = h + dt v k``, ``v' = v + dt acc``.
    Cost: squared distance to ``target`` plus ``w_speed v^2`` (arrive and stop), ``w_action |a|^2`` and,
    for each round obstacle (centre, radius), ``w_obstacle * relu(radius + margin - distance)^2``.
    Valid set: the start is outside every obstacle.
    """

    state_dim, action_dim, name = 4, 2, "Car"

    def __init__(self, target: Sequence[float] = (10.0, 0.0),
                 obstacles: Sequence[tuple[float, float, float]] = ((5.0, 0.0, 1.5),),
                 dt: float = 0.2, acc_max: float = 1.0, curv_max: float = 0.5, w_speed: float = 0.1,
                 w_action: float = 0.01, w_obstacle: float = 100.0, margin: float = 0.2, **kw) -> None:
        super().__init__([-acc_max, -curv_max], [acc_max, curv_max], **kw)
        self.dt = float(dt)
        self.target = torch.as_tensor(target, dtype=self.dtype, device=self.device)
        self.obstacles = torch.as_tensor(obstacles, dtype=self.dtype, device=self.device).reshape(-1, 3)
        self.w_speed, self.w_action, self.w_obstacle, self.margin = w_speed, w_action, w_obstacle, margin

    valid_set = "outside every obstacle"

    def obstacle_depth(self, s: Tensor) -> Tensor:
        """``(..., n_obstacles)``: how far inside each obstacle (radius minus distance) the position is."""
        d = (s[..., None, :2] - self.obstacles[:, :2].to(s)).norm(dim=-1)
        return self.obstacles[:, 2].to(s) - d

    def valid(self, s: Tensor) -> Tensor:
        return (self.obstacle_depth(s) < 0).all(-1)

    def step(self, s: Tensor, a: Tensor) -> Tensor:
        a = self.clip(a)
        x, y, h, v = s.unbind(-1)
        acc, k = a.unbind(-1)
        dt = self.dt
        return torch.stack((x + dt * v * torch.cos(h), y + dt * v * torch.sin(h), h + dt * v * k, v + dt * acc), -1)

    def cost(self, s: Tensor, a: Tensor) -> Tensor:
        dist2 = ((s[..., :2] - self.target.to(s)) ** 2).sum(-1)
        pen = torch.relu(self.obstacle_depth(s) + self.margin).pow(2).sum(-1)
        return dist2 + self.w_speed * s[..., 3] ** 2 + self.w_action * (a ** 2).sum(-1) + self.w_obstacle * pen

    def sample_starts(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        s = self.uniform(n, [-1.0, -3.0, -0.3, 0.0], [1.0, 3.0, 0.3, 1.0], generator)
        return s


class Pendulum(Environment):
    """A torque-limited pendulum, ``theta = 0`` upright: ``theta'' = (g/l) sin(theta) - b theta' + u / (m l^2)``.

    State ``[theta, omega]`` (rad, rad/s); action the torque in ``[-u_max, u_max]``; each step integrates
    ``dt`` with ``substeps`` RK4 steps (:func:`difflens.dynamics.rk4_step`), the torque held constant.
    Cost ``theta^2 + 0.1 omega^2 + r u^2``.
    """

    state_dim, action_dim, name = 2, 1, "Pendulum"

    def __init__(self, dt: float = 0.05, substeps: int = 2, g: float = 9.81, length: float = 1.0, mass: float = 1.0,
                 damping: float = 0.1, u_max: float = 5.0, r: float = 0.01, **kw) -> None:
        super().__init__([-u_max], [u_max], **kw)
        self.dt, self.substeps = float(dt), int(substeps)
        self.g, self.length, self.mass, self.damping, self.r = g, length, mass, damping, r

    def field(self, s: Tensor, u: Tensor) -> Tensor:
        """The vector field ``d[theta, omega]/dt`` ``(..., 2)`` at states ``s`` ``(..., 2)`` under
        torques ``u`` ``(..., 1)``."""
        th, om = s.unbind(-1)
        acc = (self.g / self.length) * torch.sin(th) - self.damping * om + u[..., 0] / (self.mass * self.length ** 2)
        return torch.stack((om, acc), -1)

    def step(self, s: Tensor, a: Tensor) -> Tensor:
        a = self.clip(a)
        h = self.dt / self.substeps
        t0 = torch.zeros((), dtype=s.dtype, device=s.device)
        for _ in range(self.substeps):
            s = rk4_step(lambda t, x: self.field(x, a), t0, s, h)
        return s

    def cost(self, s: Tensor, a: Tensor) -> Tensor:
        return s[..., 0] ** 2 + 0.1 * s[..., 1] ** 2 + self.r * (a ** 2).sum(-1)

    def sample_starts(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return self.uniform(n, [-0.3, -0.5], [0.3, 0.5], generator)


class Truck(Environment):
    """The truck backer-upper: a cab pushing a trailer backwards to a loading dock.

    State ``[x, y, theta_cab, theta_trailer]``: ``(x, y)`` is the rear of the trailer, angles (rad) are
    the headings of the cab and trailer measured from the +x axis, pointing from the rear towards the
    front (so ``theta_trailer = 0`` is a trailer perpendicular to the dock wall ``x = 0``, backing
    into it). The action is the steering angle ``phi`` of the cab's front wheels, at most
    ``phi_max`` = 70 degrees either way; the front wheels back a distance ``speed`` per step. The
    discrete kinematics are Nguyen & Widrow's (1989/1990) as restated by Schoenauer & Ronald (1994)::

        A = r cos(phi);  B = A cos(theta_c - theta_t);  C = A sin(theta_c - theta_t)
        x' = x - B cos(theta_t);   y' = y - B sin(theta_t)
        theta_c' = atan2(d_c sin(theta_c) - r cos(theta_c) sin(phi), d_c cos(theta_c) + r sin(theta_c) sin(phi))
        theta_t' = atan2(d_t sin(theta_t) - C cos(theta_t), d_t cos(theta_t) + C sin(theta_t))

    which is ``theta_c' = theta_c - atan(r sin(phi) / d_c)`` and ``theta_t' = theta_t - atan(C / d_t)``
    (the form used here: it keeps the angles continuous, unwrapped). Lengths are in trailer lengths
    (``d_t = trailer_length = 1``; ``d_c = cab_length = 6/14``: the paper's cab of 6 and trailer of 14
    units). Jack-knife: ``|theta_c - theta_t| > 90`` degrees. The episode ends when the rear reaches
    the wall (``x <= 0``), the truck jack-knifes, or the step limit is reached.
    Valid set: ``x > 0`` and not jack-knifed. See ``docs/control.md`` for the sources checked.
    """

    state_dim, action_dim, name = 4, 1, "Truck"

    def __init__(self, speed: float = 0.1, cab_length: float = 6.0 / 14.0, trailer_length: float = 1.0,
                 phi_max_deg: float = 70.0, target: Sequence[float] = (0.0, 0.0), **kw) -> None:
        phi = math.radians(phi_max_deg)
        super().__init__([-phi], [phi], **kw)
        self.speed, self.cab_length, self.trailer_length = float(speed), float(cab_length), float(trailer_length)
        self.target = torch.as_tensor(target, dtype=self.dtype, device=self.device)
        # the training region of start poses (trailer lengths, radians)
        self.region_low = [1.5, -2.0, -math.pi / 3, -math.pi / 3]
        self.region_high = [4.0, 2.0, math.pi / 3, math.pi / 3]
        self.max_hitch = math.radians(45.0)

    valid_set = "rear in front of the wall (x > 0) and not jack-knifed (|theta_cab - theta_trailer| <= 90 deg)"

    def jackknifed(self, s: Tensor) -> Tensor:
        """``(...,)`` bool: cab and trailer angles differ by more than 90 degrees."""
        return (s[..., 2] - s[..., 3]).abs() > math.pi / 2

    def valid(self, s: Tensor) -> Tensor:
        return (s[..., 0] > 0) & ~self.jackknifed(s)

    def step(self, s: Tensor, a: Tensor) -> Tensor:
        phi = self.clip(a)[..., 0]
        x, y, tc, tt = s.unbind(-1)
        r = self.speed
        A = r * torch.cos(phi)
        B = A * torch.cos(tc - tt)
        C = A * torch.sin(tc - tt)
        x2 = x - B * torch.cos(tt)
        y2 = y - B * torch.sin(tt)
        tc2 = tc - torch.atan(r * torch.sin(phi) / self.cab_length)
        tt2 = tt - torch.atan(C / self.trailer_length)
        return torch.stack((x2, y2, tc2, tt2), -1)

    def cost(self, s: Tensor, a: Tensor) -> Tensor:
        return self.docking_error(s)

    def docking_error(self, s: Tensor) -> Tensor:
        """``(...,)`` squared position error to the target plus squared trailer angle (radians)."""
        return ((s[..., :2] - self.target.to(s)) ** 2).sum(-1) + s[..., 3] ** 2

    def sample_starts(self, n: int, generator: torch.Generator | None = None, region: str = "train") -> Tensor:
        """Start poses: ``region="train"`` inside the training region, ``"outside"`` beyond it
        (``x`` in [4, 6], ``|y|`` in [2, 3], angles in +-75 degrees), both with the cab within 45
        degrees of the trailer."""
        if region == "train":
            s = self.uniform(n, self.region_low, self.region_high, generator)
            hitch = self.uniform(n, [-self.max_hitch], [self.max_hitch], generator)[:, 0]
        elif region == "outside":
            s = self.uniform(n, [4.0, 2.0, -1.3, -1.3], [6.0, 3.0, 1.3, 1.3], generator)
            sign = torch.where(self.uniform(n, [0.0], [1.0], generator)[:, 0] < 0.5, -1.0, 1.0).to(s)
            s[:, 1] = s[:, 1] * sign
            hitch = self.uniform(n, [-self.max_hitch], [self.max_hitch], generator)[:, 0]
        else:
            raise ValueError(f"region must be 'train' or 'outside', got {region!r}")
        s[:, 2] = s[:, 3] + hitch
        return s

    def dock(self, s0: Tensor, policy, max_steps: int = 150) -> dict[str, Tensor]:
        """Run ``policy`` (``s -> phi`` of shape ``(B, 1)``) from ``s0`` ``(B, 4)`` until each truck ends.

        Returns ``states`` ``(B, max_steps+1, 4)`` (frozen after the end), ``final`` ``(B, 4)``
        (the pose where the rear crosses ``x = 0``, interpolated), ``steps`` ``(B,)``,
        ``jackknifed`` and ``reached_wall`` ``(B,)`` bools. Differentiable in the policy.
        """
        return unroll_truck(self, self.step, s0, policy, max_steps)

    def success(self, final: Tensor, reached_wall: Tensor, jackknifed: Tensor, pos_tol: float = 0.1,
                angle_tol_deg: float = 10.0, target: Tensor | None = None) -> Tensor:
        """``(B,)`` bool: docked within ``pos_tol`` trailer lengths and ``angle_tol_deg`` of perpendicular.

        ``target``: ``(2,)`` or ``(B, 2)`` dock positions (default the truck's ``target``)."""
        target = self.target if target is None else target
        pos = (final[:, :2] - target.to(final)).norm(dim=-1)
        ang = final[:, 3].abs()
        return reached_wall & ~jackknifed & (pos <= pos_tol * self.trailer_length) & (ang <= math.radians(angle_tol_deg))


def unroll_truck(env: Truck, step, s0: Tensor, policy, max_steps: int) -> dict[str, Tensor]:
    """Unroll ``policy`` through a transition ``step(s, a)`` (the truck's, or a learned model's) from ``s0``.

    Each trajectory ends at the first step whose rear crosses the wall (``x <= 0``; the final pose is
    interpolated linearly to ``x = 0``), or when it jack-knifes, or after ``max_steps``; after its end
    its state is held. See :meth:`Truck.dock` for the returned keys.
    """
    s = s0
    B = s0.shape[0]
    done = torch.zeros(B, dtype=torch.bool, device=s0.device)
    wall = torch.zeros_like(done)
    jack = torch.zeros_like(done)
    steps = torch.zeros(B, dtype=torch.long, device=s0.device)
    final = s0
    states = [s0]
    for t in range(max_steps):
        a = policy(s)
        s_new = step(s, a)
        hit = (~done) & (s_new[:, 0] <= 0)
        frac = (s[:, 0] / (s[:, 0] - s_new[:, 0]).clamp_min(1e-9)).clamp(0, 1)[:, None]
        crossed = s + frac * (s_new - s)
        jk = (~done) & ~hit & env.jackknifed(s_new)
        final = torch.where(hit[:, None], crossed, torch.where(jk[:, None] | ~done[:, None], s_new, final))
        wall = wall | hit
        jack = jack | jk
        steps = torch.where(done, steps, steps + 1)
        s = torch.where(done[:, None], s, torch.where(hit[:, None], crossed, s_new))
        done = done | hit | jk
        states.append(s)
        if bool(done.all()):
            break
    return {"states": torch.stack(states, 1), "final": final, "steps": steps, "jackknifed": jack,
            "reached_wall": wall}


class ControlledLorenz(Environment):
    """Lorenz-63 with an additive control: ``dx/dt = f(x) + u``, ``|u_i| <= u_max``.

    One step holds ``u`` for ``dt`` time units, integrated with ``substeps`` RK4 steps. The task: keep
    the state on one lobe (``lobe = +1``: ``x > 0``) with least control energy. Cost
    ``relu(margin - lobe * x)^2 + r |u|^2``.
    """

    state_dim, action_dim, name = 3, 3, "ControlledLorenz"

    def __init__(self, dt: float = 0.05, substeps: int = 5, u_max: float = 20.0, lobe: int = 1, margin: float = 3.0,
                 r: float = 1e-3, **kw) -> None:
        super().__init__([-u_max] * 3, [u_max] * 3, **kw)
        if lobe not in (-1, 1):
            raise ValueError(f"lobe must be +1 or -1, got {lobe!r}")
        self.dt, self.substeps, self.lobe, self.margin, self.r = float(dt), int(substeps), lobe, margin, r
        self.system = Lorenz63(dtype=self.dtype, device=self.device).requires_grad_(False)

    def step(self, s: Tensor, a: Tensor) -> Tensor:
        a = self.clip(a)
        h = self.dt / self.substeps
        t0 = torch.zeros((), dtype=s.dtype, device=s.device)
        for _ in range(self.substeps):
            s = rk4_step(lambda t, x: self.system(t, x) + a, t0, s, h)
        return s

    def cost(self, s: Tensor, a: Tensor) -> Tensor:
        return torch.relu(self.margin - self.lobe * s[..., 0]) ** 2 + self.r * (a ** 2).sum(-1)

    def on_lobe(self, s: Tensor) -> Tensor:
        """``(...,)`` bool: the state is on the target lobe (``lobe * x > 0``)."""
        return self.lobe * s[..., 0] > 0

    valid_set = "|x| < 100 componentwise (near the attractor)"

    def valid(self, s: Tensor) -> Tensor:
        return (s.abs() < 100).all(-1)

    def sample_starts(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Points of the attractor: random starts run 10 time units uncontrolled."""
        s = self.uniform(n, [-15, -20, 5], [15, 20, 40], generator)
        zero = torch.zeros(n, 3, dtype=self.dtype, device=self.device)
        with torch.no_grad():
            for _ in range(int(10 / self.dt)):
                s = self.step(s, zero)
        return s
