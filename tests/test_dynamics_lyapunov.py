"""Lyapunov spectra by tangent-space QR and finite-time growth by eigendistortions."""

import math

import pytest
import torch
from torch import nn

from difflens.dynamics import Emulator, Lorenz63, emulator_lyapunov, flow_step, lyapunov_spectrum
from difflens.dynamics.lyapunov import jacobian
from difflens.dynamics.predictability import emulator_flow_map, finite_time_growth, flow_map





class Linear(nn.Module):
    def __init__(self, A):
        super().__init__()
        self.register_buffer("A", torch.as_tensor(A, dtype=torch.float64))

    def forward(self, t, x):
        return x @ self.A.T


def test_linear_system_exponents_are_the_eigenvalues():
    A = [[0.5, 1.0, 0.0], [0.0, -0.2, 2.0], [0.0, 0.0, -1.5]]  # triangular: eigenvalues on the diagonal
    x0 = torch.randn(3, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    res = lyapunov_spectrum(flow_step(Linear(A), 0.05), x0, n_steps=1200, dt=0.05, transient=200)
    assert torch.allclose(res.exponents, torch.tensor([0.5, -0.2, -1.5], dtype=torch.float64), atol=5e-3)
    assert res.sum == pytest.approx(-1.2, abs=1e-6)  # trace, exactly (up to RK4's O(h^4))


def test_batched_jacobian_matches_autograd():
    step = flow_step(Lorenz63(), 0.01, substeps=2)
    x = torch.tensor([[1.0, 2.0, 20.0], [-3.0, 0.5, 30.0]], dtype=torch.float64)
    y, J = jacobian(step, x)
    for b in range(2):
        ref = torch.autograd.functional.jacobian(lambda v: step(v[None])[0], x[b])
        assert torch.allclose(J[b], ref, atol=1e-12)
    assert torch.allclose(y, step(x).detach())


def test_lorenz_spectrum_sum_is_the_trace_and_lambda1_is_close():
    f = Lorenz63()
    g = torch.Generator().manual_seed(1)
    from difflens.dynamics import attractor_initial_conditions

    x0 = attractor_initial_conditions(f, 32, g, spinup=10.0)
    res = lyapunov_spectrum(flow_step(f, 0.01), x0, n_steps=600, dt=0.01, transient=150)
    assert res.sum == pytest.approx(-(10 + 1 + 8 / 3), abs=2e-3)  # volume contraction: constant trace
    assert abs(res.lambda1 - 0.9056) < 0.15  # 6 time units x 32 runs; the benchmark runs long enough for 2%
    assert abs(res.exponents[1]) < 0.1 and res.exponents[2] == pytest.approx(-14.57, abs=0.15)
    assert 2.0 < res.kaplan_yorke_dimension() < 2.1


class LinearNet(nn.Module):
    """A stand-in recurrent net: increment = (M - I) x_last, so the emulator's step is x -> M x."""

    def __init__(self, M):
        super().__init__()
        self.input_size = self.output_size = 3
        self.register_buffer("B", torch.as_tensor(M, dtype=torch.float32) - torch.eye(3))
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, z):
        return z[:, -1] @ self.B.T + 0 * self.dummy


def test_emulator_exponents_of_a_known_step_map():
    M = torch.tensor([[1.02, 0.01, 0.0], [0.0, 0.99, 0.0], [0.0, 0.0, 0.9]])
    em = Emulator(LinearNet(M), context=5, inputs="state", target="increment")
    ctx = torch.randn(2, 5, 3, generator=torch.Generator().manual_seed(0))
    res = emulator_lyapunov(em, ctx * 1e-3, n_steps=300, dt=0.01, n_exponents=3, transient=200)
    expect = torch.log(torch.tensor([1.02, 0.99, 0.9])) / 0.01
    assert torch.allclose(res.exponents, expect.double(), atol=0.05)


def test_finite_time_growth_matches_singular_values():
    A = torch.tensor([[0.3, 2.0], [0.0, -1.0]], dtype=torch.float64)
    x0 = torch.tensor([1.0, -1.0], dtype=torch.float64)
    T = 1.5
    growth = finite_time_growth(flow_map(Linear(A), T, dt=0.01), x0, T)
    s1 = torch.linalg.svdvals(torch.linalg.matrix_exp(A * T))[0]
    assert growth.sigma1 == pytest.approx(float(s1), rel=1e-6)
    assert growth.exponent == pytest.approx(math.log(float(s1)) / T, rel=1e-6)
    assert growth.direction.shape == x0.shape

    em = Emulator(LinearNet(torch.diag(torch.tensor([1.05, 1.0, 0.5]))), context=4, inputs="state",
                  target="increment")
    window = torch.randn(4, 3, generator=torch.Generator().manual_seed(2))
    eg = finite_time_growth(emulator_flow_map(em, 10), window, 0.1)
    assert eg.sigma1 == pytest.approx(1.05 ** 10, rel=1e-4)
    assert eg.direction.shape == (4, 3) and eg.direction[-1].abs().argmax() == 0  # only x_last[0] grows
