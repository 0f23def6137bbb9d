"""torchdiffeq's ``odeint`` interface over the difflens solvers.

``odeint(func, y0, t)`` returns the states at the times ``t``, shape
``(len(t), *y0.shape)`` (a tuple of such for a tuple ``y0``); ``func(t, y)``
returns dy/dt. Gradients flow by backpropagation through the solver's
operations; :func:`difflens.dynamics.odeint_adjoint` gives them in memory
independent of the number of steps.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import torch
from torch import Tensor

from difflens.dynamics.solvers import SOLVERS, Problem, make_solver
from difflens.dynamics.solvers.problem import CALLBACKS
from difflens.dynamics.solvers.state import FlatState, flat_tolerance
from difflens.dynamics.solvers.steps import EventFunction

__all__ = ["Prepared", "odeint", "odeint_event", "prepare"]

State = Tensor | tuple[Tensor, ...]
EVENT_MAX_STEPS = 10_000


class Prepared:
    """Everything :func:`odeint` derives from its arguments (also used by the adjoint)."""

    def __init__(self, func, y0, t, rtol, atol, method, options, event_fn) -> None:
        if not callable(func):
            raise TypeError(f"func must be callable func(t, y) -> dy/dt, got {type(func).__name__}")
        self.func = func
        self.state = FlatState(y0)
        st = self.state
        if not isinstance(t, Tensor):
            t = torch.as_tensor(t)
        if t.ndim != 1 or t.numel() < 1:
            raise ValueError(f"t must be a 1-D tensor of times, got shape {list(t.shape)}")
        if not t.is_floating_point():
            t = t.to(st.real_dtype)
        if not bool(torch.isfinite(t.detach()).all()):
            raise ValueError("t contains NaN or inf")
        self.t = t
        self.t_dtype = st.real_dtype
        self.reversed = False
        if t.numel() > 1 and event_fn is None:
            d = torch.diff(t.detach())
            if not (bool((d > 0).all()) or bool((d < 0).all())):
                raise ValueError("t must be strictly increasing or strictly decreasing")
            self.reversed = bool(d[0] < 0)
        elif t.numel() > 1:
            self.reversed = bool(t[1] < t[0])
        self.method = "dopri5" if method is None else method
        if self.method not in SOLVERS:
            raise ValueError(f"unknown method {self.method!r}; choose one of {sorted(SOLVERS)}")
        self.options = dict(options or {})
        self.rtol = flat_tolerance(rtol, "rtol", st)
        self.atol = flat_tolerance(atol, "atol", st)
        self.event_fn = event_fn
        self.sign = -1.0 if self.reversed else 1.0
        user_norm = self.options.get("norm")
        if user_norm is None:
            self.norm = st.mixed_norm
        elif callable(user_norm):
            self.norm = lambda x: user_norm(st.unflatten(x))
        else:
            raise TypeError(f"options norm must be callable norm(y) -> 0-d tensor, got {user_norm!r}")
        if self.reversed:
            for key in ("grid_points", "jump_t", "step_t"):
                if self.options.get(key) is not None:
                    self.options[key] = -torch.as_tensor(self.options[key])
            gc = self.options.get("grid_constructor")
            if gc is not None:
                self.options["grid_constructor"] = lambda f, y, tt: -torch.as_tensor(gc(f, y, -tt))

    # ------------------------------------------------------------------ the flat problem
    def flat_func(self, func=None) -> Callable[[Tensor, Tensor], Tensor]:
        """``f(s, y_flat)`` in the internal (increasing) time ``s = sign * t``."""
        func = self.func if func is None else func
        st, sign = self.state, self.sign

        if sign > 0 and st.same_dtype:  # a plain real tensor state: no structure to map, a view each way
            shape, dtype = st.shapes[0], st.real_dtype

            def f(s: Tensor, y: Tensor) -> Tensor:
                dy = func(s, y.view(shape) if y.is_contiguous() else y.reshape(shape))
                if type(dy) is not Tensor or dy.shape != shape or dy.dtype != dtype:
                    return st.flatten_derivative(dy, y)  # converts, or raises the clear error
                return dy.reshape(-1)
        elif sign > 0:
            def f(s: Tensor, y: Tensor) -> Tensor:
                return st.flatten_derivative(func(s, st.unflatten(y)), y)
        else:
            def f(s: Tensor, y: Tensor) -> Tensor:
                return -st.flatten_derivative(func(-s, st.unflatten(y)), y)
        return f

    def problem(self, y0_flat: Tensor, func=None, callbacks=None, norm=None, rtol=None, atol=None) -> Problem:
        cb = func if callbacks is None else callbacks
        if cb is None:
            cb = self.func
        return Problem(self.flat_func(func), y0_flat, self.rtol if rtol is None else rtol,
                       self.atol if atol is None else atol, norm or self.norm,
                       _Callbacks(cb, self.sign), self.t_dtype)

    def times(self) -> Tensor:
        return (self.t.detach() * self.sign).to(torch.float64)

    def check_callbacks(self, solver) -> None:
        given = {n for n in CALLBACKS if callable(getattr(self.func, n, None))}
        bad = given - set(solver.callbacks)
        if bad:
            warnings.warn(f"odeint: solver {self.method!r} does not support callbacks {sorted(bad)}", stacklevel=4)

    def solve(self, y0_flat: Tensor, func=None, callbacks=None, options=None, **kw) -> Tensor:
        """Solve on the flat state; ``(len(t), N)``."""
        P = self.problem(y0_flat, func, callbacks, **kw)
        solver = make_solver(self.method, P, self.options if options is None else options)
        if func is None and callbacks is None:
            self.check_callbacks(solver)
        if self.t.numel() == 1:
            return y0_flat.unsqueeze(0)
        return torch.stack(solver.integrate(self.times()))

    def solve_event(self, y0_flat: Tensor) -> tuple[float, Tensor]:
        P = self.problem(y0_flat)
        solver = make_solver(self.method, P, self.options)
        self.check_callbacks(solver)
        st, sign, fn = self.state, self.sign, self.event_fn
        ev = EventFunction(lambda s, y: fn(s * sign, st.unflatten(y)), P)
        t0 = float(self.t[0]) * sign
        max_steps = int(self.options.get("max_num_steps", EVENT_MAX_STEPS))
        te, ye = solver.until_event(t0, ev, max_steps)
        return te * sign, ye


class _Callbacks:
    """The user's callbacks seen through the time reversal (they get the user's time)."""

    def __init__(self, src, sign: float) -> None:
        for name in CALLBACKS:
            fn = getattr(src, name, None)
            if callable(fn):
                setattr(self, name, (lambda t, y, dt, _fn=fn: _fn(t * sign, y, dt)) if sign < 0 else fn)


def prepare(func, y0, t, rtol=1e-7, atol=1e-9, method=None, options=None, event_fn=None) -> Prepared:
    """Validate and normalise :func:`odeint`'s arguments (see there)."""
    return Prepared(func, y0, t, rtol, atol, method, options, event_fn)


