"""Batched, differentiable ODE integration: classic RK4 and adaptive Dormand-Prince 5(4).

``integrate(f, x0, t)`` follows torchdiffeq's ``odeint`` convention: ``f(t, x)``
returns dx/dt, ``t`` is a 1-D tensor of output times and the result has shape
``(len(t), *x0.shape)`` with ``result[0] == x0``. Gradients flow to ``x0`` and to
the parameters of ``f`` by ordinary backpropagation through the solver's
operations ("discretise, then optimise"); step-size selection is not
differentiated. Gradients with respect to ``t`` (reverse or forward mode) are
exact for the discrete RK4 solve; for dopri5, whose steps are chosen rather
than differentiated, they are the flow's, ``dx(t_k)/dt_k = f(t_k, x(t_k))`` and
``dx(t_k)/dt_0 = -(dx(t_k)/dx_0) f(t_0, x_0)``, evaluated on the computed
solution (so they agree with finite differences to the solver's tolerance).
float32 and float64 both work; all arithmetic is in ``x0.dtype`` on
``x0.device``.
"""

from __future__ import annotations

import math
import warnings
import weakref
from collections.abc import Callable

import torch
import torch.autograd.forward_ad as fwAD
from torch import Tensor, nn

__all__ = ["StateBlowUpError", "check_derivative", "check_finite_states", "integrate", "rk4_step"]

Field = Callable[[Tensor, Tensor], Tensor]


class StateBlowUpError(FloatingPointError):
    """An integration or rollout produced NaN, inf or states beyond ``max_abs``.

    ``step`` is the index of the first bad output (``result[step]``), ``time``
    its time (or None where there is none).
    """

    def __init__(self, message: str, step: int, time: float | None = None) -> None:
        super().__init__(message)
        self.step = step
        self.time = time


# ----------------------------------------------------------------------------- checks
def _check_inputs(f, x0, t, method: str) -> tuple[Tensor, Tensor]:
    if not callable(f):
        raise TypeError(f"f must be callable f(t, x) -> dx/dt, got {type(f).__name__}")
    if not isinstance(x0, Tensor):
        raise TypeError(f"x0 must be a torch.Tensor, got {type(x0).__name__}")
    if not x0.is_floating_point():
        raise TypeError(f"x0 must be a floating-point tensor (float32 or float64), got {x0.dtype}")
    if x0.ndim == 0:
        raise ValueError("x0 must have at least one dimension (the state), got a 0-d tensor")
    if not bool(torch.isfinite(x0).all()):
        raise ValueError("x0 contains NaN or inf")
    t = torch.as_tensor(t)
    if t.ndim != 1 or t.numel() < 1:
        raise ValueError(f"t must be a 1-D tensor of output times, got shape {list(t.shape)}")
    if not t.is_floating_point():
        t = t.to(x0.dtype)
    t = t.to(device=x0.device, dtype=x0.dtype)
    if not bool(torch.isfinite(t).all()):
        raise ValueError("t contains NaN or inf")
    if t.numel() > 1:
        d = torch.diff(t)
        if not (bool((d > 0).all()) or bool((d < 0).all())):
            raise ValueError("t must be strictly increasing or strictly decreasing")
    if method not in ("rk4", "dopri5"):
        raise ValueError(f"method must be 'rk4' or 'dopri5', got {method!r}")
    return x0, t


def check_finite_states(states: Tensor, t: Tensor | None = None, max_abs: float | None = None,
                        what: str = "integration") -> None:
    """Raise :class:`StateBlowUpError` naming the first step of ``states`` ``(T, ...)`` that is bad."""
    states = states.detach()
    if states.numel() == 0:
        return
    lo, hi = torch.aminmax(states)  # one pass; NaN propagates
    bound = math.inf if max_abs is None else max_abs
    if bool(torch.isfinite(lo) & torch.isfinite(hi)) and max(-float(lo), float(hi)) <= bound:
        return
    flat = states.reshape(states.shape[0], -1)
    ok = torch.isfinite(flat).all(1)
    if max_abs is not None:
        ok &= (flat.abs() <= max_abs).all(1)
    if bool(ok.all()):
        return
    step = int((~ok).nonzero()[0])
    time = float(t[step]) if t is not None else None
    kind = "NaN/inf" if not bool(torch.isfinite(flat[step]).all()) else f"|state| > max_abs={max_abs:g}"
    where = f" (t = {time:.6g})" if time is not None else ""
    raise StateBlowUpError(f"the {what} blew up: {kind} at step {step}{where}; the states before were "
                           "finite. Use a smaller step, a float64 state, or check the model.", step, time)


