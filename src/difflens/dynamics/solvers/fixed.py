"""Fixed-grid solvers: explicit and implicit Runge-Kutta tableaux, and Adams-Bashforth(-Moulton).

The grid is ``t`` itself, or ``t[0] + k * step_size`` (the last point moved
onto ``t[-1]``), or whatever ``grid_constructor(f, y0, t)`` returns; outputs
between grid points are interpolated (``interp="linear"`` or ``"cubic"``
Hermite). ``perturb=True`` evaluates ``f`` just after a step's start and just
before its end, so a discontinuity on a grid point is never sampled from the
wrong side. These are torchdiffeq's fixed-grid options.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator

import torch
from torch import Tensor

from difflens.dynamics.solvers.problem import Problem
from difflens.dynamics.solvers.steps import (EventFunction, combine, explicit_stages, hermite, implicit_step,
                                             lagrange_weights, locate_event, stage_times)
from difflens.dynamics.solvers.tableaux import Tableau

__all__ = ["TIME_BLOCK", "AdamsSolver", "FixedGridSolver"]

TIME_BLOCK = 1024  # grid steps whose stage times are made as tensors at once (bounded: 0-d tensors are objects)


class FixedGridSolver:
    """Runge-Kutta on a fixed grid (explicit, or implicit by Newton when ``tableau.implicit``)."""

    adaptive = False
    callbacks = ("callback_step",)

    def __init__(self, P: Problem, tableau: type[Tableau], step_size: float | None = None,
                 grid_constructor: Callable | None = None, interp: str = "linear", perturb: bool = False,
                 **unused) -> None:
        if step_size is not None and grid_constructor is not None:
            raise ValueError("give options step_size or grid_constructor, not both")
        if step_size is not None:
            step_size = float(step_size)
            if not (step_size > 0 and math.isfinite(step_size)):
                raise ValueError(f"step_size must be a positive finite number, got {step_size}")
        if interp not in ("linear", "cubic"):
            raise ValueError(f"interp must be 'linear' or 'cubic', got {interp!r}")
        self.P, self.tab = P, tableau
        self.step_size, self.grid_constructor = step_size, grid_constructor
        self.interp, self.perturb = interp, bool(perturb)

    # ------------------------------------------------------------------ grid
    def grid(self, times: Tensor) -> list[float]:
        t0, t1 = float(times[0]), float(times[-1])
        if self.grid_constructor is not None:
            g = self.grid_constructor(self.P.f, self.P.y0, times)
            g = [float(x) for x in torch.as_tensor(g).reshape(-1)]
            if abs(g[0] - t0) > 1e-12 * max(1.0, abs(t0)) or abs(g[-1] - t1) > 1e-12 * max(1.0, abs(t1)):
                raise ValueError(f"grid_constructor must return a grid from t[0] = {t0} to t[-1] = {t1}, "
                                 f"got one from {g[0]} to {g[-1]}")
            g[0], g[-1] = t0, t1
            return g
        if self.step_size is None:
            return [float(x) for x in times]
        n = max(1, math.ceil((t1 - t0) / self.step_size - 1e-9))
        g = [t0 + k * self.step_size for k in range(n)] + [t1]
        return g

    # ------------------------------------------------------------------ one step
    def step(self, t0: float, t1: float, y0: Tensor, times: tuple[Tensor, ...] | None = None
             ) -> tuple[Tensor, Tensor | None]:
        """``(y1, f(t0, y0) or None)``; ``times``: the stage times as tensors (explicit methods only)."""
        h = t1 - t0
        if self.tab.implicit:
            return implicit_step(self.P, self.tab, t0, h, y0, self.perturb, t1)
        _, ks = explicit_stages(self.P, self.tab, t0, h, y0, perturb=self.perturb, t1=t1, times=times)
        return combine(y0, ks, self.tab.b, h), ks[0]

    def _grid_times(self, grid: list[float]) -> Iterator[tuple[Tensor, ...] | None]:
        """Each step's stage times as 0-d tensors, made ``TIME_BLOCK`` steps per ``torch.tensor`` call
        (one call per stage costs about as much as a small field evaluation); None for a step that
        makes its own (implicit methods, ``perturb``)."""
        if self.tab.implicit or self.perturb or not self.tab.c:
            yield from itertools.repeat(None, len(grid) - 1)
            return
        s = len(self.tab.c)
        for b in range(0, len(grid) - 1, TIME_BLOCK):
            flat: list[float] = []
            for g0, g1 in itertools.pairwise(grid[b:b + TIME_BLOCK + 1]):
                flat.extend(stage_times(self.tab, g0, g1 - g0, g1))
            block = self.P.times(flat)
            for i in range(0, len(block), s):
                yield block[i:i + s]

    def _interpolant(self, t0, t1, y0, y1, f0):
        if self.interp == "linear":
            return lambda t: y0 + (y1 - y0) * ((t - t0) / (t1 - t0))
        if f0 is None:
            f0 = self.P(t0, y0, 1 if self.perturb else 0)
        f1 = self.P(t1, y1, -1 if self.perturb else 0)
        return lambda t: hermite(t0, t1, y0, f0, y1, f1, t)

    # ------------------------------------------------------------------ drivers
    def integrate(self, times: Tensor) -> list[Tensor]:
        ts = [float(x) for x in times]
        grid = self.grid(times)
        out = [self.P.y0]
        k = 1
        y = self.P.y0
        self.reset()
        times = self._grid_times(grid)
        for g0, g1, tt in zip(grid[:-1], grid[1:], times):
            if k >= len(ts):
                break
            self.P.callback("callback_step", g0, y, g1 - g0)
            y1, f0 = self.step(g0, g1, y, tt)
            interp = None
            while k < len(ts) and ts[k] <= g1:
                if ts[k] == g1:
                    out.append(y1)
                else:
                    interp = interp or self._interpolant(g0, g1, y, y1, f0)
                    out.append(interp(ts[k]))
                k += 1
            y = y1
        return out

    def until_event(self, t0: float, ev: EventFunction, max_steps: int) -> tuple[float, Tensor]:
        if self.step_size is None:
            raise ValueError(f"event handling with the fixed-step method {self.tab.name!r} needs "
                             "options=dict(step_size=...)")
        y = self.P.y0
        sign0 = ev(t0, y)
        self.reset()
        for n in range(max_steps):
            g0, g1 = t0 + n * self.step_size, t0 + (n + 1) * self.step_size
            self.P.callback("callback_step", g0, y, g1 - g0)
            y1, f0 = self.step(g0, g1, y)
            if not bool(torch.isfinite(y1).all()):
                raise FloatingPointError(f"odeint: the state became NaN/inf at t = {g1:.6g} before event_fn "
                                         "changed sign")
            if ev.changed(sign0, ev(g1, y1)):
                interp = self._interpolant(g0, g1, y, y1, f0)
                te = locate_event(ev, sign0, g0, g1, interp)
                return te, interp(te)
            y = y1
        raise RuntimeError(f"odeint: event_fn never changed sign in {max_steps} steps (t reached "
                           f"{t0 + max_steps * self.step_size:.6g}); the event never fires - check event_fn or "
                           "raise options max_num_steps")

    def reset(self) -> None:
        pass


class AdamsSolver(FixedGridSolver):
    """Adams-Bashforth (``explicit_adams``) or Adams-Bashforth-Moulton PECE (``implicit_adams``), order <= 4.

    The coefficients are integrals of the Lagrange polynomial through the last
    derivatives on the actual (possibly uneven) grid; the order ramps up from
    1 as the history fills.
    """

    max_order = 4

    def __init__(self, P: Problem, implicit: bool, **options) -> None:
        class _Name(Tableau):
            name = "implicit_adams" if implicit else "explicit_adams"
        super().__init__(P, _Name, **options)
        self.corrector = implicit

    def reset(self) -> None:
        self.hist_t: list[float] = []
        self.hist_f: list[Tensor] = []

    def _grid_times(self, grid: list[float]) -> Iterator[tuple[Tensor, ...] | None]:
        """Each step's ``(t0, t1)`` as 0-d tensors, ``TIME_BLOCK`` steps per call (None with ``perturb``)."""
        if self.perturb:
            yield from itertools.repeat(None, len(grid) - 1)
            return
        for b in range(0, len(grid) - 1, TIME_BLOCK):
            g = self.P.times(grid[b:b + TIME_BLOCK + 1])
            for i in range(len(g) - 1):
                yield g[i], g[i + 1]

    def step(self, t0: float, t1: float, y0: Tensor, times: tuple[Tensor, ...] | None = None
             ) -> tuple[Tensor, Tensor | None]:
        p = 1 if self.perturb else 0
        P = self.P

        def at(i: int, t: float, y: Tensor, pert: int) -> Tensor:
            return P.at(times[i], y) if times is not None else P(t, y, pert)

        if self.hist_t and self.hist_t[-1] == t0:
            f0 = self.hist_f[-1]
        else:
            f0 = at(0, t0, y0, p)
            self.hist_t.append(t0)
            self.hist_f.append(f0)
        self.hist_t = self.hist_t[-self.max_order:]
        self.hist_f = self.hist_f[-self.max_order:]
        nodes = self.hist_t[::-1]
        w = lagrange_weights(nodes, t0, t1)
        y1 = combine(y0, self.hist_f[::-1], w, 1.0)
        if self.corrector:
            f1 = at(1, t1, y1, -p)
            nodes_c = [t1] + nodes[:self.max_order - 1]
            wc = lagrange_weights(nodes_c, t0, t1)
            y1 = combine(y0, [f1] + self.hist_f[::-1][:self.max_order - 1], wc, 1.0)
        f1 = at(1, t1, y1, -p)
        self.hist_t.append(t1)
        self.hist_f.append(f1)
        return y1, f0
