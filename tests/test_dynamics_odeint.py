"""difflens.dynamics.odeint / odeint_event / odeint_adjoint: torchdiffeq's conventions, exact solutions,
orders of the tableaux, events, adjoint gradients against backpropagation, stiffness, bad input."""

import math
import warnings

import pytest
import torch
from torch import nn

from difflens.dynamics import Lorenz63, StiffnessWarning, integrate, odeint, odeint_adjoint, odeint_event
from difflens.dynamics.solvers import Problem
from difflens.dynamics.solvers.fixed import FixedGridSolver
from difflens.dynamics.solvers.tableaux import EXPLICIT_ADAPTIVE, EXPLICIT_FIXED, IMPLICIT_FIXED

D = torch.float64


def T(*xs):
    return torch.tensor(xs, dtype=D)


ALL_METHODS = sorted(set(EXPLICIT_FIXED) | set(EXPLICIT_ADAPTIVE) | set(IMPLICIT_FIXED)
                     | {"explicit_adams", "implicit_adams"})
FIXED = set(EXPLICIT_FIXED) | set(IMPLICIT_FIXED) | {"explicit_adams", "implicit_adams"}


# ----------------------------------------------------------------------------- tableaux
@pytest.mark.parametrize("tab", list(EXPLICIT_FIXED.values()) + list(EXPLICIT_ADAPTIVE.values())
                         + list(IMPLICIT_FIXED.values()), ids=lambda t: t.name)
def test_each_tableau_has_its_order(tab):
    """Global error on y' = -y + sin(t) (non-autonomous, exact solution known) falls as h^order."""
    def f(t, y):  # y' = -2 t y^2, y(0) = 1: y = 1 / (1 + t^2)
        return -2 * t * y * y

    if tab.order == 8:  # beyond round-off at any resolution where the order shows; its accuracy instead
        P = Problem(f, T(1.0))
        ys = FixedGridSolver(P, tab, step_size=3.0 / 32).integrate(T(0.0, 3.0))
        assert abs(float(ys[-1][0]) - 0.1) < 1e-14
        return
    errs = []
    for n in (32, 64):
        P = Problem(f, T(1.0))
        ys = FixedGridSolver(P, tab, step_size=3.0 / n).integrate(T(0.0, 3.0))
        errs.append(abs(float(ys[-1][0]) - 0.1))
    observed = math.log2(errs[0] / errs[1])
    assert tab.order - 0.3 < observed < tab.order + 0.9, (tab.name, observed, errs)


def test_rk4_is_classic_and_matches_integrate_rk4_38_is_torchdiffeqs():
    f = Lorenz63().requires_grad_(False)
    x0 = T(1.0, 2.0, 20.0).expand(4, 3).clone()
    t = torch.arange(11, dtype=D) * 0.01
    ours = odeint(f, x0, t, method="rk4")
    assert torch.allclose(ours, integrate(f, x0, t, method="rk4", script=False), rtol=0, atol=1e-12)
    import torchdiffeq

    assert torch.allclose(odeint(f, x0, t, method="rk4_38"), torchdiffeq.odeint(f, x0, t, method="rk4"),
                          rtol=0, atol=1e-12)
    assert float((ours - odeint(f, x0, t, method="rk4_38")).abs().max()) > 1e-12


# ----------------------------------------------------------------------------- states and conventions
def test_zero_d_nd_tuple_and_complex_states():
    t = torch.linspace(0, 1, 5, dtype=D)
    y = odeint(lambda t, y: -y, T(2.0)[0], t, rtol=1e-10, atol=1e-12)
    assert y.shape == (5,) and torch.allclose(y, 2 * torch.exp(-t), atol=1e-9)
    y0 = torch.ones(2, 3, 4, dtype=D)
    assert odeint(lambda t, y: -y, y0, t).shape == (5, 2, 3, 4)
    a, b = odeint(lambda t, y: (-y[0], 2 * y[1]), (T(1.0)[0], torch.ones(2, 2, dtype=D)), t, rtol=1e-10, atol=1e-12)
    assert a.shape == (5,) and b.shape == (5, 2, 2)
    assert torch.allclose(a, torch.exp(-t), atol=1e-9) and torch.allclose(b[:, 0, 0], torch.exp(2 * t), atol=1e-8)
    z0 = torch.tensor([1.0 + 0.5j], dtype=torch.complex128)
    z = odeint(lambda t, y: 2j * y, z0, t, rtol=1e-10, atol=1e-12)
    assert z.dtype == torch.complex128
    assert torch.allclose(z[:, 0], z0 * torch.exp(2j * t.to(torch.complex128)), atol=1e-8)