def check_derivative(dx: object, x: Tensor) -> None:
    """Raise ``TypeError``/``ValueError`` unless ``dx = f(t, x)`` is a tensor of ``x``'s shape.

    A derivative of another shape would be broadcast against the state (a
    ``(1,)`` one silently; a larger one makes the state grow at every stage),
    so :func:`integrate` checks the first evaluation of ``f`` with this.
    """
    if not isinstance(dx, Tensor):
        raise TypeError(f"f(t, x) must return a torch.Tensor dx/dt, got {type(dx).__name__}")
    if dx.shape != x.shape:
        raise ValueError(f"f(t, x) returned a derivative of shape {list(dx.shape)} for a state of shape "
                         f"{list(x.shape)}; f must return dx/dt with the state's shape")


def _first_derivative(f: Field, t0: Tensor, x0: Tensor) -> Tensor:
    """``f(t0, x0)`` without gradients, checked by :func:`check_derivative`."""
    with torch.no_grad():
        dx = f(t0, x0)
    check_derivative(dx, x0)
    return dx


# ----------------------------------------------------------------------------- RK4
def rk4_step(f: Field, t: Tensor, x: Tensor, h: float | Tensor) -> Tensor:
    """One classic Runge-Kutta-4 step of size ``h`` from ``(t, x)``; differentiable.

    Raises ``ValueError`` when ``f(t, x)`` has another shape than ``x`` (see
    :func:`check_derivative`; a shape comparison, no host sync).
    """
    k1 = f(t, x)
    if not (isinstance(k1, Tensor) and k1.shape == x.shape):
        check_derivative(k1, x)
    if isinstance(h, Tensor):
        hh = h * 0.5
        k2 = f(t + hh, x + hh * k1)
        k3 = f(t + hh, x + hh * k2)
        k4 = f(t + h, x + h * k3)
        return x + (h / 6.0) * (k1 + 2.0 * (k2 + k3) + k4)
    h = float(h)
    hh = 0.5 * h
    k2 = f(t + hh, torch.add(x, k1, alpha=hh))
    k3 = f(t + hh, torch.add(x, k2, alpha=hh))
    k4 = f(t + h, torch.add(x, k3, alpha=h))
    return torch.add(x, torch.add(k1, k2 + k3, alpha=2.0) + k4, alpha=h / 6.0)


_CM_CLASSES: dict[type, type] = {}


def _component_major_view(f: nn.Module) -> nn.Module:
    """A module sharing ``f``'s parameters whose ``forward`` is ``f.forward_cm`` (states ``(d, ...)``).

    Built as an instance of a subclass with ``forward = forward_cm`` so the
    compiled solver calls the field directly (no extra call layer).
    """
    cls = type(f)
    sub = _CM_CLASSES.get(cls)
    if sub is None:
        sub = type(cls.__name__ + "ComponentMajor", (cls,), {"forward": cls.forward_cm})
        _CM_CLASSES[cls] = sub
    view = sub.__new__(sub)
    view.__dict__ = dict(f.__dict__)  # the same parameter and buffer objects
    return view


class _ScriptedRK4(nn.Module):
    """The RK4 loop, compiled with TorchScript (no Python between operations)."""

    def __init__(self, f: nn.Module) -> None:
        super().__init__()
        self.f = f

    def forward(self, x0: Tensor, t: Tensor, hs: list[float], sub: list[int], autonomous: bool) -> Tensor:
        out = torch.empty((t.shape[0],) + x0.shape, dtype=x0.dtype, device=x0.device)
        out[0] = x0
        x = x0
        s = t[0]
        for i in range(len(sub)):
            h = hs[i]
            hh = 0.5 * h
            h6 = h / 6.0
            if not autonomous:
                s = t[i]
            for j in range(sub[i]):
                k1 = self.f(s, x)
                sh = s if autonomous else s + hh
                k2 = self.f(sh, torch.add(x, k1, alpha=hh))
                k3 = self.f(sh, torch.add(x, k2, alpha=hh))
                if not autonomous:
                    s = s + h
                k4 = self.f(s, torch.add(x, k3, alpha=h))
                acc = torch.add(k1, k2 + k3, alpha=2.0).add_(k4)
                if j == sub[i] - 1:
                    x = torch.add(x, acc, alpha=h6, out=out[i + 1])
                else:
                    x = torch.add(x, acc, alpha=h6)
        return out


