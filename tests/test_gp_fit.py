"""Hyperparameter fitting: LML at least scikit-learn's optimum, restarts, the engine, frozen parameters."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process import kernels as sk

from difflens.engine import Optimization
from difflens.gp import GaussianProcess, Matern, SquaredExponential
from difflens.gp.fitting import MemoLoss


def sklearn_fit(kernel, X, y, restarts=0):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # bound warnings for irrelevant ARD dimensions
        return GaussianProcessRegressor(kernel, alpha=1e-10, n_restarts_optimizer=restarts, random_state=0).fit(X, y)


def test_fitted_lml_at_least_sklearn_1d():
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 6, (40, 1))
    y = np.sin(1.5 * X[:, 0]) + 0.1 * rng.standard_normal(40)
    gp = GaussianProcess(SquaredExponential(1.0, 1.0), noise_variance=1e-2).fit(X, y)
    ref = sklearn_fit(sk.ConstantKernel(1.0) * sk.RBF(1.0) + sk.WhiteKernel(1e-2), X, y)
    assert gp.log_marginal_likelihood() >= ref.log_marginal_likelihood_value_ - 1e-3
    assert gp.fit_info_["lml"] == pytest.approx(gp.log_marginal_likelihood(), abs=1e-9)
    hp = gp.hyperparameters()
    assert hp["lengthscale"] == pytest.approx(ref.kernel_.k1.k2.length_scale, rel=1e-2)
    assert hp["noise_variance"] == pytest.approx(ref.kernel_.k2.noise_level, rel=1e-2)


def test_fitted_lml_at_least_sklearn_ard():
    rng = np.random.default_rng(1)
    X = rng.uniform(0, 1, (50, 3))
    y = np.sin(4 * X[:, 0]) + X[:, 1] ** 2 + 0.05 * rng.standard_normal(50)  # dimension 2 is irrelevant
    gp = GaussianProcess(SquaredExponential(torch.ones(3), 1.0), noise_variance=1e-2).fit(X, y)
    ref = sklearn_fit(sk.ConstantKernel(1.0) * sk.RBF(np.ones(3)) + sk.WhiteKernel(1e-2), X, y)
    assert gp.log_marginal_likelihood() >= ref.log_marginal_likelihood_value_ - 1e-3
    ls = gp.hyperparameters()["lengthscale"]
    assert ls[2] > 10 * max(ls[0], ls[1])  # ARD switches the irrelevant input off


def test_fit_runs_on_the_engine_and_records_history():
    rng = np.random.default_rng(2)
    X = rng.uniform(0, 4, (25, 1))
    y = np.cos(X[:, 0]) + 0.1 * rng.standard_normal(25)
    gp = GaussianProcess(Matern(2.5, 1.0), noise_variance=0.05).fit(X, y)
    opt = gp.optimization
    assert isinstance(opt, Optimization)
    assert isinstance(opt.optimizer, torch.optim.LBFGS)
    loss = opt.history.loss
    assert loss.shape[0] == opt.iteration and opt.stop_reason in ("loss_change", "grad_norm")
    assert bool((loss[1:] <= loss[:-1] + 1e-12).all())  # L-BFGS with a Wolfe search never goes up
    assert float(-loss[-1]) <= gp.log_marginal_likelihood() + 1e-9
    # every iteration but a last one that finds a zero directional derivative (converged) evaluates once
    assert gp.fit_info_["evaluations"] >= opt.iteration - 1


def test_memo_loss_reuses_repeated_evaluations():
    rng = np.random.default_rng(3)
    X = rng.uniform(0, 4, (15, 1))
    gp = GaussianProcess(SquaredExponential(), noise_variance=0.1, optimize=False).fit(X, np.sin(X[:, 0]))
    params = [gp.kernel.log_lengthscale, gp.kernel.log_variance]
    memo = MemoLoss(gp, params)
    a = memo()
    a.backward()
    g1 = [p.grad.clone() for p in params]
    for p in params:
        p.grad = None
    b = memo()
    b.backward()
    assert memo.evaluations == 1 and float(a.detach()) == float(b.detach())
    for p, g in zip(params, g1):
        torch.testing.assert_close(p.grad, g, rtol=0, atol=0)
    with torch.no_grad():
        params[0].add_(0.1)
    memo()
    assert memo.evaluations == 2


def test_restarts_are_reproducible_and_never_worse():
    rng = np.random.default_rng(4)
    X = rng.uniform(0, 10, (20, 1))
    y = np.sin(3 * X[:, 0]) + 0.1 * rng.standard_normal(20)  # a short lengthscale far from the start
    single = GaussianProcess(SquaredExponential(5.0), noise_variance=0.5).fit(X, y)
    kw = {"noise_variance": 0.5, "n_restarts": 2, "max_iter": 60}
    a = GaussianProcess(SquaredExponential(5.0), **kw).fit(X, y, generator=torch.Generator().manual_seed(7))
    b = GaussianProcess(SquaredExponential(5.0), **kw).fit(X, y, generator=torch.Generator().manual_seed(7))
    assert a.hyperparameters() == b.hyperparameters()
    assert len(a.fit_info_["runs"]) == 3
    assert a.log_marginal_likelihood() >= single.log_marginal_likelihood() - 1e-9
    assert a.log_marginal_likelihood() == pytest.approx(max(r["lml"] for r in a.fit_info_["runs"]), abs=1e-9)


def test_frozen_hyperparameter_stays_fixed_and_fixed_noise():
    rng = np.random.default_rng(5)
    X = rng.uniform(0, 5, (20, 1))
    y = np.sin(X[:, 0]) + 0.1 * rng.standard_normal(20)
    k = SquaredExponential(1.0, 2.0)
    k.log_variance.requires_grad_(False)
    gp = GaussianProcess(k, noise_variance=0.02, learn_noise=False).fit(X, y)
    assert float(gp.kernel.variance) == pytest.approx(2.0, rel=1e-15)
    assert float(gp.noise_variance) == pytest.approx(0.02, rel=1e-15)
    assert gp.hyperparameters()["lengthscale"] != pytest.approx(1.0)


def test_nothing_to_fit_and_empty_data():
    k = SquaredExponential()
    for p in k.parameters():
        p.requires_grad_(False)
    gp = GaussianProcess(k, noise_variance=0.1, learn_noise=False).fit(np.arange(3.0), np.zeros(3))
    assert gp.optimization is None and gp.fitted
    GaussianProcess(SquaredExponential()).fit(np.zeros((0, 1)), np.zeros(0))  # prior, no optimisation
