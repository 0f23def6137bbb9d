"""Integrators and systems: exact solutions, scipy and torchdiffeq agreement, gradients, bad input."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from difflens.dynamics import (
    Lorenz63,
    Lorenz96,
    LorenzMonomial,
    Rossler,
    StateBlowUpError,
    integrate,
    rk4_step,
)





class Linear(nn.Module):
    """dx/dt = A x (exact solution expm(A t) x0)."""

    def __init__(self, A):
        super().__init__()
        self.A = nn.Parameter(torch.as_tensor(A, dtype=torch.float64))

    def forward(self, t, x):
        return x @ self.A.T


A = [[-0.3, 1.0], [-1.0, -0.3]]


def exact_linear(x0, t):
    At = torch.tensor(A, dtype=torch.float64)
    return torch.stack([x0 @ torch.linalg.matrix_exp(At * s).T for s in t])


def test_rk4_is_fourth_order_on_linear_ode():
    f = Linear(A)
    x0 = torch.tensor([[1.0, 0.5], [-0.2, 2.0]], dtype=torch.float64)
    t = torch.tensor([0.0, 2.0], dtype=torch.float64)
    truth = exact_linear(x0, t)[-1]
    with torch.no_grad():
        errs = [float((integrate(f, x0, t, step_size=h)[-1] - truth).abs().max()) for h in (0.2, 0.1, 0.05)]
    orders = [math.log2(errs[i] / errs[i + 1]) for i in range(2)]
    assert all(3.8 < o < 4.2 for o in orders), orders


def test_rk4_steps_on_the_t_grid_unless_step_size():
    f = Linear(A)
    x0 = torch.tensor([1.0, 0.0], dtype=torch.float64)
    t = torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64)
    coarse = integrate(f, x0, t)
    manual = rk4_step(f, t[1], rk4_step(f, t[0], x0, 1.0), 1.0)
    assert torch.allclose(coarse[-1], manual, atol=1e-14)
    fine = integrate(f, x0, t, step_size=0.01)
    exact = exact_linear(x0, t)
    assert (fine - exact).abs().max() < 1e-9 < (coarse - exact).abs().max()


def test_scripted_rk4_equals_eager_and_backwards_in_time():
    f = Lorenz63()
    x0 = torch.tensor([[1.0, 1.0, 20.0], [-5.0, 2.0, 30.0]], dtype=torch.float64)
    t = torch.arange(301, dtype=torch.float64) * 0.01
    with torch.no_grad():
        a = integrate(f, x0, t, script=True)  # compiled, component-major layout
        b = integrate(f, x0, t, script=False)
        c = integrate(LorenzMonomial(), x0, t, script=True)  # compiled, row-major (no forward_cm)
    assert a.shape == b.shape == c.shape == (301, 2, 3)
    # same arithmetic up to the order of a few float64 roundings, amplified by 3 time units of chaos
    assert torch.allclose(a, b, atol=1e-8) and torch.allclose(c, b, atol=1e-8)
    back = integrate(Linear(A), torch.tensor([1.0, 0.5], dtype=torch.float64),
                     torch.tensor([1.0, 0.0], dtype=torch.float64), step_size=0.01)
    assert torch.allclose(back[-1], exact_linear(torch.tensor([1.0, 0.5], dtype=torch.float64),
                                                 torch.tensor([-1.0], dtype=torch.float64))[0], atol=1e-9)


def test_compiled_path_sees_parameter_changes():
    f = Lorenz63()
    x0 = torch.tensor([[1.0, 1.0, 20.0]], dtype=torch.float64)
    t = torch.arange(301, dtype=torch.float64) * 0.01
    with torch.no_grad():
        a = integrate(f, x0, t)
        f.rho.fill_(20.0)  # in place: the frozen, cached loop must be rebuilt
        b = integrate(f, x0, t)
        f.sigma.data = torch.tensor(9.0, dtype=torch.float64)  # replaced storage
        c = integrate(f, x0, t)
        ref = integrate(f, x0, t, script=False)
    assert not torch.allclose(a, b) and not torch.allclose(b, c)
    assert torch.allclose(c, ref, atol=1e-8)


def test_dopri5_matches_scipy_solve_ivp():
    from scipy.integrate import solve_ivp

    f = Lorenz63()
    x0 = torch.tensor([1.0, 1.0, 20.0], dtype=torch.float64)
    t = torch.linspace(0, 2, 41, dtype=torch.float64)
    with torch.no_grad():
        ours = integrate(f, x0, t, method="dopri5", rtol=1e-10, atol=1e-10)
        eager = integrate(f, x0, t, method="dopri5", rtol=1e-10, atol=1e-10, script=False)
    assert torch.allclose(ours, eager, atol=1e-12)

    def rhs(_, x):
        return [10 * (x[1] - x[0]), x[0] * (28 - x[2]) - x[1], x[0] * x[1] - 8 / 3 * x[2]]
    ref = solve_ivp(rhs, (0, 2), x0.numpy(), t_eval=t.numpy(), method="DOP853", rtol=1e-13, atol=1e-13).y.T
    assert np.abs(ours.numpy() - ref).max() < 1e-7
    loose = integrate(f, x0, t, method="dopri5", rtol=1e-6, atol=1e-6).detach()
    assert 1e-7 < np.abs(loose.numpy() - ref).max() < 1e-2  # the tolerance is honoured, not exceeded


def test_dopri5_dense_output_on_linear_ode():
    f = Linear(A)
    x0 = torch.tensor([[1.0, 0.5]], dtype=torch.float64)
    t = torch.linspace(0, 3, 301, dtype=torch.float64)  # many outputs per adaptive step
    out = integrate(f, x0, t, method="dopri5", rtol=1e-9, atol=1e-12)
    assert (out - exact_linear(x0, t)).abs().max() < 1e-8


def test_agrees_with_torchdiffeq_rk4_on_the_same_grid():
    torchdiffeq = pytest.importorskip("torchdiffeq")
    f = Lorenz63()
    x0 = torch.tensor([[1.0, 1.0, 20.0], [3.0, -2.0, 25.0]], dtype=torch.float64)
    t = torch.arange(201, dtype=torch.float64) * 0.01
    with torch.no_grad():
        ours = integrate(f, x0, t, method="rk4")
        theirs = torchdiffeq.odeint(f, x0, t, method="rk4", options={"perturb": False})
    # torchdiffeq's "rk4" is the 3/8-rule variant: same order, so the two differ at O(h^5) per step
    assert (ours - theirs).abs().max() < 1e-4
    ours_fine = integrate(f, x0, t[:51], step_size=0.001)
    assert (ours[:51] - ours_fine).abs().max() < (theirs[:51] - ours_fine).abs().max() * 10


def test_gradcheck_float64_through_both_methods():
    t = torch.linspace(0, 0.2, 5, dtype=torch.float64)
    x0 = torch.tensor([[1.0, 2.0, 20.0]], dtype=torch.float64, requires_grad=True)
    sigma = torch.tensor(10.0, dtype=torch.float64, requires_grad=True)
    for method, tol in (("rk4", 1e-6), ("dopri5", 1e-3)):
        def fn(x, s, method=method):
            def field(_, y):
                X, Y, Z = y.unbind(-1)
                return torch.stack((s * (Y - X), X * (28 - Z) - Y, X * Y - 8 / 3 * Z), -1)
            return integrate(field, x, t, method=method, step_size=0.02, rtol=1e-10, atol=1e-10)
        # dopri5's step sizes depend (undifferentiated) on the state: agreement to O(tolerance)
        assert torch.autograd.gradcheck(fn, (x0, sigma), eps=1e-6, atol=tol, rtol=tol)


def test_gradient_reaches_module_parameters():
    f = Lorenz63()
    x0 = torch.tensor([1.0, 2.0, 20.0], dtype=torch.float64)
    out = integrate(f, x0, torch.linspace(0, 0.5, 11, dtype=torch.float64))
    out[-1].sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad) for p in f.parameters())


@pytest.mark.parametrize("system,d", [(Lorenz63(), 3), (LorenzMonomial(), 3), (Rossler(), 3),
                                      (Lorenz96(N=6), 6)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shapes_batching_dtypes(system, d, dtype):
    x0 = torch.randn(4, 2, d, generator=torch.Generator().manual_seed(0), dtype=dtype) + 1.0
    t = torch.linspace(0, 0.1, 6)
    for method in ("rk4", "dopri5"):
        out = integrate(system, x0, t, method=method)
        assert out.shape == (6, 4, 2, d) and out.dtype == dtype
        one = integrate(system, x0[1, 0], t, method="rk4")
        if method == "rk4":
            assert torch.allclose(out[:, 1, 0], one, atol=1e-5 if dtype == torch.float32 else 1e-12)


def test_monomial_form_equals_lorenz63():
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 10
    assert torch.allclose(LorenzMonomial()(0, x), Lorenz63()(0, x), atol=1e-12)
    assert LorenzMonomial(sigma=9.0, rho=27.0, beta=2.5).sigma_rho_beta() == (9.0, 27.0, 2.5)


def test_blow_up_names_the_step():
    class Explode(nn.Module):
        def forward(self, t, x):
            return x * x

    t = torch.arange(0, 2.0, 0.1, dtype=torch.float64)
    with pytest.raises(StateBlowUpError, match=r"step (\d+)") as info:
        integrate(Explode(), torch.tensor([2.0], dtype=torch.float64), t)
    # x' = x^2 from 2 blows up at t = 0.5
    assert 4 <= info.value.step <= 8 and info.value.time == pytest.approx(float(t[info.value.step]))
    with pytest.raises(StateBlowUpError):
        integrate(Explode(), torch.tensor([2.0], dtype=torch.float64), t, method="dopri5")


@pytest.mark.parametrize("kwargs,err,msg", [
    (dict(x0=torch.tensor([1, 2, 3])), TypeError, "floating-point"),
    (dict(x0=torch.tensor([1.0, float("nan"), 3.0])), ValueError, "NaN"),
    (dict(t=torch.tensor([0.0, 0.2, 0.1])), ValueError, "strictly increasing"),
    (dict(t=torch.zeros(2, 2)), ValueError, "1-D"),
    (dict(method="euler"), ValueError, "method"),
    (dict(step_size=-1.0), ValueError, "step_size"),
    (dict(x0=torch.ones(4)), ValueError, r"\(\.\.\., 3\)"),
])
def test_bad_input(kwargs, err, msg):
    args = dict(x0=torch.ones(3), t=torch.linspace(0, 1, 3))
    args.update(kwargs)
    with pytest.raises(err, match=msg):
        integrate(Lorenz63(), args["x0"], args["t"], method=kwargs.get("method", "rk4"),
                  step_size=kwargs.get("step_size"))


# ---------------------------------------------------------------- f's output shape, time gradients
class _Doubling(nn.Module):
    def forward(self, t, x):
        return torch.cat((x, x))  # twice the state: broadcasting would grow the state at every stage


class _Scalar(nn.Module):
    def forward(self, t, x):
        return x.sum().reshape(1)  # a (1,) derivative, silently broadcast before


@pytest.mark.parametrize("field,shape", [(_Doubling(), r"\[2, 3\]"), (_Scalar(), r"\[1\]")])
@pytest.mark.parametrize("kwargs", [dict(method="rk4", script=False), dict(method="rk4", script=True),
                                    dict(method="rk4", step_size=0.01),
                                    dict(method="dopri5"), dict(method="dopri5", first_step=0.01),
                                    dict(method="dopri5", script=False), dict(method="rk4", backwards=True)])
def test_derivative_of_another_shape_is_named(field, shape, kwargs):
    kwargs = dict(kwargs)
    t = torch.linspace(0, 0.02, 2, dtype=torch.float64)
    if kwargs.pop("backwards", False):
        t = t.flip(0)
    x0 = torch.ones(1, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match=shape + r".*state of shape \[1, 3\]"):
        integrate(field, x0, t, **kwargs)
    with pytest.raises(ValueError, match=shape):  # a plain function, with gradients wanted
        integrate(lambda s, x: field(s, x), x0.requires_grad_(), t, **kwargs)


def test_derivative_that_is_not_a_tensor_is_named():
    with pytest.raises(TypeError, match="must return a torch.Tensor"):
        integrate(lambda t, x: 1.0, torch.ones(3), torch.linspace(0, 1, 3))
    with pytest.raises(TypeError, match="must return a torch.Tensor"):
        integrate(lambda t, x: [0.0] * 3, torch.ones(3), torch.linspace(0, 1, 3), method="dopri5")


class _Forced(nn.Module):
    """A non-autonomous linear field: dx/dt = A x + sin(t)."""

    def __init__(self):
        super().__init__()
        self.A = nn.Parameter(torch.tensor(A, dtype=torch.float64))

    def forward(self, t, x):
        return x @ self.A.T + torch.sin(t)


def _time_gradient(f, x0, times, w, **kwargs):
    t = times.clone().requires_grad_()
    (g,) = torch.autograd.grad((integrate(f, x0, t, **kwargs) * w).sum(), t)
    return g


@pytest.mark.parametrize("times", [[0.1, 0.7, 1.3, 2.0],  # outputs between steps (dense output) and at the end
                                   [2.0, 1.1, 0.3]])  # backwards in time
def test_dopri5_time_gradients_match_rk4_finite_differences_and_torchdiffeq(times):
    torchdiffeq = pytest.importorskip("torchdiffeq")
    f = _Forced()
    x0 = torch.tensor([[1.0, 0.5], [-0.3, 2.0]], dtype=torch.float64)
    t = torch.tensor(times, dtype=torch.float64)
    w = torch.arange(1.0, t.numel() * 4 + 1, dtype=torch.float64).reshape(t.numel(), 2, 2)
    ours = _time_gradient(f, x0, t, w, method="dopri5", rtol=1e-10, atol=1e-12)
    rk4 = _time_gradient(f, x0, t, w, method="rk4", step_size=1e-3)  # exact for the discrete RK4 solve
    assert ours.abs().min() > 0.1  # every time matters (t[0] included)
    assert torch.allclose(ours, rk4, rtol=1e-7, atol=1e-9)

    def loss(tt):
        with torch.no_grad():
            return float((integrate(f, x0, tt, method="dopri5", rtol=1e-12, atol=1e-14) * w).sum())
    eps = 1e-4
    fd = torch.tensor([(loss(t + eps * e) - loss(t - eps * e)) / (2 * eps)
                       for e in torch.eye(t.numel(), dtype=torch.float64)], dtype=torch.float64)
    assert torch.allclose(ours, fd, rtol=1e-5, atol=1e-6)
    if times[1] > times[0]:
        tt = t.clone().requires_grad_()
        (theirs,) = torch.autograd.grad((torchdiffeq.odeint(f, x0, tt, method="dopri5", rtol=1e-10,
                                                            atol=1e-12) * w).sum(), tt)
        assert torch.allclose(ours, theirs, rtol=1e-6, atol=1e-8)


def test_time_gradients_leave_the_states_and_other_gradients_unchanged():
    f = Lorenz63()
    x0 = torch.tensor([[1.0, 2.0, 20.0], [-4.0, 1.0, 25.0]], dtype=torch.float64, requires_grad=True)
    t = torch.linspace(0, 0.5, 7, dtype=torch.float64)
    plain = integrate(f, x0, t, method="dopri5", rtol=1e-9, atol=1e-9)
    (gx_plain,) = torch.autograd.grad(plain.sum(), x0)
    tg = t.clone().requires_grad_()
    timed = integrate(f, x0, tg, method="dopri5", rtol=1e-9, atol=1e-9)
    assert torch.equal(plain, timed)  # bit for bit
    gx, gt = torch.autograd.grad(timed.sum(), (x0, tg))
    assert torch.equal(gx, gx_plain)
    assert torch.allclose(gt, _time_gradient(f, x0.detach(), t, torch.ones_like(plain), method="rk4",
                                             step_size=1e-3), rtol=1e-6, atol=1e-6)


def test_forward_mode_time_derivatives_match_reverse_mode():
    f = _Forced().requires_grad_(False)
    x0 = torch.tensor([[1.0, 0.5]], dtype=torch.float64)
    t = torch.tensor([0.1, 0.7, 2.0], dtype=torch.float64)
    for kwargs in (dict(method="rk4", step_size=1e-2), dict(method="dopri5", rtol=1e-10, atol=1e-12)):
        def loss(tt, kwargs=kwargs):
            return integrate(f, x0, tt, **kwargs).sum()
        reverse = torch.func.grad(loss)(t)
        for i in range(3):
            e = torch.eye(3, dtype=torch.float64)[i]
            forward = torch.func.jvp(loss, (t,), (e,))[1]
            assert torch.allclose(forward, reverse[i], rtol=1e-10, atol=1e-12), (kwargs, i)


# ----------------------------------------------------------------------------- compile=True (torch.compile)
class ForcedCM(nn.Module):
    """A non-autonomous 2-D field with a component-major form: dx/dt = -k x + (sin t, cos t)."""

    def __init__(self):
        super().__init__()
        self.k = nn.Parameter(torch.tensor(0.5, dtype=torch.float64))

    def forward(self, t, x):
        return torch.stack((-self.k * x[..., 0] + torch.sin(t), -self.k * x[..., 1] + torch.cos(t)), -1)

    def forward_cm(self, t, x):
        a, b = x.unbind(0)
        return torch.stack((-self.k * a + torch.sin(t), -self.k * b + torch.cos(t)))


def _fold_only(counts):
    """A torch.compile backend that applies the stack/unbind fold and runs the graph as Python (no C++)."""
    from difflens.dynamics.compiled import fold_stack_unbind

    def backend(gm, example_inputs):
        counts.append(fold_stack_unbind(gm))
        return gm.forward
    return backend


def test_compiled_rk4_chunks_equal_the_eager_rk4(monkeypatch):
    # the compiled driver (chunks of 2 steps, the later ones with guards skipped, an eager remainder) with
    # the folded graph run as Python: row layout (Lorenz63, the non-autonomous field, float32) and the
    # (d, B) layout of a 40-component state (Lorenz96, whose roll is not folded)
    from difflens.dynamics import compiled

    counts = []
    monkeypatch.setattr(compiled, "_CHUNKS", {})
    monkeypatch.setattr(compiled, "_inductor_on_rows", _fold_only(counts))
    g = torch.Generator().manual_seed(3)
    t = torch.arange(8, dtype=torch.float64) * 0.01 + 0.3  # 7 intervals: 3 chunks of 2 and 1 eager step
    cases = [(Lorenz63(), torch.randn(5, 3, generator=g, dtype=torch.float64) + 20, 1e-12),
             (ForcedCM(), torch.randn(4, 2, generator=g, dtype=torch.float64), 1e-14),
             (Lorenz63(dtype=torch.float32), torch.randn(5, 3, generator=g) + 20, 1e-4),
             (Lorenz96(), torch.randn(2, 40, generator=g, dtype=torch.float64) + 8, 1e-12)]
    for f, x0, tol in cases:
        tt = t.to(x0.dtype)
        with torch.no_grad():
            out = compiled.compiled_rk4(f, x0, tt, 0.005, 2, unroll=4)  # 2 substeps of 0.005 per output
            ref = integrate(f, x0, tt, step_size=0.005, script=False)
        ours = out.movedim(1, -1).reshape(ref.shape)
        assert float((ours - ref).abs().max()) < tol, type(f).__name__
    assert counts[0] == 2 * 2 * 4 * 2  # Lorenz63: 2 steps x 2 substeps x 4 stages, 2 pairs each, all folded


def test_fold_stack_unbind_leaves_dtype_promotion_and_in_place_writes():
    counts = []

    def fn(a, b, out):
        x, _ = torch.stack([a, b]).unbind(0)  # float32 and float64: stack promotes a, not foldable
        u, v = torch.stack([b, b * 2]).unbind(0)  # foldable
        out.copy_(u + v)  # an in-place write whose result is unused must survive the fold
        return x

    c = torch.compile(fn, backend=_fold_only(counts), fullgraph=True)
    a, b, out = torch.ones(3), torch.full((3,), 2.0, dtype=torch.float64), torch.zeros(3, dtype=torch.float64)
    x = c(a, b, out)
    assert counts == [1] and x.dtype == torch.float64 and torch.equal(x, a.double())
    assert torch.equal(out, torch.full((3,), 6.0, dtype=torch.float64))


def test_compile_true_runs_inductor_and_keeps_gradients_on_the_eager_path():
    pytest.importorskip("torch._inductor")
    from difflens.dynamics.compiled import compiled_rk4

    f = Lorenz63()
    x0 = torch.tensor([[1.0, 1.0, 20.0], [-5.0, 2.0, 30.0]], dtype=torch.float64)
    t = torch.arange(6, dtype=torch.float64) * 0.01
    with torch.no_grad():
        out = compiled_rk4(f, x0, t, 0.01, 1, unroll=2)  # one small graph: a few seconds of gcc
        ref = integrate(f, x0, t, script=False)
    assert out is not None and float((out.movedim(1, -1) - ref).abs().max()) < 1e-12
    x = x0.clone().requires_grad_(True)  # gradients wanted: compile=True falls back to the eager loop
    integrate(f, x, t, compile=True)[-1].sum().backward()
    assert x.grad is not None and bool(torch.isfinite(x.grad).all())


def test_compile_true_falls_back_with_a_warning_when_the_compiler_fails(monkeypatch):
    from difflens.dynamics import compiled

    def broken(gm, example_inputs):
        raise OSError("no C++ compiler found")

    monkeypatch.setattr(compiled, "_CHUNKS", {})
    monkeypatch.setattr(compiled, "_inductor_on_rows", broken)
    f = Lorenz63()
    x0 = torch.tensor([[1.0, 1.0, 20.0]], dtype=torch.float64)
    t = torch.arange(31, dtype=torch.float64) * 0.01
    with torch.no_grad(), pytest.warns(RuntimeWarning, match="torch.compile failed.*no C\\+\\+ compiler"):
        ours = integrate(f, x0, t, compile=True)
    with torch.no_grad():
        ref = integrate(f, x0, t, script=False)
    assert torch.allclose(ours, ref, atol=1e-10)
    assert compiled._CHUNKS == {}  # not cached: a later call tries again