_SCRIPTED: weakref.WeakKeyDictionary[nn.Module, dict] = weakref.WeakKeyDictionary()


def _scripted(f, solver: type, component_major: bool) -> nn.Module | None:
    """``torch.jit.freeze(torch.jit.script(solver(field)))`` (cached per module), or None if ``f`` cannot be scripted.

    Freezing inlines the field's calls into the loop and turns its parameters
    into constants, so the cache key includes every parameter's version
    counter: an in-place update (an optimiser step) rebuilds the loop.
    """
    if not isinstance(f, nn.Module):
        return None
    tensors = list(f.parameters()) + list(f.buffers())
    key = tuple((id(p), p._version, p.data_ptr()) for p in tensors)
    cache = _SCRIPTED.setdefault(f, {})
    hit = cache.get((solver, component_major))
    if hit is not None and hit[0] == key:
        return hit[1]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            loop = torch.jit.script(solver(_component_major_view(f) if component_major else f))
            try:
                loop = torch.jit.freeze(loop.eval())
            except Exception:  # noqa: BLE001 - an unfreezable module still runs compiled
                pass
    except Exception:  # noqa: BLE001 - anything TorchScript rejects runs eagerly instead
        loop = None
    cache[(solver, component_major)] = (key, loop)
    return loop


def _run_scripted(f, solver: type, x0: Tensor, *args):
    """Run a scripted solver, in the component-major layout when ``f`` offers ``forward_cm``.

    Returns ``(result, d)``: with ``d`` set, the result's states are laid out
    ``(d, B)`` (``B`` = all batch elements) and must be moved back with
    :func:`_from_cm`. None when ``f`` cannot be scripted.
    """
    cm = hasattr(f, "forward_cm")
    loop = _scripted(f, solver, cm)
    if loop is None and cm:
        cm, loop = False, _scripted(f, solver, False)
    if loop is None:
        return None
    x = x0.reshape(-1, x0.shape[-1]).t().contiguous() if cm else x0
    with torch.no_grad(), torch.jit.optimized_execution(False):
        return loop(x, *args), cm


def _from_cm(states: Tensor, shape: torch.Size) -> Tensor:
    """``(T, d, B)`` component-major states back to ``(T, *shape)`` (a strided view, no copy)."""
    return states.movedim(1, -1).reshape(states.shape[0], *shape)


def _is_plain(x: Tensor) -> bool:
    """Not a forward-AD dual or a torch.func-wrapped tensor (those must run eagerly)."""
    if type(x) is not torch.Tensor or torch._C._functorch.is_functorch_wrapped_tensor(x):
        return False
    return fwAD.unpack_dual(x).tangent is None


def _needs_grad(f, x0: Tensor, t: Tensor) -> bool:
    """Whether the solve must be eager: gradients wanted, or an AD transform is active."""
    if not (_is_plain(x0) and _is_plain(t)):
        return True
    if not torch.is_grad_enabled():
        return False
    if x0.requires_grad or t.requires_grad:
        return True
    if not isinstance(f, nn.Module):
        return True
    return any(p.requires_grad for p in f.parameters())


def _substeps(t: Tensor, step_size: float | None) -> list[int]:
    if step_size is None:
        return [1] * (t.numel() - 1)
    if not (isinstance(step_size, (int, float)) and step_size > 0 and math.isfinite(step_size)):
        raise ValueError(f"step_size must be a positive finite number or None, got {step_size!r}")
    dt = torch.diff(t).abs().tolist()
    return [max(1, math.ceil(d / step_size - 1e-9)) for d in dt]


