"""ODE solvers behind :func:`difflens.dynamics.odeint`: tableaux, fixed-grid and adaptive drivers.

``SOLVERS`` maps each method name to a factory ``(problem, **options) -> solver``.
"""

from __future__ import annotations

from functools import partial

from difflens.dynamics.solvers.adaptive import AdaptiveSolver, StiffnessWarning
from difflens.dynamics.solvers.fixed import AdamsSolver, FixedGridSolver
from difflens.dynamics.solvers.problem import Problem
from difflens.dynamics.solvers.scipy_solver import ScipySolver
from difflens.dynamics.solvers.tableaux import EXPLICIT_ADAPTIVE, EXPLICIT_FIXED, IMPLICIT_FIXED

__all__ = ["FIXED_OPTIONS", "ADAPTIVE_OPTIONS", "SOLVERS", "Problem", "StiffnessWarning", "make_solver"]

SOLVERS: dict[str, object] = {}
for _name, _tab in {**EXPLICIT_FIXED, **IMPLICIT_FIXED}.items():
    SOLVERS[_name] = partial(FixedGridSolver, tableau=_tab)
for _name, _tab in EXPLICIT_ADAPTIVE.items():
    SOLVERS[_name] = partial(AdaptiveSolver, tableau=_tab)
SOLVERS["explicit_adams"] = partial(AdamsSolver, implicit=False)
SOLVERS["implicit_adams"] = partial(AdamsSolver, implicit=True)
SOLVERS["fixed_adams"] = SOLVERS["implicit_adams"]
SOLVERS["scipy_solver"] = ScipySolver

FIXED_OPTIONS = {"step_size", "grid_constructor", "interp", "perturb", "norm", "max_num_steps"}
ADAPTIVE_OPTIONS = {"first_step", "min_step", "max_step", "max_num_steps", "grid_points", "jump_t", "step_t",
                    "safety", "ifactor", "dfactor", "norm"}
_SCIPY_OPTIONS = {"solver", "min_step", "max_step", "norm"}


def make_solver(method: str, problem: Problem, options: dict):
    """The solver for ``method`` on ``problem`` with torchdiffeq-style ``options`` (unknown ones warned)."""
    import warnings

    if method not in SOLVERS:
        raise ValueError(f"unknown method {method!r}; choose one of {sorted(SOLVERS)}")
    known = (_SCIPY_OPTIONS if method == "scipy_solver"
             else ADAPTIVE_OPTIONS if method in EXPLICIT_ADAPTIVE else FIXED_OPTIONS)
    unused = set(options) - known
    if unused:
        warnings.warn(f"odeint: method {method!r} does not use the options {sorted(unused)}", stacklevel=3)
    opts = {k: v for k, v in options.items() if k in known and k not in ("norm", "max_num_steps")
            or (k == "max_num_steps" and method in EXPLICIT_ADAPTIVE)}
    return SOLVERS[method](problem, **opts)