def test_reverse_time_returns_to_the_start():
    f = Lorenz63()
    x0 = T(1.0, 2.0, 20.0)
    t = torch.linspace(0, 0.5, 6, dtype=D)
    fwd = odeint(f, x0, t, rtol=1e-11, atol=1e-11)
    back = odeint(f, fwd[-1], t.flip(0), rtol=1e-11, atol=1e-11)
    assert torch.allclose(back[-1], x0, atol=1e-6)
    assert torch.allclose(back.flip(0), fwd, atol=1e-6)


def test_one_time_point_returns_y0_and_float32_stays_float32():
    y0 = torch.ones(3)
    assert torch.equal(odeint(lambda t, y: y, y0, torch.tensor([0.0])), y0[None])
    assert odeint(lambda t, y: -y, y0, torch.tensor([0.0, 1.0], dtype=D)).dtype == torch.float32


def test_per_element_tolerances_are_per_element():
    f = lambda t, y: torch.stack([torch.cos(5 * t) * y[1], -torch.sin(5 * t) * y[0]])  # noqa: E731
    t = T(0.0, 3.0)
    ref = odeint(f, T(1.0, 1.0), t, rtol=1e-12, atol=1e-12)
    loose = odeint(f, T(1.0, 1.0), t, rtol=torch.tensor([1e-3, 1e-3]), atol=1e-3)
    tight = odeint(f, T(1.0, 1.0), t, rtol=torch.tensor([1e-10, 1e-10]), atol=torch.tensor([1e-10, 1e-10]))
    assert float((tight - ref).abs().max()) < 1e-7 < float((loose - ref).abs().max())
    with pytest.raises(ValueError, match="rtol has shape \\[3\\]"):
        odeint(f, T(1.0, 1.0), t, rtol=torch.ones(3) * 1e-6)
    with pytest.raises(ValueError, match="atol"):
        odeint(lambda t, y: y, (T(1.0), T(1.0, 2.0)), t, atol=torch.ones(3))


