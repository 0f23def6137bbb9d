"""Adaptive explicit Runge-Kutta with an embedded error estimate (torchdiffeq's options and controller).

Step control: the step is accepted when ``norm(err / (atol + rtol max(|y0|, |y1|))) <= 1``
(or the step is already ``min_step``); the next step is the current one times
``0.9 ratio^(-1/order)``, clipped to [0.2, 10] (to [1, 10] after an accepted
step), then to ``[min_step, max_step]``. Steps land exactly on
``grid_points`` and ``jump_t``; after a ``jump_t`` the first derivative is
re-evaluated just after the jump and the last stage before it just before
it. The first step is Hairer's estimate unless ``first_step`` is given.

A stiff problem pins an explicit method's step at its stability limit; the
estimate ``h |lambda| ~ h ||f(y1) - f(Y)|| / ||y1 - Y||`` (``Y`` the last stage
not at ``y1``, Hairer & Wanner IV.2) staying above half the limit for 15 accepted
steps (after at least 100) raises a ``StiffnessWarning`` naming the step-size collapse.
"""

from __future__ import annotations

import bisect
import math
import warnings

import torch
from torch import Tensor

from difflens.dynamics.solvers.problem import Problem
from difflens.dynamics.solvers.steps import EventFunction, combine, explicit_stages, hermite, locate_event
from difflens.dynamics.solvers.tableaux import Tableau

__all__ = ["AdaptiveSolver", "StiffnessWarning"]


class StiffnessWarning(RuntimeWarning):
    """An explicit method's step size collapsed to its stability limit: the problem is stiff."""


def _times(x, name: str) -> list[float]:
    if x is None:
        return []
    vals = [float(v) for v in torch.as_tensor(x).reshape(-1)]
    if any(not math.isfinite(v) for v in vals):
        raise ValueError(f"options {name} must be finite times")
    return sorted(vals)


