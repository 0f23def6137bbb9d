"""The profile (concentrated) likelihood: the signal variance in closed form during a fit."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from difflens.gp import GaussianProcess, Matern, Periodic, SquaredExponential
from difflens.gp.fitting import profiles_scale
from difflens.gp.linalg import log_marginal_likelihood, profile_log_marginal_likelihood


def _se(x: torch.Tensor, lengthscale: torch.Tensor) -> torch.Tensor:
    return torch.exp(-0.5 * (x[:, None] - x[None, :]).square() / lengthscale.square())


def _plain_lml(K: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    L = torch.linalg.cholesky(K)
    alpha = torch.cholesky_solve(y.reshape(len(y), -1), L)
    t = alpha.shape[1]
    return (-0.5 * (y.reshape(len(y), -1) * alpha).sum() - t * L.diagonal().log().sum()
            - 0.5 * len(y) * t * math.log(2 * math.pi))


@pytest.mark.parametrize("outputs", [1, 3])
def test_profile_value_is_the_lml_maximised_over_the_scale(outputs):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(30, generator=g, dtype=torch.float64) * 5
    y = torch.randn(30, outputs, generator=g, dtype=torch.float64).squeeze(-1) * 2.0
    C, tau = _se(x, torch.tensor(0.7, dtype=torch.float64)), 0.03
    lml, scale = profile_log_marginal_likelihood(C, tau, y)
    K = C + tau * torch.eye(30, dtype=torch.float64)
    assert float(lml) == pytest.approx(float(_plain_lml(float(scale) * K, y)), rel=1e-12)
    for factor in (0.9, 1.1):  # the scale is the maximiser
        assert float(_plain_lml(factor * float(scale) * K, y)) < float(lml)
    q = float((y.reshape(30, -1) * torch.linalg.solve(K, y.reshape(30, -1))).sum())
    assert float(scale) == pytest.approx(q / (30 * outputs), rel=1e-12)
    # without profiling the same autograd node gives the plain LML
    assert float(log_marginal_likelihood(K, 0.0, y)) == pytest.approx(float(_plain_lml(K, y)), rel=1e-12)


def test_profile_gradient_equals_autograd_through_plain_torch():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(25, generator=g, dtype=torch.float64) * 4
    y = torch.randn(25, generator=g, dtype=torch.float64)
    ell = torch.tensor(0.8, dtype=torch.float64, requires_grad=True)
    log_tau = torch.tensor(math.log(0.05), dtype=torch.float64, requires_grad=True)

    def plain():
        K = _se(x, ell) + log_tau.exp() * torch.eye(25, dtype=torch.float64)
        q = y @ torch.linalg.solve(K, y)
        return -0.5 * 25 * (1 + torch.log(q / 25)) - 0.5 * torch.logdet(K) - 0.5 * 25 * math.log(2 * math.pi)

    want = torch.autograd.grad(plain(), [ell, log_tau])
    got = torch.autograd.grad(profile_log_marginal_likelihood(_se(x, ell), log_tau.exp(), y)[0], [ell, log_tau])
    for a, b in zip(got, want):
        assert float(a) == pytest.approx(float(b), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("kernel, identified", [
    (lambda: SquaredExponential(1.0, 1.0), True), (lambda: Matern(1.5, 1.0, 2.0), True),
    (lambda: SquaredExponential(torch.ones(2), 0.5), True),
    (lambda: Periodic(1.0, 2.0, 1.0), False),  # a flat ridge: equal LMLs, noise not pinned down
])
def test_profiled_fit_reaches_the_full_fits_optimum(kernel, identified):
    rng = np.random.default_rng(4)
    k = kernel()
    dim = k.input_dim or 1
    X = rng.uniform(0, 4, (60, dim))
    y = 3.0 * np.sin(2 * X[:, 0]) + X[:, -1] ** 2 + 0.2 * rng.standard_normal(60)
    full = GaussianProcess(kernel(), noise_variance=1e-2, profile_scale=False, tol=1e-12).fit(X, y)
    prof = GaussianProcess(kernel(), noise_variance=1e-2, tol=1e-12).fit(X, y)
    assert prof.fit_info_["profiled"] and not full.fit_info_["profiled"]
    assert prof.log_marginal_likelihood() == pytest.approx(full.log_marginal_likelihood(), abs=1e-6)
    assert prof.fit_info_["lml"] == pytest.approx(prof.log_marginal_likelihood(), abs=1e-8)
    for name, value in full.hyperparameters().items() if identified else ():
        np.testing.assert_allclose(prof.hyperparameters()[name], value, rtol=1e-3)
    assert prof.kernel.log_variance.requires_grad  # left trainable


def test_profile_needs_a_learned_variance_and_noise():
    X, y = np.linspace(0, 3, 12)[:, None], np.cos(np.linspace(0, 3, 12))
    gp = GaussianProcess(SquaredExponential(), noise_variance=1e-2, learn_noise=False).fit(X, y)
    assert not gp.fit_info_["profiled"]
    gp = GaussianProcess(SquaredExponential(), noise_variance=1e-2)
    gp.kernel.log_variance.requires_grad_(False)
    gp.fit(X, y)
    assert not gp.fit_info_["profiled"] and float(gp.kernel.variance) == 1.0
    gp = GaussianProcess(SquaredExponential(), noise_variance=1e-2).fit(X, np.zeros(12))  # y = 0: no scale
    assert not gp.fit_info_["profiled"]
    gp = GaussianProcess(SquaredExponential() + SquaredExponential(), noise_variance=1e-2)
    assert not profiles_scale(gp, [p for p in gp.parameters() if p.requires_grad])


def test_profile_optimum_below_the_noise_floor_falls_back_to_the_full_fit():
    X = np.linspace(0, 3, 15)[:, None]
    y = np.sin(2 * X[:, 0])  # no noise: the profile optimum drives the noise to 0, under the floor
    gp = GaussianProcess(SquaredExponential(), noise_variance=1e-2, noise_floor=1e-4).fit(X, y)
    ref = GaussianProcess(SquaredExponential(), noise_variance=1e-2, noise_floor=1e-4, profile_scale=False).fit(X, y)
    assert not gp.fit_info_["profiled"]
    assert gp.log_marginal_likelihood() == pytest.approx(ref.log_marginal_likelihood(), abs=1e-6)


def test_profile_scale_survives_save_and_load(tmp_path):
    gp = GaussianProcess(SquaredExponential(), noise_variance=1e-2, profile_scale=False).fit(
        np.linspace(0, 1, 5)[:, None], np.arange(5.0))
    loaded = GaussianProcess.load(gp.save(tmp_path / "gp.pt"))
    assert loaded.profile_scale is False