# ----------------------------------------------------------------------------- options
class Count(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn, self.nfe = fn, 0

    def forward(self, t, y):
        self.nfe += 1
        return self.fn(t, y)


def test_step_size_grid_points_jump_t_min_max_step_and_max_num_steps():
    t = T(0.0, 1.0)
    steps = []
    f = Count(lambda t, y: -y)
    f.callback_step = lambda t0, y0, dt: steps.append(float(dt))
    odeint(f, T(1.0), t, method="euler", options=dict(step_size=0.25))
    assert steps == [0.25] * 4
    seen = []
    g = Count(lambda t, y: -y)
    g.callback_accept_step = lambda t0, y0, dt: seen.append(float(t0) + float(dt))
    odeint(g, T(1.0), T(0.0, 2.0), options=dict(grid_points=T(0.3, 1.1)))
    assert any(abs(s - 0.3) < 1e-15 for s in seen) and any(abs(s - 1.1) < 1e-15 for s in seen)
    jump = lambda t, y: -0.5 * y if t < 0.5 else y ** 2  # noqa: E731
    plain, better = Count(jump), Count(jump)
    odeint(plain, T(1.0, 2.0), t, atol=1e-6)
    odeint(better, T(1.0, 2.0), t, rtol=1e-6, atol=1e-6, options=dict(jump_t=T(0.5)))
    assert better.nfe < plain.nfe
    lin = Count(lambda t, y: torch.stack([y[1], -y[0]]))
    odeint(lin, T(1.0, 0.0), torch.linspace(1, 8, 10, dtype=D), options=dict(min_step=2.0))
    assert lin.nfe < 50
    acc = []
    m = Count(lambda t, y: -y)
    m.callback_accept_step = lambda t0, y0, dt: acc.append(float(dt))
    odeint(m, T(1.0), T(0.0, 10.0), options=dict(max_step=0.5))
    assert max(acc) <= 0.5 + 1e-12 and len(acc) >= 20
    with pytest.raises(RuntimeError, match="max_num_steps = 5"):
        odeint(lambda t, y: -y, T(1.0), T(0.0, 10.0), rtol=1e-10, options=dict(max_num_steps=5))


def test_cubic_interp_beats_linear_between_grid_points():
    t = torch.linspace(0, 1, 7, dtype=D)
    exact = torch.exp(-t)
    lin = odeint(lambda t, y: -y, T(1.0)[0], t, method="rk4", options=dict(step_size=0.25))
    cub = odeint(lambda t, y: -y, T(1.0)[0], t, method="rk4", options=dict(step_size=0.25, interp="cubic"))
    assert float((cub - exact).abs().max()) < 0.1 * float((lin - exact).abs().max())


# ----------------------------------------------------------------------------- events
def test_odeint_event_time_state_and_gradient_of_a_falling_ball():
    g = 9.81
    h0 = T(10.0, 0.0).requires_grad_(True)  # height, velocity
    fall = lambda t, y: torch.stack([y[1], -g * torch.ones_like(y[1])])  # noqa: E731
    t_hit, sol = odeint_event(fall, h0, T(0.0)[0], event_fn=lambda t, y: y[0], rtol=1e-10, atol=1e-10)
    assert sol.shape == (2, 2)
    assert float(t_hit) == pytest.approx(math.sqrt(2 * 10 / g), abs=1e-8)
    assert float(sol[-1, 0]) == pytest.approx(0.0, abs=1e-8)
    assert float(sol[-1, 1]) == pytest.approx(-g * math.sqrt(2 * 10 / g), abs=1e-7)
    t_hit.backward()
    # t = sqrt(2 h / g) at v0 = 0: dt/dh = 1 / (g t), dt/dv0 = 1 / g
    assert float(h0.grad[0]) == pytest.approx(1 / (g * math.sqrt(20 / g)), rel=1e-6)
    assert float(h0.grad[1]) == pytest.approx(1 / g, rel=1e-6)


def test_event_on_a_fixed_grid_and_backwards():
    t_e, sol = odeint(lambda t, y: -torch.ones_like(y), T(1.0)[0], T(0.0, 1.0), method="rk4",
                      options=dict(step_size=0.1), event_fn=lambda t, y: y - 0.33)
    assert float(t_e) == pytest.approx(0.67, abs=1e-9)
    t_e, _ = odeint_event(lambda t, y: torch.ones_like(y), T(1.0)[0], T(0.0)[0], reverse_time=True,
                          event_fn=lambda t, y: y - 0.5)
    assert float(t_e) == pytest.approx(-0.5, abs=1e-9)


def test_event_errors_never_fires_and_wrong_output():
    with pytest.raises(RuntimeError, match="never"):
        odeint_event(lambda t, y: -y, T(1.0)[0], T(0.0)[0], event_fn=lambda t, y: y + 1.0, method="rk4",
                     options=dict(step_size=0.5, max_num_steps=100))
    with pytest.raises(RuntimeError, match="never"):
        odeint_event(lambda t, y: torch.stack([y[1], -y[0]]), T(1.0, 0.0), T(0.0)[0],
                     event_fn=lambda t, y: y[0] + 2.0, options=dict(max_num_steps=200))
    calls = []

    def shifty(t, y):
        calls.append(1)
        return y.expand(len(calls))

    with pytest.raises(ValueError, match="same shape"):
        odeint_event(lambda t, y: -y, T(1.0), T(0.0)[0], event_fn=shifty)
    with pytest.raises(TypeError, match="event_fn"):
        odeint_event(lambda t, y: -y, T(1.0), T(0.0)[0], event_fn=lambda t, y: 1.0)


# ----------------------------------------------------------------------------- adjoint
class Pendulum(nn.Module):
    def __init__(self):
        super().__init__()
        self.g = nn.Parameter(torch.tensor(9.81, dtype=D))
        self.damping = nn.Parameter(torch.tensor(0.3, dtype=D))

    def forward(self, t, y):
        return torch.stack([y[..., 1], -self.g * torch.sin(y[..., 0]) - self.damping * y[..., 1]], -1)


@pytest.mark.parametrize("system", ["lorenz", "pendulum"])
def test_adjoint_gradients_equal_backpropagation(system):
    f = Lorenz63() if system == "lorenz" else Pendulum()
    y0 = (T(1.0, 2.0, 20.0) if system == "lorenz" else T(1.2, 0.0)).requires_grad_(True)
    t = torch.linspace(0, 0.5, 5, dtype=D).requires_grad_(True)
    w = torch.linspace(-1, 1, 5 * y0.numel(), dtype=D).reshape(5, -1)
    kw = dict(rtol=1e-10, atol=1e-10)
    grads = []
    for solve in (odeint, odeint_adjoint):
        ys = solve(f, y0, t, **kw)
        grads.append(torch.autograd.grad((ys * w).sum(), (y0, t, *f.parameters())))
    for direct, adj in zip(*grads):
        assert torch.allclose(direct, adj, rtol=1e-6, atol=1e-6 * float(direct.abs().max())), (direct, adj)


def test_adjoint_handles_tuples_fixed_grids_and_needs_params_for_plain_functions():
    k = torch.tensor(0.7, dtype=D, requires_grad=True)
    y0 = (T(1.0)[0].requires_grad_(True), T(2.0, 3.0).requires_grad_(True))
    f = lambda t, y: (-k * y[0], -k * y[1])  # noqa: E731
    t = T(0.0, 1.0)
    a, b = odeint_adjoint(f, y0, t, method="rk4", options=dict(step_size=0.01), adjoint_params=(k,))
    (a[-1] + b[-1].sum()).backward()
    assert float(k.grad) == pytest.approx(-6 * math.exp(-0.7), rel=1e-8)
    assert float(y0[0].grad) == pytest.approx(math.exp(-0.7), rel=1e-8)
    with pytest.raises(ValueError, match="adjoint_params"):
        odeint_adjoint(lambda t, y: -y, T(1.0), t)


def test_adjoint_names_a_backward_blow_up_and_more_output_times_cure_it():
    # the adjoint integrates Lorenz-63's state backwards, where volumes expand at rate ~13.7:
    # over 3 time units that overflows (torchdiffeq returns NaN); resetting the state to the
    # forward solution every 0.1 keeps it finite and equal to backpropagation up to RK4's error
    f = Lorenz63()
    y0 = T(1.0, 2.0, 20.0).requires_grad_(True)
    kw = dict(method="rk4", options=dict(step_size=0.02))
    ys = odeint_adjoint(f, y0, T(0.0, 3.0), **kw)
    with pytest.raises(FloatingPointError, match="more output times"):
        torch.autograd.grad(ys[-1].sum(), y0)
    t = torch.linspace(0, 3, 31, dtype=D)
    direct = torch.autograd.grad(odeint(f, y0, t, **kw)[-1].sum(), y0)[0]
    adjoint = torch.autograd.grad(odeint_adjoint(f, y0, t, **kw)[-1].sum(), y0)[0]
    assert torch.isfinite(adjoint).all()
    assert torch.allclose(adjoint, direct, rtol=5e-3, atol=5e-3 * float(direct.abs().max())), (adjoint, direct)  # 1.1e-3


# ----------------------------------------------------------------------------- stiffness
def stiff(t, y):  # y' = -1000 (y - cos t): stiff, smooth slow solution
    return -1000.0 * (y - torch.cos(t))


def test_explicit_method_on_a_stiff_problem_warns_of_the_step_size_collapse():
    with pytest.warns(StiffnessWarning, match="step-size collapse"):
        odeint(stiff, T(0.0), T(0.0, 1.0))


@pytest.mark.parametrize("method", ["implicit_euler", "sdirk2", "trbdf2", "radauIIA5"])
def test_implicit_methods_are_stable_on_the_stiff_problem(method):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = odeint(stiff, T(0.0), T(0.0, 1.0), method=method, options=dict(step_size=0.05))
    # slow manifold y ~ cos t + sin t / 1000; an explicit method at h = 0.05 (h lambda = -50) explodes
    assert float(y[-1, 0]) == pytest.approx(math.cos(1.0) + math.sin(1.0) / 1000, abs=5e-3)
    assert not abs(float(odeint(stiff, T(0.0), T(0.0, 1.0), method="rk4", options=dict(step_size=0.05))[-1, 0])) < 1


# ----------------------------------------------------------------------------- bad input
def test_bad_input_is_named():
    t = T(0.0, 1.0)
    with pytest.raises(ValueError, match="unknown method"):
        odeint(lambda t, y: y, T(1.0), t, method="rk5")
    with pytest.raises(ValueError, match="shape \\[2\\] for a state of shape \\[3\\]"):
        odeint(lambda t, y: y[:2], T(1.0, 2.0, 3.0), t)
    with pytest.raises(ValueError, match="tuple of 2"):
        odeint(lambda t, y: y[0], (T(1.0), T(2.0)), t)
    with pytest.raises(ValueError, match="strictly"):
        odeint(lambda t, y: y, T(1.0), T(0.0, 1.0, 0.5))
    with pytest.raises(TypeError, match="floating-point or complex"):
        odeint(lambda t, y: y, torch.tensor([1, 2]), t)
    with pytest.warns(UserWarning, match="does not support callbacks"):
        f = Count(lambda t, y: y)
        f.callback_accept_step = lambda *a: None
        odeint(f, T(1.0), t, method="euler")


def test_fixed_grid_stage_times_made_in_blocks_give_the_same_solution(monkeypatch):
    # the fixed-grid solvers make the stage times as tensors TIME_BLOCK steps at a time: a block
    # boundary every 7 steps must not change a single bit (explicit RK and Adams)
    from difflens.dynamics.solvers import fixed

    f = Lorenz63()
    x0 = torch.tensor([[1.0, 1.0, 20.0], [-5.0, 2.0, 30.0]], dtype=torch.float64)
    t = torch.linspace(0, 0.5, 6, dtype=torch.float64)
    with torch.no_grad():
        ref = {m: odeint(f, x0, t, method=m, options=dict(step_size=0.01)) for m in ("rk4", "implicit_adams")}
        monkeypatch.setattr(fixed, "TIME_BLOCK", 7)
        for m, r in ref.items():
            assert torch.equal(odeint(f, x0, t, method=m, options=dict(step_size=0.01)), r), m