def _needs_grad(*xs) -> bool:
    return torch.is_grad_enabled() and any(isinstance(x, Tensor) and x.requires_grad for x in xs)


def time_shift_start(prep: Prepared, y0_flat: Tensor) -> Tensor:
    """``y0 - (t0 - t0.detach()) f(t0, y0)``: the solve from it carries ``d/dt0 = -Phi f(t0, y0)`` (value unchanged)."""
    if not _needs_grad(prep.t):
        return y0_flat
    t0 = prep.t[0].to(prep.t_dtype)
    f = prep.flat_func()
    return y0_flat - (t0 - t0.detach()) * prep.sign * f(t0.detach() * prep.sign, y0_flat)


def time_shift_outputs(prep: Prepared, ys: Tensor, y0_flat: Tensor) -> Tensor:
    """Adds ``d y(t_k) / d t_k = f(t_k, y_k)`` to the outputs and puts back the unshifted ``y0`` (values unchanged)."""
    if not _needs_grad(prep.t) or ys.shape[0] < 2:
        return ys
    f = prep.flat_func()
    tt = prep.t.to(prep.t_dtype)
    rows = [y0_flat] + [ys[k] + (tt[k] - tt[k].detach()) * prep.sign * f(tt[k].detach() * prep.sign, ys[k])
                      for k in range(1, ys.shape[0])]
    return torch.stack(rows)


