"""Model-predictive control on the engine: plans by backpropagation through a forward model.

:class:`TrajectoryOptimizer` optimises one action sequence per start state over a horizon
(the Kelley-Bryson adjoint is autograd through the unrolled model); :class:`MPC` applies the
first action, shifts the plan (warm start) and plans again (receding horizon).

Bounds: plans are parameterised as ``a = mid + half * sin(u)``, so every planned action lies
inside ``[low, high]`` (and an active bound is a stationary point at finite ``u``, unlike tanh); a warm start outside the bounds is clipped to them first.
"""

from __future__ import annotations

import os
from typing import Callable

import torch
from torch import Tensor

from difflens.engine import LossChange, Optimization
from difflens.tools.io import load_file, save_file

from .environments import check_finite

__all__ = ["MPC", "PlanBlowUpError", "TrajectoryOptimizer", "disagreement_cost", "rollout"]

Step = Callable[[Tensor, Tensor], Tensor]
Cost = Callable[[Tensor, Tensor], Tensor]


class PlanBlowUpError(FloatingPointError):
    """The model's rollout became non-finite during planning; ``step`` is the first bad step of the
    horizon and ``plan`` the last plan (``(B, H, m)`` actions) whose rollout was finite."""

    def __init__(self, message: str, step: int, plan: Tensor) -> None:
        super().__init__(message)
        self.step, self.plan = step, plan


def rollout(step: Step, s0: Tensor, actions: Tensor) -> Tensor:
    """States ``(B, H+1, n)`` of ``step`` from ``s0`` ``(B, n)`` under ``actions`` ``(B, H, m)``."""
    states = [s0]
    for t in range(actions.shape[1]):
        states.append(step(states[-1], actions[:, t]))
    return torch.stack(states, 1)