def _rk4(f: Field, x0: Tensor, t: Tensor, sub: list[int], script: bool | None, max_abs: float | None) -> Tensor:
    n_steps = sum(sub)
    if script is None:
        script = n_steps >= 200 and not _needs_grad(f, x0, t)
    t_list = t.tolist()
    hs = [(b - a) / n for a, b, n in zip(t_list[:-1], t_list[1:], sub)]
    if script:
        _first_derivative(f, t[0], x0)  # one eager evaluation: the compiled loop would broadcast silently
        done = _run_scripted(f, _ScriptedRK4, x0, t, hs, sub, bool(getattr(f, "autonomous", False)))
        if done is not None:
            out, moved = done
            check_finite_states(out, t, max_abs)  # on the contiguous buffer: time is dim 0 in both layouts
            return _from_cm(out, x0.shape) if moved else out
    states = [x0]
    x = x0
    exact_t = t.requires_grad or not _is_plain(t)  # gradients (reverse or forward mode) with respect to t
    for i in range(t.numel() - 1):
        h: float | Tensor = (t[i + 1] - t[i]) / sub[i] if exact_t else hs[i]
        s = t[i]
        for _ in range(sub[i]):
            x = rk4_step(f, s, x, h)
            s = s + h
        states.append(x)
    states = torch.stack(states)
    check_finite_states(states, t, max_abs)
    return states


# ----------------------------------------------------------------------------- dopri5
# Dormand-Prince 5(4) tableau; dense output from Shampine (1986), as in scipy's RK45:
# y(t0 + s h) = y0 + h sum_i K_i (P_i . [s, s^2, s^3, s^4]); P rows for stages 1, 3, 4, 5, 6, 7.


class _Dopri5(nn.Module):
    """Adaptive Dormand-Prince 5(4); scriptable, and run eagerly when gradients are needed.

    Returns ``(outputs, status, t_stop, steps)``; status 0 ok, 1 too many steps,
    2 step size collapsed (the state blew up).
    """

    def __init__(self, f: nn.Module) -> None:
        super().__init__()
        self.f = f

    def forward(self, x0: Tensor, t: Tensor, rtol: float, atol: float, h: float,
                max_steps: int, var_dim: int) -> tuple[list[Tensor], int, float, int]:
        times: list[float] = t.tolist()
        t_now = times[0]
        t_end = times[-1]
        span = abs(t_end - t_now)
        y = x0
        k1 = self.f(t[0], y)
        out: list[Tensor] = [x0]
        k_next = 1
        steps = 0
        status = 0
        P = [[1.0, -8048581381 / 2820520608, 8663915743 / 2820520608, -12715105075 / 11282082432],
             [0.0, 131558114200 / 32700410799, -68118460800 / 10900136933, 87487479700 / 32700410799],
             [0.0, -1754552775 / 470086768, 14199869525 / 1410260304, -10690763975 / 1880347072],
             [0.0, 127303824393 / 49829197408, -318862633887 / 49829197408, 701980252875 / 199316789632],
             [0.0, -282668133 / 205662961, 2019193451 / 616988883, -1453857185 / 822651844],
             [0.0, 40617522 / 29380423, -110615467 / 29380423, 69997945 / 29380423]]
        while k_next < len(times):
            if steps >= max_steps:
                status = 1
                break
            h = min(h, t_end - t_now)
            if h <= 1e-14 * max(1.0, abs(t_now)):
                status = 2
                break
            tt = torch.tensor(t_now, dtype=x0.dtype, device=x0.device)
            k2 = self.f(tt + 0.2 * h, torch.add(y, k1, alpha=0.2 * h))
            k3 = self.f(tt + 0.3 * h, torch.add(y, k1, alpha=h * 3 / 40).add(k2, alpha=h * 9 / 40))
            k4 = self.f(tt + 0.8 * h, torch.add(y, k1, alpha=h * 44 / 45).add(k2, alpha=h * -56 / 15)
                        .add(k3, alpha=h * 32 / 9))
            k5 = self.f(tt + h * 8 / 9, torch.add(y, k1, alpha=h * 19372 / 6561).add(k2, alpha=h * -25360 / 2187)
                        .add(k3, alpha=h * 64448 / 6561).add(k4, alpha=h * -212 / 729))
            k6 = self.f(tt + h, torch.add(y, k1, alpha=h * 9017 / 3168).add(k2, alpha=h * -355 / 33)
                        .add(k3, alpha=h * 46732 / 5247).add(k4, alpha=h * 49 / 176).add(k5, alpha=h * -5103 / 18656))
            y_new = (torch.add(y, k1, alpha=h * 35 / 384).add(k3, alpha=h * 500 / 1113).add(k4, alpha=h * 125 / 192)
                     .add(k5, alpha=h * -2187 / 6784).add(k6, alpha=h * 11 / 84))
            k7 = self.f(tt + h, y_new)
            err = (torch.mul(k1.detach(), -71 / 57600).add(k3.detach(), alpha=71 / 16695)
                   .add(k4.detach(), alpha=-71 / 1920).add(k5.detach(), alpha=17253 / 339200)
                   .add(k6.detach(), alpha=-22 / 525).add(k7.detach(), alpha=1 / 40)) * h
            scale = torch.maximum(y.detach().abs(), y_new.detach().abs()) * rtol + atol
            en = float((err / scale).square().mean(var_dim).sqrt().max())
            steps += 1
            if not math.isfinite(en) or en > 1.0:
                h = h * (0.2 if not math.isfinite(en) else max(0.2, 0.9 * en ** -0.2))
                continue
            t_new = t_now + h
            while k_next < len(times) and times[k_next] <= t_new + 1e-12 * span:
                if abs(times[k_next] - t_new) <= 1e-12 * span:
                    out.append(y_new)
                else:
                    s = (times[k_next] - t_now) / h
                    c: list[float] = []
                    for row in P:
                        c.append(h * (row[0] * s + row[1] * s * s + row[2] * s ** 3 + row[3] * s ** 4))
                    out.append(torch.add(y, k1, alpha=c[0]).add(k3, alpha=c[1]).add(k4, alpha=c[2])
                               .add(k5, alpha=c[3]).add(k6, alpha=c[4]).add(k7, alpha=c[5]))
                k_next += 1
            t_now = t_new
            y = y_new
            k1 = k7
            h = h * (10.0 if en == 0.0 else min(10.0, 0.9 * en ** -0.2))
        return out, status, t_now, steps