def reroute_event(prep: Prepared, func, event_t: Tensor, y_event_flat: Tensor) -> tuple[Tensor, Tensor]:
    """Attach the event time's gradient by the implicit function theorem (values unchanged).

    ``g(tau, y(tau)) = 0`` gives ``d tau = -(dg/dy dy + dg/dtheta) / (dg/dt + dg/dy f)``; the
    state at the event gains ``f(tau, y) d tau``.
    """
    st, fn = prep.state, prep.event_fn
    if not torch.is_grad_enabled():
        return event_t, y_event_flat
    tau = event_t.detach()
    with torch.enable_grad():
        y_d = y_event_flat.detach().requires_grad_(True)
        t_d = tau.clone().requires_grad_(True)
        g_d = fn(t_d, st.unflatten(y_d)).reshape(-1)
        fy = st.flatten_derivative(func(tau.to(prep.t_dtype), st.unflatten(y_d.detach())), y_d).detach()
        i = int(g_d.detach().abs().argmin())
        gt, gy = torch.autograd.grad(g_d[i], (t_d, y_d), allow_unused=True)
    gdot = (0.0 if gt is None else gt) + (0.0 if gy is None else (gy * fy).sum())
    gdot = torch.as_tensor(gdot, dtype=tau.dtype)
    if float(gdot.abs()) == 0.0:
        return event_t, y_event_flat
    g = fn(tau, st.unflatten(y_event_flat)).reshape(-1)[i]
    if not g.requires_grad and not event_t.requires_grad:
        return event_t, y_event_flat
    new_t = event_t - (g - g.detach()).to(tau.dtype) / gdot.detach()
    y_new = y_event_flat + fy * (new_t - new_t.detach()).to(fy.dtype)
    return new_t, y_new


