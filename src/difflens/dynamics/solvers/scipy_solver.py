"""``method="scipy_solver"``: SciPy's ``solve_ivp`` (``options["solver"]``: RK45, RK23, DOP853, Radau, BDF,
LSODA) on the flat state, for comparison and for stiff problems; no gradients flow through it."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from difflens.dynamics.solvers.problem import Problem

__all__ = ["ScipySolver"]


class ScipySolver:
    adaptive = True
    callbacks: tuple[str, ...] = ()

    def __init__(self, P: Problem, solver: str = "LSODA", min_step: float = 0.0, max_step: float = math.inf,
                 **unused) -> None:
        self.P, self.solver = P, solver
        self.min_step, self.max_step = float(min_step), float(max_step)

    def integrate(self, times: Tensor) -> list[Tensor]:
        from scipy.integrate import solve_ivp

        P = self.P
        ts = np.array([float(x) for x in times])
        y0 = P.y0.detach().cpu().numpy().astype(np.float64)
        if len(ts) == 1:
            return [P.y0]

        def fun(t, y):
            with torch.no_grad():
                dy = P(float(t), torch.as_tensor(y, dtype=P.y0.dtype, device=P.device))
            return dy.detach().cpu().numpy().astype(np.float64)

        rtol = float(torch.as_tensor(P.rtol).min()) if isinstance(P.rtol, Tensor) else float(P.rtol)
        atol = P.atol.detach().cpu().numpy() if isinstance(P.atol, Tensor) else float(P.atol)
        kwargs = {"max_step": self.max_step}
        if self.solver == "LSODA":
            kwargs["min_step"] = self.min_step
        sol = solve_ivp(fun, (ts[0], ts[-1]), y0, method=self.solver, t_eval=ts, rtol=rtol, atol=atol, **kwargs)
        if not sol.success:
            raise RuntimeError(f"odeint: scipy's {self.solver} failed: {sol.message}")
        out = torch.as_tensor(sol.y.T, dtype=P.y0.dtype, device=P.device)
        return [P.y0] + list(out[1:].unbind(0))