class _Call(nn.Module):
    """Wraps any callable ``f(t, x)`` as a module (for the eager solver)."""

    def __init__(self, fn: Field) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, t: Tensor, x: Tensor) -> Tensor:
        return self.fn(t, x)


def _initial_step(f: Field, t0: Tensor, y0: Tensor, f0: Tensor, rtol: float, atol: float) -> float:
    """Hairer, Norsett & Wanner's starting step (as scipy's ``select_initial_step``), order 5."""
    with torch.no_grad():
        scale = atol + rtol * y0.abs()
        d0 = float((y0 / scale).square().mean().sqrt())
        d1 = float((f0 / scale).square().mean().sqrt())
        h0 = 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1
        f1 = f(t0 + h0, y0 + h0 * f0)
        d2 = float(((f1 - f0) / scale).square().mean().sqrt()) / h0
        h1 = max(1e-6, h0 * 1e-3) if max(d1, d2) <= 1e-15 else (0.01 / max(d1, d2)) ** (1 / 5)
    return min(100 * h0, h1)


def _dopri5(f: Field, x0: Tensor, t: Tensor, rtol: float, atol: float, max_steps: int,
            first_step: float | None, script: bool | None, max_abs: float | None) -> Tensor:
    f0 = _first_derivative(f, t[0], x0)
    if first_step is None:
        first_step = _initial_step(f, t[0], x0, f0, rtol, atol)
    if script is None:
        script = not _needs_grad(f, x0, t)
    done = _run_scripted(f, _Dopri5, x0, t, rtol, atol, float(first_step), max_steps, 0) if script else None
    moved = False
    time_grad = not script and (not _is_plain(t) or (t.requires_grad and torch.is_grad_enabled()))
    if done is not None:
        (out, status, t_stop, steps), moved = done
    else:
        module = f if isinstance(f, nn.Module) else _Call(f)
        start = _shift_start(f, t[0], x0) if time_grad else x0
        out, status, t_stop, steps = _Dopri5(module)(start, t.detach(), rtol, atol, float(first_step), max_steps, -1)
    if status == 1:
        raise RuntimeError(f"dopri5 took more than max_steps={max_steps} steps before t={t_stop:.6g} "
                           f"(integrating to {float(t[-1]):.6g}); the problem may be stiff or the tolerances "
                           "too tight; raise max_steps or loosen rtol/atol")
    if status == 2:
        raise StateBlowUpError(f"dopri5: the step size collapsed at t={t_stop:.6g} (after {steps} steps, "
                               f"output step {len(out)}); the state is blowing up (NaN/inf)", len(out), t_stop)
    if time_grad:
        out = [_shift_end(f, t[k], y) for k, y in enumerate(out)]
    states = torch.stack(out)
    check_finite_states(states, t, max_abs)
    return _from_cm(states, x0.shape) if moved else states