class TrajectoryOptimizer:
    """Optimise ``sum_t cost(s_t, a_t) + terminal(s_H)`` over bounded actions, for a batch of starts.

    Parameters
    ----------
    step: ``(s (B, n), a (B, m)) -> s' (B, n)``, differentiable (known equations or a learned model).
    cost: ``(s, a) -> (B,)`` running cost; terminal: ``s -> (B,)`` (default none).
    s0: ``(B, n)`` start states. horizon: steps H >= 1.
    low, high: ``(m,)`` action bounds. init: ``(B, H, m)`` warm start (default: the box's middle), or
        ``(K, B, H, m)``: ``K`` initial plans per start, all optimised in one batched solve (a batch of
        ``K * B`` plans: the cost of a multi-start is about that of one start when the batch is small);
        ``actions`` and :meth:`cost_of_plan` are then each start's best of the ``K`` (``plans`` and
        :meth:`plan_costs` give all of them).
    optimizer: ``"lbfgs"`` (default, strong-Wolfe line search) or ``"adam"``; lr: Adam's rate.
    tol: stop when the summed loss changes by less than ``tol`` (relative) over 3 iterations.
    extra_cost: optional ``(states (B, H+1, n), actions (B, H, m)) -> (B,)`` added to the cost
        (e.g. a model-disagreement penalty).

    Notes
    -----
    ``optimization`` is the engine; :meth:`solve` runs it; ``actions`` is the bounded plan ``(B, H, m)``.
    """

    def __init__(self, step: Step, cost: Cost, s0: Tensor, horizon: int, low: Tensor, high: Tensor, *,
                 terminal: Callable[[Tensor], Tensor] | None = None, init: Tensor | None = None,
                 optimizer: str = "lbfgs", lr: float = 0.05, tol: float = 1e-9,
                 extra_cost: Callable[[Tensor, Tensor], Tensor] | None = None) -> None:
        if not isinstance(horizon, int) or isinstance(horizon, bool) or horizon < 1:
            raise ValueError(f"horizon must be an int >= 1, got {horizon!r}")
        check_finite(s0, "s0")
        if s0.ndim != 2:
            raise ValueError(f"s0 must have shape (B, state_dim), got {list(s0.shape)}")
        self.step, self.cost, self.terminal, self.extra_cost = step, cost, terminal, extra_cost
        self.s0 = s0.detach()
        self.low = torch.as_tensor(low).to(s0)
        self.high = torch.as_tensor(high).to(s0)
        self.mid, self.half = (self.high + self.low) / 2, (self.high - self.low) / 2
        B, m = s0.shape[0], self.low.shape[0]
        self.batch, self.restarts = B, 1
        if init is None:
            u = torch.zeros(B, horizon, m, dtype=s0.dtype, device=s0.device)
        else:
            check_finite(init, "init")
            if init.ndim == 4 and init.shape[1:] == (B, horizon, m) and init.shape[0] >= 1:
                self.restarts = init.shape[0]
                init = init.reshape(-1, horizon, m)  # restart-major: plan k of start b is row k * B + b
                self.s0 = self.s0.repeat(self.restarts, 1)
            elif init.shape != (B, horizon, m):
                raise ValueError(f"init must have shape {[B, horizon, m]} (or (K, {B}, {horizon}, {m}) for K "
                                 f"initial plans per start), got {list(init.shape)}")
            z = ((init.to(s0) - self.mid) / self.half).clamp(-1.0, 1.0)  # clipped into the bounds
            u = torch.asin(z)
        self.u = u.detach().clone().requires_grad_(True)
        self.horizon = horizon
        self._last_good = self.u.detach().clone()
        if optimizer == "lbfgs":
            opt = lambda p: torch.optim.LBFGS(p, lr=1.0, max_iter=20, line_search_fn="strong_wolfe",
                                              tolerance_grad=1e-12, tolerance_change=1e-14, history_size=20)
            rules = [LossChange(tol, window=3, relative=True)]
        elif optimizer == "adam":
            opt = lambda p: torch.optim.Adam(p, lr=lr)
            rules = [LossChange(tol, window=20, relative=True)]
        else:
            raise ValueError(f"optimizer must be 'lbfgs' or 'adam', got {optimizer!r}")
        self.optimization = Optimization([self.u], self.loss, optimizer=opt, stop_rules=rules,
                                         record_change=False)

    @property
    def plans(self) -> Tensor:
        """Every bounded plan ``(K, B, H, m)`` (detached; ``K = 1`` without a multi-start)."""
        return self.bounded(self.u).detach().reshape(self.restarts, self.batch, self.horizon, -1)

    @property
    def actions(self) -> Tensor:
        """The bounded plan ``(B, H, m)`` (detached); with ``K`` initial plans per start, each start's
        cheapest."""
        if self.restarts == 1:
            return self.bounded(self.u).detach()
        best = self.plan_costs().argmin(0)
        return self.plans[best, torch.arange(self.batch, device=best.device)]

    def plan_costs(self) -> Tensor:
        """``(K, B)`` cost of every plan (no gradient)."""
        with torch.no_grad():
            return self.objective(self.bounded(self.u))[0].reshape(self.restarts, self.batch)

    def bounded(self, u: Tensor) -> Tensor:
        """Map unconstrained variables ``u`` ``(B, H, m)`` to actions in the box: ``mid + half *
        sin(u)``."""
        return self.mid + self.half * torch.sin(u)

    def objective(self, actions: Tensor) -> tuple[Tensor, Tensor]:
        """``(per-start cost (B,), states (B, H+1, n))`` of a plan."""
        states = rollout(self.step, self.s0, actions)
        c = self.cost(states[:, :-1], actions).sum(1)
        if self.terminal is not None:
            c = c + self.terminal(states[:, -1])
        if self.extra_cost is not None:
            c = c + self.extra_cost(states, actions)
        return c, states

    def loss(self) -> Tensor:
        """The engine's loss: the plan cost per start ``(B,)``; a NaN or inf rollout restores the
        last finite plan and raises :class:`PlanBlowUpError`.
        """
        c, states = self.objective(self.bounded(self.u))
        finite = torch.isfinite(states).flatten(2).all(-1).all(0)
        if not bool(finite.all()) or not bool(torch.isfinite(c).all()):
            bad = int((~finite).nonzero()[0]) if not bool(finite.all()) else self.horizon
            with torch.no_grad():
                self.u.copy_(self._last_good)
            raise PlanBlowUpError(f"the model's rollout blew up (NaN or inf) at step {bad} of the "
                                  f"{self.horizon}-step horizon while planning; the last finite plan is kept",
                                  bad, self.actions)
        self._last_good = self.u.detach().clone()
        return c

    def solve(self, max_iter: int = 50, *, checkpoint_path: str | os.PathLike | None = None,
              resume: bool = False) -> "TrajectoryOptimizer":
        """Run up to ``max_iter`` engine iterations (L-BFGS: each up to 20 inner iterations)."""
        self.optimization.configure(checkpoint_path=checkpoint_path)
        self.optimization.run(max_iter, resume=resume)
        return self

    def cost_of_plan(self) -> Tensor:
        """``(B,)`` cost of the current plan (no gradient); with a multi-start, each start's least."""
        return self.plan_costs().min(0).values