class AdaptiveSolver:
    adaptive = True
    callbacks = ("callback_step", "callback_accept_step", "callback_reject_step")

    def __init__(self, P: Problem, tableau: type[Tableau], first_step: float | None = None,
                 min_step: float = 0.0, max_step: float = math.inf, max_num_steps: int = 2 ** 31 - 1,
                 grid_points=None, jump_t=None, step_t=None, safety: float = 0.9, ifactor: float = 10.0,
                 dfactor: float = 0.2, **unused) -> None:
        self.P, self.tab = P, tableau
        self.first_step = None if first_step is None else float(first_step)
        self.min_step, self.max_step = float(min_step), float(max_step)
        if not (0 <= self.min_step <= self.max_step):
            raise ValueError(f"need 0 <= min_step <= max_step, got {self.min_step}, {self.max_step}")
        self.max_num_steps = int(max_num_steps)
        self.stops = sorted(set(_times(grid_points, "grid_points") + _times(step_t, "step_t")
                                + _times(jump_t, "jump_t")))
        self.jumps = set(_times(jump_t, "jump_t"))
        self.safety, self.ifactor, self.dfactor = safety, ifactor, dfactor
        self.fsal = tableau.fsal()
        # the stage compared with f(y1) by the stiffness test: the latest node below the end (or at it, not y1)
        cands = [i for i, c in enumerate(tableau.c) if not (self.fsal and i == len(tableau.c) - 1)]
        self.stiff_stage = max(cands, key=lambda i: (tableau.c[i], i))

    # ------------------------------------------------------------------ pieces
    def initial_step(self, t0: float, y0: Tensor, f0: Tensor) -> float:
        P = self.P
        with torch.no_grad():
            scale = y0.abs() * P.rtol + P.atol
            d0, d1 = float(P.norm(y0 / scale)), float(P.norm(f0 / scale))
            h0 = 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1
            f1 = P(t0 + h0, y0 + h0 * f0)
            d2 = float(P.norm((f1 - f0) / scale)) / h0
            if max(d1, d2) <= 1e-15:
                h1 = max(1e-6, h0 * 1e-3)
            else:
                h1 = (0.01 / max(d1, d2)) ** (1.0 / self.tab.order)
        return min(100 * h0, h1)

    def attempt(self, t0: float, h: float, t1: float, y0: Tensor, k1: Tensor, jump_end: bool):
        tab = self.tab
        c_last_pert = -1 if jump_end else 0
        ys, ks = [], []
        for i, c in enumerate(tab.c):
            yi = y0 if i == 0 else combine(y0, ks, tab.a[i], h)
            ti = t1 if c == 1.0 else t0 + c * h
            ks.append(k1 if i == 0 else self.P(ti, yi, c_last_pert if c == 1.0 else 0))
            ys.append(yi)
        y1 = ys[-1] if self.fsal else combine(y0, ks, tab.b, h)
        f1 = ks[-1] if self.fsal else None
        if tab.name == "dopri8":  # DOP853's estimates use f(t1, y1) as a 13th stage
            f1 = self.P(t1, y1, c_last_pert)
            e5 = combine(torch.zeros_like(y0), ks + [f1], tab.e, h)
            e3 = combine(torch.zeros_like(y0), ks + [f1], tab.e3, h)
            r5, r3 = self.P.error_ratio(e5, y0, y1), self.P.error_ratio(e3, y0, y1)
            den = (r5 * r5 + 0.01 * r3 * r3).sqrt()
            ratio = torch.where(den > 0, r5 * r5 / den.clamp_min(1e-300), den)
        else:
            err = combine(torch.zeros_like(y0), ks, tab.e, h)
            ratio = self.P.error_ratio(err, y0, y1)
        return y1, f1, ys, ks, ratio

    def dense(self, t0: float, h: float, y0: Tensor, ks: list[Tensor], y1: Tensor, f1: Tensor):
        tab = self.tab
        t1 = t0 + h
        if tab.interp == "shampine":
            def at(t: float) -> Tensor:
                s = (t - t0) / h
                w = [h * (p[0] * s + p[1] * s * s + p[2] * s ** 3 + p[3] * s ** 4) for p in tab.dense]
                return combine(y0, ks, w, 1.0)
        elif tab.interp == "restep":
            def at(t: float) -> Tensor:
                hh = t - t0
                _, kk = explicit_stages(self.P, tab, t0, hh, y0, k1=ks[0])
                return combine(y0, kk, tab.b, hh)
        else:
            def at(t: float) -> Tensor:
                return hermite(t0, t1, y0, ks[0], y1, f1, t)
        return at

    def next_step(self, h: float, ratio: float, accepted: bool) -> float:
        if ratio == 0.0:
            return h * self.ifactor
        lo = 1.0 if accepted and ratio < 1 else self.dfactor
        factor = min(self.ifactor, max(self.safety * ratio ** (-1.0 / self.tab.order), lo))
        return h * factor

    # ------------------------------------------------------------------ driver
    def run(self, t0: float, t_end: float, outputs: list[float] | None, ev: EventFunction | None):
        """Integrate from ``t0``; emit ``outputs`` (sorted, in ``(t0, t_end]``) or stop at the event."""
        P = self.P
        y = P.y0
        t = t0
        k1 = P(t, y, 1 if t in self.jumps else 0)
        h = self.first_step if self.first_step is not None else self.initial_step(t, y, k1)
        h = min(max(h, self.min_step), self.max_step)
        out: list[Tensor] = [y]
        k = 0
        n_out = len(outputs) if outputs is not None else 0
        sign0 = ev(t, y) if ev is not None else None
        steps, stiff_run, warned = 0, 0, False
        while (outputs is None) or k < n_out:
            if steps >= self.max_num_steps:
                raise RuntimeError(f"odeint: max_num_steps = {self.max_num_steps} exceeded at t = {t:.6g} "
                                   f"(step size {h:.3g}); the problem may be stiff (use an implicit method) or "
                                   "the tolerances too tight" + ("; event_fn has not changed sign yet"
                                                                 if ev is not None else ""))
            i = bisect.bisect_right(self.stops, t)  # the first stop after t (steps land on stops exactly)
            limit = min(t_end, self.stops[i]) if i < len(self.stops) else t_end
            jump_end = False
            if t + h >= limit:
                h, t1 = limit - t, limit
                jump_end = limit in self.jumps
            else:
                t1 = t + h
            if not (h > 0 and t1 > t):
                raise FloatingPointError(f"odeint: the step size collapsed to {h:.3g} at t = {t:.6g} "
                                         "(below the resolution of t); the solution is blowing up or the problem "
                                         "is too stiff for an explicit method")
            P.callback("callback_step", t, y, h)
            y1, f1, ys, ks, ratio_t = self.attempt(t, h, t1, y, k1, jump_end)
            ratio = float(ratio_t)
            steps += 1
            accept = math.isfinite(ratio) and (ratio <= 1.0 or h <= self.min_step)
            if not accept:
                P.callback("callback_reject_step", t, y, h)
                h = max(self.next_step(h, ratio, False) if math.isfinite(ratio) else 0.2 * h, self.min_step)
                if not math.isfinite(ratio) and h < 1e-300:
                    raise FloatingPointError(f"odeint: NaN/inf in the derivative at t = {t:.6g}")
                continue
            P.callback("callback_accept_step", t, y, h)
            if f1 is None or jump_end:
                f1 = P(t1, y1, 1 if jump_end else 0)
            interp = None
            if ev is not None:
                sign1 = ev(t1, y1)
                if ev.changed(sign0, sign1):
                    interp = self.dense(t, h, y, ks, y1, f1)
                    te = locate_event(ev, sign0, t, t1, interp)
                    return te, interp(te)
            else:
                while k < n_out and outputs[k] <= t1:
                    if outputs[k] == t1:
                        out.append(y1)
                    else:
                        interp = interp or self.dense(t, h, y, ks, y1, f1)
                        out.append(interp(outputs[k]))
                    k += 1
            # stiffness: h |lambda| held near the stability limit
            if not warned and steps > 15 and len(ks) > 1:
                j = self.stiff_stage
                with torch.no_grad():
                    den = float(P.norm(y1 - ys[j]))
                    rho = h * float(P.norm(f1 - ks[j])) / den if den > 0 else 0.0
                stiff_run = stiff_run + 1 if rho > 0.5 * self.tab.stability else 0
                if stiff_run >= 15 and steps >= 100:
                    warned = True
                    warnings.warn(f"odeint: step-size collapse: {self.tab.name!r} has held its step at its "
                                  f"stability limit for 15 steps (h = {h:.3g}, h*|lambda| ~ {rho:.2f} at "
                                  f"t = {t1:.6g}); the system is stiff - use an implicit "
                                  "method such as 'radauIIA5', 'sdirk2' or 'implicit_euler' with a step_size",
                                  StiffnessWarning, stacklevel=4)
            t, y, k1 = t1, y1, f1
            h = min(max(self.next_step(h, ratio, True), self.min_step), self.max_step)
            if not math.isfinite(t):
                break
        if outputs is None:
            raise RuntimeError("odeint: event_fn never changed sign (t reached infinity)")
        return out

    def integrate(self, times: Tensor) -> list[Tensor]:
        ts = [float(x) for x in times]
        return self.run(ts[0], ts[-1], ts[1:], None)

    def until_event(self, t0: float, ev: EventFunction, max_steps: int) -> tuple[float, Tensor]:
        self.max_num_steps = min(self.max_num_steps, max_steps)
        try:
            return self.run(t0, math.inf, None, ev)
        except RuntimeError as e:
            if "max_num_steps" in str(e):
                raise RuntimeError(f"odeint: event_fn never changed sign within {self.max_num_steps} steps; "
                                   "the event never fires - check event_fn or raise options max_num_steps") from e
            raise