# Gradients with respect to the output times. The adaptive solver reads ``t`` as plain floats (its step
# sizes are chosen, not differentiated), so the dependence on ``t`` is attached exactly as the flow
# depends on it: x(t_k; t_0, x_0) has d/dt_k = f(t_k, x(t_k)) and d/dt_0 = -(dx(t_k)/dx_0) f(t_0, x_0).
# Both terms are added as (t - t.detach()) * f, zero in value, so the states are bit-for-bit unchanged.
def _shift_start(f: Field, t0: Tensor, x0: Tensor) -> Tensor:
    """``x0 - (t0 - t0.detach()) f(t0, x0)``: the solve from it carries d/dt_0 = -Phi f(t0, x0)."""
    return x0 - (t0 - t0.detach()) * f(t0, x0)


def _shift_end(f: Field, tk: Tensor, xk: Tensor) -> Tensor:
    """``xk + (tk - tk.detach()) f(tk, xk)``: adds d/dt_k = f(t_k, x(t_k))."""
    return xk + (tk - tk.detach()) * f(tk, xk)


def _compiled(f, x0: Tensor, t: Tensor, sub: list[int]) -> Tensor | None:
    """The torch.compile'd RK4 loop on a uniform grid with a uniform substep count, else None."""
    from difflens.dynamics.compiled import compiled_rk4

    if not isinstance(f, nn.Module) or len(set(sub)) != 1:
        return None
    d = torch.diff(t)
    if not bool(((d - d[0]).abs() <= 1e-12 * d[0].abs()).all()):
        return None
    _first_derivative(f, t[0], x0)
    return compiled_rk4(f, x0, t, float(d[0]) / sub[0], sub[0])