class MPC:
    """Receding-horizon control: plan over ``horizon`` steps, apply the first action, warm-start, repeat.

    Parameters
    ----------
    model: the planning model ``step(s, a)``. cost, terminal: as in :class:`TrajectoryOptimizer`.
    horizon: planning steps H >= 1. low, high: action bounds. iterations: engine iterations per plan.
    optimizer, extra_cost: passed to each :class:`TrajectoryOptimizer`.

    Notes
    -----
    ``optimization`` is the engine of the latest plan (one per control step).
    """

    FORMAT, VERSION = "difflens.control.mpc", 1

    def __init__(self, model: Step, cost: Cost, horizon: int, low: Tensor, high: Tensor, *,
                 terminal: Callable[[Tensor], Tensor] | None = None, iterations: int = 10,
                 optimizer: str = "lbfgs", extra_cost=None) -> None:
        if not isinstance(horizon, int) or isinstance(horizon, bool) or horizon < 1:
            raise ValueError(f"horizon must be an int >= 1, got {horizon!r}")
        self.model, self.cost, self.terminal, self.horizon = model, cost, terminal, horizon
        self.low, self.high = low, high
        self.iterations, self.optimizer, self.extra_cost = iterations, optimizer, extra_cost
        self.planner: TrajectoryOptimizer | None = None
        self.plan_iterations: list[int] = []

    @property
    def optimization(self) -> Optimization | None:
        return None if self.planner is None else self.planner.optimization

    def plan(self, s: Tensor, init: Tensor | None = None) -> Tensor:
        """Plan from ``s`` ``(B, n)``; returns the plan ``(B, H, m)``."""
        self.planner = TrajectoryOptimizer(self.model, self.cost, s, self.horizon, self.low, self.high,
                                           terminal=self.terminal, init=init, optimizer=self.optimizer,
                                           extra_cost=self.extra_cost)
        self.planner.solve(self.iterations)
        if self.planner.optimization.stop_reason == "interrupted":
            raise KeyboardInterrupt("interrupted during MPC planning")
        self.plan_iterations.append(self.planner.optimization.iteration)
        return self.planner.actions

    def run(self, s0: Tensor, n_steps: int, true_step: Step | None = None, *,
            checkpoint_path: str | os.PathLike | None = None, resume: bool = False) -> dict[str, Tensor]:
        """Control from ``s0`` ``(B, n)`` for ``n_steps`` steps of ``true_step`` (default: the model).

        Returns ``states`` ``(B, n_steps+1, n)``, ``actions`` ``(B, n_steps, m)``, ``cost`` ``(B,)``
        (the summed running cost of the executed trajectory). With ``checkpoint_path`` the loop's state
        is saved after every control step and ``resume=True`` continues from it to the same numbers.
        """
        true_step = true_step or self.model
        states, actions, init, start = [s0.detach()], [], None, 0
        if resume and checkpoint_path is not None and os.path.exists(checkpoint_path):
            ck = load_file(checkpoint_path, format=self.FORMAT, version=self.VERSION)
            states, actions = list(ck["states"].unbind(1)), list(ck["actions"].unbind(1))
            init, start = ck["init"], int(ck["t"])
        for t in range(start, n_steps):
            plan = self.plan(states[-1], init)
            a = plan[:, 0]
            with torch.no_grad():
                states.append(true_step(states[-1], a).detach())
            actions.append(a)
            init = torch.cat([plan[:, 1:], plan[:, -1:]], 1)  # warm start: the plan shifted by one step
            if checkpoint_path is not None:
                save_file({"states": torch.stack(states, 1), "actions": torch.stack(actions, 1), "init": init,
                           "t": t + 1}, checkpoint_path, format=self.FORMAT, version=self.VERSION)
        S, A = torch.stack(states, 1), torch.stack(actions, 1)
        with torch.no_grad():
            cost = self.cost(S[:, :-1], A).sum(1)
        return {"states": S, "actions": A, "cost": cost}


def disagreement_cost(ensemble, weight: float) -> Callable[[Tensor, Tensor], Tensor]:
    """An ``extra_cost`` for :class:`TrajectoryOptimizer`: ``weight * sum_t disagreement(s_t, a_t)``.

    ``ensemble`` is a :class:`~difflens.control.Ensemble` (the planning model is its mean); the
    penalty is the members' prediction variance along the plan, large where they were not trained,
    so penalised plans stay inside the region the model knows.
    """
    if not weight >= 0:
        raise ValueError(f"weight must be >= 0, got {weight!r}")

    def extra(states: Tensor, actions: Tensor) -> Tensor:
        return weight * ensemble.disagreement(states[:, :-1], actions).sum(1)

    return extra