def odeint(func: Callable, y0: State, t: Tensor, *, rtol: float | Tensor = 1e-7, atol: float | Tensor = 1e-9,
           method: str | None = None, options: dict | None = None,
           event_fn: Callable[[Tensor, State], Tensor] | None = None):
    """Integrate ``dy/dt = func(t, y)`` from ``y(t[0]) = y0``, with torchdiffeq's signature and conventions.

    Parameters
    ----------
    func:
        ``func(t, y) -> dy/dt``; ``t`` a 0-d tensor (in ``y0``'s real dtype), ``y``
        of ``y0``'s structure; returns the same structure (a tuple for a tuple state).
    y0:
        Initial state: a tensor of any shape (0-d included), real or complex, or a
        tuple of tensors.
    t:
        1-D strictly increasing or strictly decreasing times; ``t[0]`` is ``y0``'s time.
    rtol, atol:
        Tolerances of the adaptive methods (defaults 1e-7, 1e-9): numbers or
        per-element tensors broadcastable to the state (for a tuple state: a
        tuple of those, or a 1-D tensor with one per tensor).
    method:
        Adaptive: ``"dopri5"`` (default), ``"tsit5"``, ``"dopri8"``, ``"bosh3"``,
        ``"fehlberg2"``, ``"adaptive_heun"``. Fixed grid: ``"euler"``, ``"midpoint"``,
        ``"heun2"``, ``"heun3"``, ``"rk4"`` (classic), ``"rk4_38"`` (the 3/8 rule:
        torchdiffeq's ``"rk4"``), ``"explicit_adams"``, ``"implicit_adams"``.
        Implicit (stiff problems; fixed grid, simplified Newton with a dense
        Jacobian, so small systems): ``"implicit_euler"``, ``"implicit_midpoint"``,
        ``"trapezoid"``, ``"sdirk2"``, ``"trbdf2"``, ``"radauIIA3"``,
        ``"radauIIA5"``, ``"gl4"``, ``"gl6"``. And ``"scipy_solver"`` (SciPy's
        ``solve_ivp``, ``options["solver"]``; no gradients).
    options:
        Adaptive: ``first_step``, ``min_step``, ``max_step``, ``max_num_steps``,
        ``grid_points`` / ``jump_t`` (steps land on them; after a jump the
        derivative is re-evaluated), ``norm`` (``norm(y) -> 0-d``, on the
        state's structure). Fixed grid: ``step_size`` or ``grid_constructor``,
        ``interp`` (``"linear"`` / ``"cubic"``), ``perturb``.
    event_fn:
        ``event_fn(t, y) -> tensor``: integrate (ignoring ``t[1:]``) until it
        changes sign, then return ``(event_t, solution)`` with ``solution``
        holding ``y0`` and the state at the event (leading dimension 2).

    Returns
    -------
    ``(len(t), *y0.shape)`` tensor (a tuple of them for a tuple ``y0``); with
    ``event_fn``: ``(event_t, solution)``.

    Examples
    --------
    >>> import torch
    >>> y = odeint(lambda t, y: -y, torch.tensor(1.0, dtype=torch.float64),
    ...            torch.tensor([0.0, 1.0], dtype=torch.float64), rtol=1e-10, atol=1e-12)
    >>> round(float(y[-1]), 8) == round(float(torch.exp(torch.tensor(-1.0, dtype=torch.float64))), 8)
    True
    """
    prep = prepare(func, y0, t, rtol, atol, method, options, event_fn)
    y0_flat = prep.state.flatten(y0)
    if not bool(torch.isfinite(y0_flat.detach()).all()):
        raise ValueError("y0 contains NaN or inf")
    start = time_shift_start(prep, y0_flat)
    if event_fn is None:
        ys = time_shift_outputs(prep, prep.solve(start), y0_flat)
        return prep.state.unflatten(ys, (ys.shape[0],))
    te, ye = prep.solve_event(start)
    event_t = torch.tensor(te, dtype=prep.t.dtype, device=prep.t.device)
    if prep.t.requires_grad:
        event_t = event_t + (prep.t[0] - prep.t[0].detach()) * 0.0
    event_t, ye = reroute_event(prep, func, event_t, ye)
    sol = torch.stack([y0_flat, ye])
    return event_t, prep.state.unflatten(sol, (2,))


def odeint_event(func: Callable, y0: State, t0: Tensor, *, event_fn: Callable, reverse_time: bool = False,
                 odeint_interface: Callable = odeint, **kwargs):
    """Integrate from ``t0`` until ``event_fn(t, y)`` changes sign; ``(event_t, solution)``.

    Gradients with respect to ``y0``, ``t0``, ``func``'s and ``event_fn``'s
    parameters flow to ``event_t`` by the implicit function theorem
    (``g(tau, y(tau)) = 0``) and to the final state through ``event_t``.
    ``reverse_time=True`` integrates backwards. ``odeint_interface`` may be
    :func:`difflens.dynamics.odeint_adjoint`; ``kwargs`` go to it.

    Examples
    --------
    >>> import torch
    >>> t, y = odeint_event(lambda t, y: -torch.ones_like(y), torch.tensor(1.0, dtype=torch.float64),
    ...                     torch.tensor(0.0, dtype=torch.float64), event_fn=lambda t, y: y - 0.25)
    >>> round(float(t), 9), round(float(y[-1]), 9)
    (0.75, 0.25)
    """
    t0 = torch.as_tensor(t0)
    if t0.numel() != 1:
        raise ValueError(f"t0 must be a single time, got shape {list(t0.shape)}")
    t0 = t0.reshape(-1)
    t = torch.cat([t0, t0.detach() + (-1.0 if reverse_time else 1.0)])
    return odeint_interface(func, y0, t, event_fn=event_fn, **kwargs)