# ----------------------------------------------------------------------------- public
def integrate(
    f: Field,
    x0: Tensor,
    t: Tensor,
    method: str = "rk4",
    step_size: float | None = None,
    rtol: float = 1e-7,
    atol: float = 1e-9,
    max_steps: int = 1_000_000,
    first_step: float | None = None,
    max_abs: float | None = 1e8,
    script: bool | None = None,
    compile: bool = False,
) -> Tensor:
    """Integrate ``dx/dt = f(t, x)`` from ``x0`` at ``t[0]`` and return the states at all times ``t``.

    Parameters
    ----------
    f:
        ``f(t, x) -> dx/dt`` with ``t`` a 0-d tensor and ``x`` of ``x0``'s shape
        (e.g. :class:`~difflens.dynamics.Lorenz63`).
    x0:
        Initial state(s), any shape ``(..., d)``: a batch of trajectories is a
        leading dimension, e.g. ``(B, 3)``. float32 or float64; its dtype and
        device are used throughout.
    t:
        1-D strictly increasing (or strictly decreasing: backwards in time)
        output times; ``t[0]`` is the time of ``x0``. May require gradients
        (see the module notes).
    method:
        ``"rk4"``: classic fourth-order Runge-Kutta. **It steps on the ``t``
        grid**: one RK4 step per interval ``t[i] -> t[i+1]`` unless
        ``step_size`` is given, in which case each interval is split into
        ``ceil(dt / step_size)`` equal substeps (so the steps land on every
        output time exactly). A coarse ``t`` with ``step_size=None`` is a
        coarse integration - torchdiffeq behaves the same way.
        ``"dopri5"``: adaptive Dormand-Prince 5(4) with local extrapolation,
        error control ``|err| <= atol + rtol * |x|`` (RMS over the last
        dimension, worst trajectory of the batch: one step size for all),
        outputs between steps from the 4th-order dense output.
    step_size: see ``method`` (RK4 only; ignored by dopri5).
    rtol, atol: dopri5 tolerances (defaults 1e-7, 1e-9); ground truth uses ~1e-10 in float64.
    max_steps: dopri5 gives up with ``RuntimeError`` after this many attempted steps.
    first_step: dopri5's initial step (default: chosen automatically).
    max_abs:
        States with any ``|x| > max_abs`` count as blown up (default 1e8;
        ``None``: only NaN/inf).
    script:
        Run the solver loop compiled by TorchScript (several times fewer Python
        round trips; no gradients). Default ``None``: when no gradient is
        needed and ``f`` is an ``nn.Module`` TorchScript accepts (RK4: and there
        are >= 200 steps); anything else runs eagerly. A module with a
        ``forward_cm`` method (the difflens systems) is run on component-major
        states ``(d, B)`` there, and the result is a strided view of that
        buffer; ``f.autonomous = True`` (f ignores ``t``) lets the compiled RK4
        skip the stage-time arithmetic.
    compile:
        RK4 only, no gradients, ``f`` with ``forward_cm`` and a uniform ``t``:
        run the loop compiled by ``torch.compile`` (inductor generates fused C++
        with the installed compiler; see :mod:`difflens.dynamics.compiled`).
        The first call per field type, state shape, dtype and substep count
        compiles (7-10 s on an idle core, minutes on a busy one); later calls
        are ~3.5x faster than the TorchScript loop on 1,024 Lorenz-63
        trajectories. Off by default because the compile costs more than one
        such run saves. Anything else falls back to ``script``.

    Returns
    -------
    Tensor ``(len(t), *x0.shape)``; ``[0]`` is ``x0``.

    Raises
    ------
    StateBlowUpError (a FloatingPointError) naming the first step and time with
    NaN/inf or ``|x| > max_abs``; ValueError/TypeError for malformed inputs,
    including an ``f`` whose first output is not a tensor of ``x0``'s shape
    (checked once, before any step).

    Examples
    --------
    Exponential decay against its exact solution, then a batch of 4 Lorenz-63
    trajectories with the adaptive solver:

    >>> import torch
    >>> from difflens.dynamics import Lorenz63, integrate
    >>> t = torch.linspace(0.0, 1.0, 101, dtype=torch.float64)
    >>> x0 = torch.tensor([1.0, 2.0], dtype=torch.float64)
    >>> xs = integrate(lambda t, x: -x, x0, t)  # RK4, one step per interval of t
    >>> xs.shape, bool(torch.allclose(xs[-1], x0 * torch.exp(-t[-1]), atol=1e-9))
    (torch.Size([101, 2]), True)
    >>> integrate(Lorenz63(), torch.ones(4, 3, dtype=torch.float64), t, method="dopri5").shape
    torch.Size([101, 4, 3])
    """
    x0, t = _check_inputs(f, x0, t, method)
    if t.numel() == 1:
        return x0.unsqueeze(0)
    if bool(t[1] < t[0]):  # backwards in time: s = -t, dx/ds = -f(-s, x)
        fwd = f
        states = integrate(lambda s, x: -fwd(-s, x), x0, -t, method, step_size, rtol, atol, max_steps,
                           first_step, max_abs, script=False)
        return states
    if method == "rk4":
        sub = _substeps(t, step_size)
        if compile and not _needs_grad(f, x0, t):
            done = _compiled(f, x0, t, sub)
            if done is not None:
                check_finite_states(done, t, max_abs)
                return _from_cm(done, x0.shape)
        return _rk4(f, x0, t, sub, script, max_abs)
    else:
        if not (rtol > 0 and atol >= 0):
            raise ValueError(f"need rtol > 0 and atol >= 0, got rtol={rtol}, atol={atol}")
        return _dopri5(f, x0, t, float(rtol), float(atol), int(max_steps), first_step, script, max_abs)
