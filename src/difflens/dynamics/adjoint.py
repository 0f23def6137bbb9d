"""``odeint_adjoint``: gradients by the adjoint method, in memory independent of the number of steps.

The forward solve keeps no graph. The backward pass integrates, from ``t[-1]``
back to ``t[0]`` and interval by interval, the augmented state
``(a_t, y, a_y, a_theta)``:

    dy/dt = f,   da_y/dt = -a_y . df/dy,   da_theta/dt = -a_y . df/dtheta,   da_t/dt = -a_y . df/dt,

adding ``dL/dy(t_k)`` to ``a_y`` at each output time (Pontryagin; Chen et al.
2018). Each right-hand side evaluation builds and frees one small graph (one
vector-Jacobian product), so memory does not grow with the number of steps.
``dL/dt_k = dL/dy_k . f(t_k, y_k)`` and ``dL/dt_0 = a_t(t_0)``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from difflens.dynamics.odeint import prepare, reroute_event
from difflens.dynamics.solvers.problem import CALLBACKS
from difflens.dynamics.solvers.state import FlatState, flat_tolerance

__all__ = ["odeint_adjoint"]


def _rms(x: Tensor) -> Tensor:
    return x.pow(2).mean().sqrt() if x.numel() else x.new_zeros(())


class _AdjointCallbacks:
    """The ``callback_*_adjoint`` methods of ``func`` under the plain callback names."""

    def __init__(self, func) -> None:
        for name in CALLBACKS:
            fn = getattr(func, name + "_adjoint", None)
            if callable(fn):
                setattr(self, name, fn)


class _Aug:
    """Layout of the augmented state ``(a_t (), y (N,), a_y (N,), a_theta_1, ...)`` as one flat vector."""

    def __init__(self, n: int, params: tuple[Tensor, ...]) -> None:
        self.sizes = [1, n, n] + [p.numel() for p in params]
        self.offsets = [0]
        for s in self.sizes:
            self.offsets.append(self.offsets[-1] + s)
        self.shapes = [()] + [(n,), (n,)] + [p.shape for p in params]

    def split(self, x: Tensor) -> list[Tensor]:
        return [x[a:b].reshape(shape) for a, b, shape in zip(self.offsets[:-1], self.offsets[1:], self.shapes)]


class _OdeintAdjoint(torch.autograd.Function):
    @staticmethod
    def forward(ctx, prep, y0, t, adjoint, *params):
        y0_flat = y0.reshape(-1)
        with torch.no_grad():
            ys = prep.solve(y0_flat)
        ctx.prep, ctx.adjoint = prep, adjoint
        ctx.adjoint_options = adjoint["options"]
        ctx.save_for_backward(t, ys, *params)
        return ys.reshape(ys.shape[0], *y0.shape)

    @staticmethod
    def backward(ctx, grad_ys):
        t, ys, *params = ctx.saved_tensors
        prep, adj = ctx.prep, ctx.adjoint
        y0_shape = grad_ys.shape[1:]
        grad_ys = grad_ys.reshape(grad_ys.shape[0], -1)
        st = prep.state
        params = tuple(params)
        aug = _Aug(ys.shape[1], params)
        t_needs = ctx.needs_input_grad[2]
        f_flat, sign, t_dtype = prep.flat_func(), prep.sign, prep.t_dtype

        def F(tt: Tensor, y: Tensor) -> Tensor:  # dy/dt in the user's time
            return f_flat(tt * sign, y) * sign

        def aug_f(tt: Tensor, x: Tensor) -> Tensor:
            _, y, a, *_ = aug.split(x)
            with torch.enable_grad():
                t_ = tt.detach().to(t_dtype).requires_grad_(t_needs)
                y_ = y.detach().requires_grad_(True)
                fy = F(t_, y_)
                inputs = (y_,) + params + ((t_,) if t_needs else ())
                grads = (torch.autograd.grad(fy, inputs, -a, allow_unused=True) if fy.requires_grad
                         else (None,) * len(inputs))
            g_y = torch.zeros_like(y) if grads[0] is None else grads[0]
            g_p = [(torch.zeros_like(p) if g is None else g).reshape(-1).to(x.dtype)
                   for g, p in zip(grads[1:1 + len(params)], params)]
            g_t = grads[-1] if t_needs and grads[-1] is not None else x.new_zeros(())
            return torch.cat([g_t.reshape(1).to(x.dtype), fy.detach().to(x.dtype), g_y.to(x.dtype)] + g_p)

        def norm(x: Tensor) -> Tensor:  # read at call time: the user may replace it on grad_fn
            parts = aug.split(x)
            fn = ctx.adjoint_options["norm"]
            if adj["user_norm"] and st.is_tuple:
                parts = [parts[0], *[p.reshape(s) for p, s in zip(st.split(parts[1]), st.shapes)],
                         *[p.reshape(s) for p, s in zip(st.split(parts[2]), st.shapes)], *parts[3:]]
            elif st.plain:
                parts = [parts[0], parts[1].reshape(st.shapes[0]), parts[2].reshape(st.shapes[0]), *parts[3:]]
            return fn(tuple(parts))

        rtol = _aug_tol(adj["rtol"], aug)
        atol = _aug_tol(adj["atol"], aug)
        options = {k: v for k, v in adj["options"].items() if k != "norm"}
        callbacks = _AdjointCallbacks(prep.func)
        a_t = ys.new_zeros(())
        a_y = grad_ys[-1].clone()
        a_p = [torch.zeros(p.numel(), dtype=ys.dtype, device=ys.device) for p in params]
        t_grads = torch.zeros_like(t) if t_needs else None
        for k in range(ys.shape[0] - 1, 0, -1):
            if t_needs:
                with torch.no_grad():
                    dldt = (F(t[k].detach().to(t_dtype), ys[k]) * grad_ys[k]).sum()
                t_grads[k] = dldt
                a_t = a_t - dldt
            x = torch.cat([a_t.reshape(1), ys[k], a_y] + a_p)
            seg = torch.stack([t[k].detach(), t[k - 1].detach()]).to(ys.dtype)
            p = prepare(aug_f, x, seg, rtol, atol, adj["method"], options)
            p.norm = norm
            end = p.solve(x, callbacks=callbacks)[-1]
            if not bool(torch.isfinite(end).all()) and bool(torch.isfinite(x).all()):
                raise FloatingPointError(
                    f"odeint_adjoint: the backward pass became non-finite integrating from t={float(t[k]):.6g} back "
                    f"to t={float(t[k - 1]):.6g}. The adjoint re-integrates the state backwards in time, which is "
                    "unstable for dissipative or chaotic systems (Lorenz-63 contracts volume at rate ~13.7, so "
                    "backwards it expands at that rate): give more output times in t (the state is reset to the "
                    "forward solution at each one), or use odeint (backpropagation through the steps)")
            parts = aug.split(end)
            a_t, a_y, a_p = parts[0], parts[2] + grad_ys[k - 1], [q.reshape(-1) for q in parts[3:]]
        if t_needs:
            t_grads[0] = a_t
        grads_p = [g.reshape(p.shape).to(p.dtype) for g, p in zip(a_p, params)]
        return (None, a_y.reshape(y0_shape), t_grads, None, *grads_p)


def _aug_tol(tol, aug: _Aug):
    if isinstance(tol, float):
        return tol
    lo = float(tol.min())
    return torch.cat([tol.new_full((1,), lo), tol, tol] + [tol.new_full((s,), lo) for s in aug.sizes[3:]])


def odeint_adjoint(func: Callable, y0, t: Tensor, *, rtol: float | Tensor = 1e-7, atol: float | Tensor = 1e-9,
                   method: str | None = None, options: dict | None = None, event_fn: Callable | None = None,
                   adjoint_rtol: float | Tensor | None = None, adjoint_atol: float | Tensor | None = None,
                   adjoint_method: str | None = None, adjoint_options: dict | None = None,
                   adjoint_params=None):
    """:func:`~difflens.dynamics.odeint` whose gradients come from the adjoint ODE (torchdiffeq's signature).

    Parameters
    ----------
    func, y0, t, rtol, atol, method, options, event_fn: as :func:`~difflens.dynamics.odeint`.
    adjoint_rtol, adjoint_atol, adjoint_method, adjoint_options:
        For the backward solve; default to the forward ones (``options``
        without ``norm``). ``adjoint_options["norm"] = "seminorm"`` leaves the
        parameter adjoints out of the error norm (fewer steps; Kidger et al. 2021).
    adjoint_params:
        The tensors to differentiate besides ``y0`` and ``t`` (default
        ``tuple(func.parameters())``; required when ``func`` is not an
        ``nn.Module``).

    Returns
    -------
    As :func:`~difflens.dynamics.odeint`. Memory of the backward pass does not
    grow with the number of solver steps (only with ``len(t)``).

    Raises
    ------
    FloatingPointError
        In the backward pass, when the backward integration over one interval of
        ``t`` becomes non-finite from finite values. The state is integrated
        backwards in time, which dissipative and chaotic systems amplify: on
        Lorenz-63 with RK4 steps of 0.001, ``t = [0, 10]`` overflows (torchdiffeq
        returns NaN there), while output times every 0.1 give the gradient of
        backpropagation to 2e-9 (``benchmarks/integrate.py --parts adjoint``).

    Examples
    --------
    >>> import torch
    >>> k = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    >>> y = odeint_adjoint(lambda t, y: -k * y, torch.tensor(1.0, dtype=torch.float64),
    ...                    torch.tensor([0.0, 2.0], dtype=torch.float64), adjoint_params=(k,),
    ...                    rtol=1e-10, atol=1e-12)
    >>> y[-1].backward()
    >>> round(float(k.grad), 6)  # d/dk exp(-2k) = -2 exp(-1)
    -0.735759
    """
    if adjoint_params is None:
        if not isinstance(func, nn.Module):
            raise ValueError("odeint_adjoint: func is not an nn.Module; pass adjoint_params (the tensors to "
                             "differentiate, () for none)")
        adjoint_params = tuple(func.parameters())
    adjoint_params = tuple(p for p in adjoint_params if isinstance(p, Tensor) and p.requires_grad)
    options = dict(options or {})
    if adjoint_options is None:
        adjoint_options = {k: v for k, v in options.items() if k != "norm"}
    else:
        adjoint_options = dict(adjoint_options)
    seminorm = isinstance(adjoint_options.get("norm"), str) and adjoint_options["norm"] == "seminorm"
    user_norm = callable(adjoint_options.get("norm"))
    if not (user_norm or seminorm or adjoint_options.get("norm") is None):
        raise ValueError(f"adjoint_options norm must be callable or 'seminorm', got {adjoint_options['norm']!r}")
    if event_fn is not None:
        from difflens.dynamics.odeint import odeint

        with torch.no_grad():
            event_t, _ = odeint(func, y0, t, rtol=rtol, atol=atol, method=method, options=options,
                                event_fn=event_fn)
        tt = torch.stack([t.reshape(-1)[0], event_t.to(t.dtype)])
        sol = odeint_adjoint(func, y0, tt, rtol=rtol, atol=atol, method=method, options=options,
                             adjoint_rtol=adjoint_rtol, adjoint_atol=adjoint_atol, adjoint_method=adjoint_method,
                             adjoint_options=adjoint_options,
                             adjoint_params=adjoint_params)
        prep = prepare(func, y0, tt, rtol, atol, method, options)
        last = prep.state.flatten(tuple(s[-1] for s in sol) if prep.state.is_tuple else sol[-1])
        prep.event_fn = event_fn
        new_t, last = reroute_event(prep, func, event_t.to(t.dtype), last)
        first = prep.state.flatten(y0)
        return new_t, prep.state.unflatten(torch.stack([first, last]), (2,))
    prep = prepare(func, y0, t, rtol, atol, method, options)
    st = prep.state
    adjoint = {
        "rtol": flat_tolerance(rtol if adjoint_rtol is None else adjoint_rtol, "adjoint_rtol", st),
        "atol": flat_tolerance(atol if adjoint_atol is None else adjoint_atol, "adjoint_atol", st),
        "method": prep.method if adjoint_method is None else adjoint_method,
        "options": adjoint_options, "user_norm": user_norm,
    }
    if not user_norm:
        adjoint_options["norm"] = _DefaultAdjointNorm(st, seminorm)
    if st.plain:  # the output comes straight from the autograd node (torchdiffeq's tests read its grad_fn)
        return _OdeintAdjoint.apply(prep, y0, prep.t, adjoint, *adjoint_params)
    ys = _OdeintAdjoint.apply(prep, st.flatten(y0), prep.t, adjoint, *adjoint_params)
    return st.unflatten(ys, (ys.shape[0],))


class _DefaultAdjointNorm:
    """The default norm of the augmented state ``(a_t, y, a_y, *a_theta)``: the largest of
    ``|a_t|``, the state's norm of ``y`` and of ``a_y``, and the RMS of each ``a_theta``
    (left out with ``seminorm``)."""

    def __init__(self, st: FlatState, seminorm: bool) -> None:
        self.st, self.seminorm = st, seminorm

    def __call__(self, parts) -> Tensor:
        t, y, a, *ps = parts
        vals = [t.abs().reshape(()), self.st.mixed_norm(y.reshape(-1)), self.st.mixed_norm(a.reshape(-1))]
        if not self.seminorm:
            vals += [_rms(p) for p in ps]
        return torch.stack([v.to(y.dtype) for v in vals]).max()
