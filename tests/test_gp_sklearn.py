"""difflens.gp's scikit-learn conventions: GaussianProcessRegressor and difflens.gp.sklearn_kernels,
checked against scikit-learn itself (values, gradients, fits) and against exact maths."""

import math
import warnings

import numpy as np
import pytest
import sklearn.gaussian_process as skgp
import sklearn.gaussian_process.kernels as sk
import torch
from sklearn.base import clone

import difflens.gp.sklearn_kernels as dk
from difflens.engine import Optimization
from difflens.gp import ConvergenceWarning, GaussianProcessRegressor, KernelNotPositiveDefiniteError
from difflens.gp.linalg import log_marginal_likelihood
from difflens.gp.sklearn_kernels import BoundsWarning

RNG = np.random.RandomState(0)
X = RNG.uniform(-2, 2, (12, 2))
Y = RNG.uniform(-2, 2, (5, 2))
X1 = np.linspace(0, 6, 9)[:, None]
y1 = np.sin(X1[:, 0]) + 0.1 * np.cos(5 * X1[:, 0])

PAIRS = [
    (lambda m: m.RBF(0.8), None),
    (lambda m: 2.0 * m.RBF([0.5, 1.7]), None),
    (lambda m: m.Matern(0.7, nu=0.5), None),
    (lambda m: 1.3 * m.Matern([0.6, 1.1], nu=1.5), None),
    (lambda m: m.Matern(0.9, nu=2.5), None),
    (lambda m: m.Matern(0.9, nu=np.inf), None),
    (lambda m: m.Matern([0.9, 0.4], nu=0.8), "numeric"),  # scikit-learn's general-nu gradient is a finite difference
    (lambda m: m.Matern(1.2, nu=3.7), "numeric"),
    (lambda m: m.RationalQuadratic(0.5, 1.5), None),
    (lambda m: m.ExpSineSquared(0.9, 2.5), None),
    (lambda m: m.DotProduct(0.7) ** 2, None),
    (lambda m: m.RBF(1.0) * m.ExpSineSquared(1.0, 3.0) + m.WhiteKernel(0.1), None),
    (lambda m: m.ConstantKernel(0.3) + m.PairwiseKernel(0.4, metric="rbf"), "numeric"),  # sklearn: numeric
]


@pytest.mark.parametrize("make, grad", PAIRS, ids=lambda v: "" if not callable(v) else repr(v(dk)))
def test_kernels_equal_sklearn(make, grad):
    ours, ref = make(dk), make(sk)
    assert repr(ours) == repr(ref)
    np.testing.assert_array_equal(ours.theta, ref.theta)
    np.testing.assert_array_equal(ours.bounds, ref.bounds)
    assert [h.name for h in ours.hyperparameters] == [h.name for h in ref.hyperparameters]
    K, dK = ours(X, eval_gradient=True)
    Kr, dKr = ref(X, eval_gradient=True)
    np.testing.assert_allclose(K, Kr, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours(X, Y), ref(X, Y), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours.diag(X), ref.diag(X), rtol=1e-10)
    # scikit-learn's general-nu gradient is a forward difference (step 1e-10): compare loosely, then exactly below
    np.testing.assert_allclose(dK, dKr, rtol=1e-10 if grad is None else 1e-4, atol=1e-12 if grad is None else 3e-5)
    if grad == "numeric":  # ours is exact: check it against a central difference instead
        h = 1e-6
        for j in range(ours.n_dims):
            e = np.zeros(ours.n_dims)
            e[j] = h
            fd = (ours.clone_with_theta(ours.theta + e)(X) - ours.clone_with_theta(ours.theta - e)(X)) / (2 * h)
            np.testing.assert_allclose(dK[..., j], fd, atol=1e-8)


def test_pairwise_polynomial_gradient_is_exact():
    k = dk.PairwiseKernel(1.3, metric="polynomial")
    _, dK = k(X, eval_gradient=True)
    G = 1.3 * X @ X.T
    np.testing.assert_allclose(dK[..., 0], 3 * (G + 1) ** 2 * G, rtol=1e-12)


def test_matern_general_nu_limits():
    for nu in (0.5, 1.5, 2.5):
        np.testing.assert_allclose(dk.Matern(0.8, nu=nu + 1e-9)(X), dk.Matern(0.8, nu=nu)(X), atol=1e-7)
    np.testing.assert_allclose(dk.Matern(0.8, nu=200.0)(X), dk.RBF(0.8)(X), atol=5e-3)
    with pytest.raises(ValueError, match="nu > 0"):
        dk.Matern(nu=0.0)(X)


def test_kernel_params_clone_and_torch_io():
    k = 2.0 * dk.RBF([0.5, 1.7], length_scale_bounds=(1e-2, 1e2)) + dk.WhiteKernel(0.1, "fixed")
    c = clone(k)
    assert c == k and c is not k and c.k1.k2 is not k.k1.k2
    assert k.get_params()["k1__k2__length_scale"] == [0.5, 1.7]
    c.set_params(k1__k2__length_scale=[1.0, 1.0])
    assert c != k and k.k1.k2.length_scale == [0.5, 1.7]
    assert k.n_dims == 3 and k.hyperparameters[-1].fixed
    c2 = k.clone_with_theta(np.zeros(3))
    assert c2.k1.k2.length_scale.tolist() == [1.0, 1.0] and k.k1.k1.constant_value == 2.0
    Kt = k(torch.as_tensor(X), torch.as_tensor(Y))
    assert isinstance(Kt, torch.Tensor) and Kt.shape == (12, 5)
    np.testing.assert_allclose(Kt.numpy(), k(X, Y))
    assert isinstance(k(X), np.ndarray) and k.is_stationary() and not dk.DotProduct().is_stationary()


def test_regressor_fit_matches_sklearn_and_leaves_kernel():
    ours = dk.ConstantKernel(1.0) * dk.RBF(1.0) + dk.WhiteKernel(1e-2)
    ref = sk.ConstantKernel(1.0) * sk.RBF(1.0) + sk.WhiteKernel(1e-2)
    before = ours.theta.copy()
    gpr = GaussianProcessRegressor(ours).fit(X1, y1)
    skr = skgp.GaussianProcessRegressor(ref).fit(X1, y1)
    np.testing.assert_array_equal(ours.theta, before)  # the user's kernel is untouched
    assert gpr.kernel_ is not ours
    assert gpr.log_marginal_likelihood_value_ == pytest.approx(skr.log_marginal_likelihood_value_, rel=1e-6)
    np.testing.assert_allclose(gpr.kernel_.theta, skr.kernel_.theta, atol=2e-3)
    for attr in ("X_train_", "y_train_", "alpha_", "L_"):
        assert isinstance(getattr(gpr, attr), np.ndarray), attr
    assert isinstance(gpr.optimization, Optimization) and len(gpr.optimization.history.loss) > 1
    # the LML and its gradient at any theta equal scikit-learn's
    theta = skr.kernel_.theta + 0.3
    lml, g = gpr.log_marginal_likelihood(theta, eval_gradient=True)
    lml_r, g_r = skr.log_marginal_likelihood(theta, eval_gradient=True)
    assert lml == pytest.approx(lml_r, rel=1e-10)
    np.testing.assert_allclose(g, g_r, rtol=1e-8, atol=1e-10)
    Xs = np.linspace(-1, 7, 15)[:, None]
    for kw in ({}, {"return_std": True}, {"return_cov": True}):
        a, b = gpr.predict(Xs, **kw), skr.predict(Xs, **kw)
        for u, v in zip(np.atleast_1d(a) if not kw else a, np.atleast_1d(b) if not kw else b):
            np.testing.assert_allclose(u, v, rtol=1e-4, atol=1e-6)


def test_regressor_params_and_torch_in_torch_out():
    gpr = GaussianProcessRegressor(dk.RBF(1.0), alpha=1e-3, normalize_y=True, random_state=3)
    c = clone(gpr)
    assert c.get_params()["alpha"] == 1e-3 and c.kernel == gpr.kernel and c.kernel is not gpr.kernel
    gpr.set_params(kernel__length_scale=2.0)
    assert gpr.kernel.length_scale == 2.0
    gpr.fit(torch.as_tensor(X1), torch.as_tensor(y1))
    assert isinstance(gpr.alpha_, torch.Tensor) and isinstance(gpr.X_train_, torch.Tensor)
    mean, std = gpr.predict(torch.as_tensor(X1), return_std=True)
    assert isinstance(mean, torch.Tensor) and isinstance(std, torch.Tensor)
    assert isinstance(gpr.predict(X1), np.ndarray)


def test_multi_output_and_per_sample_alpha_match_sklearn():
    Y2 = np.stack([y1, 3 * y1 + 1], 1)
    alpha = np.linspace(1e-3, 1e-1, len(y1))
    ours = GaussianProcessRegressor(dk.RBF(1.3), alpha=alpha, optimizer=None, normalize_y=True).fit(X1, Y2)
    ref = skgp.GaussianProcessRegressor(sk.RBF(1.3), alpha=alpha, optimizer=None, normalize_y=True).fit(X1, Y2)
    Xs = np.linspace(0, 6, 7)[:, None]
    for kw in ({"return_std": True}, {"return_cov": True}):
        for a, b in zip(ours.predict(Xs, **kw), ref.predict(Xs, **kw)):
            assert a.shape == b.shape
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    assert ours.log_marginal_likelihood_value_ == pytest.approx(ref.log_marginal_likelihood_value_, rel=1e-10)
    assert ours.sample_y(Xs, 4).shape == (7, 2, 4)
    # the fitted hyperparameters are shared: two identical columns fit like one
    a = GaussianProcessRegressor(dk.RBF(1.0)).fit(X1, y1)
    b = GaussianProcessRegressor(dk.RBF(1.0)).fit(X1, np.stack([y1, y1], 1))
    np.testing.assert_allclose(a.kernel_.theta, b.kernel_.theta, atol=1e-4)


def test_multi_output_lml_gradient_with_vector_noise():
    torch.manual_seed(0)
    A = torch.randn(6, 6, dtype=torch.float64)
    K = (A @ A.T).requires_grad_(True)
    noise = torch.rand(6, dtype=torch.float64).add(0.1).requires_grad_(True)
    Yt = torch.randn(6, 3, dtype=torch.float64)
    ours = log_marginal_likelihood(K, noise, Yt)
    C = K + torch.diag(noise)
    ref = sum(torch.distributions.MultivariateNormal(torch.zeros(6, dtype=torch.float64), C).log_prob(Yt[:, j])
              for j in range(3))
    assert float(ours) == pytest.approx(float(ref), rel=1e-12)
    g1 = torch.autograd.grad(ours, (K, noise))
    g2 = torch.autograd.grad(ref, (K, noise))
    np.testing.assert_allclose(g1[1], g2[1], rtol=1e-9)
    sym = lambda G: (G + G.T) / 2
    np.testing.assert_allclose(sym(g1[0]), sym(g2[0]), rtol=1e-8, atol=1e-12)


def test_optimizers_restarts_and_generators():
    kernel = dk.ConstantKernel(1.0, (1e-2, 1e2)) * dk.RBF(1.0, (1e-2, 1e2)) + dk.WhiteKernel(1e-3, (1e-5, 1e0))
    engine = GaussianProcessRegressor(kernel).fit(X1, y1)
    scipy = GaussianProcessRegressor(kernel, optimizer="fmin_l_bfgs_b").fit(X1, y1)
    assert engine.log_marginal_likelihood_value_ == pytest.approx(scipy.log_marginal_likelihood_value_, abs=1e-5)
    assert scipy.optimization is None
    calls = []

    def grid(obj_func, initial_theta, bounds):
        calls.append(bounds.shape)
        best = min((obj_func(initial_theta + d, eval_gradient=False), d) for d in (-0.5, 0.0, 0.5))
        return initial_theta + best[1], best[0]

    custom = GaussianProcessRegressor(kernel, optimizer=grid).fit(X1, y1)
    assert calls == [(3, 2)] and custom.log_marginal_likelihood_value_ >= custom.log_marginal_likelihood(kernel.theta)
    none = GaussianProcessRegressor(kernel, optimizer=None).fit(X1, y1)
    np.testing.assert_array_equal(none.kernel_.theta, kernel.theta)
    runs = [GaussianProcessRegressor(kernel, n_restarts_optimizer=2, random_state=rs).fit(X1, y1)
            for rs in (7, torch.Generator().manual_seed(7), np.random.RandomState(7))]
    np.testing.assert_array_equal(runs[0].kernel_.theta, runs[1].kernel_.theta)  # int == seeded torch.Generator
    for r in runs:
        assert r.log_marginal_likelihood_value_ >= engine.log_marginal_likelihood_value_ - 1e-6
    with pytest.raises(ValueError, match="requires that all bounds are finite"):
        GaussianProcessRegressor(dk.RBF(1.0, (1e-2, np.inf)), n_restarts_optimizer=1).fit(X1, y1)


def test_prior_before_fit_and_default_kernel():
    gpr = GaussianProcessRegressor()
    mean, cov = gpr.predict(X, return_cov=True)
    np.testing.assert_array_equal(mean, 0.0)
    np.testing.assert_allclose(cov, sk.RBF(1.0)(X), rtol=1e-12)
    draws = gpr.sample_y(X[:3], 20000, random_state=0)
    assert draws.shape == (3, 20000)
    np.testing.assert_allclose(np.cov(draws), sk.RBF(1.0)(X[:3]), atol=0.03)
    assert GaussianProcessRegressor(n_targets=3).predict(X, return_std=True)[1].shape == (12, 3)
    fitted = GaussianProcessRegressor().fit(X1, y1)
    assert fitted.kernel_.n_dims == 2  # as scikit-learn: the default kernel is free in fit


def test_convergence_warning_at_bound():
    with pytest.warns(BoundsWarning):
        kernel = dk.RBF(1.0, length_scale_bounds=(1e-5, 1e-2))  # starts at the upper bound; the optimum is ~1
    with pytest.warns(ConvergenceWarning, match="length_scale is close to the specified upper bound 0.01"):
        gpr = GaussianProcessRegressor(kernel).fit(X1, y1)
    assert gpr.kernel_.theta[0] == np.log(1e-2)  # exactly on the bound


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="2 length scales .* X has 1 input dimension"):
        GaussianProcessRegressor(dk.RBF([1.0, 2.0])).fit(X1, y1)
    with pytest.raises(ValueError, match="2 length scales"):
        dk.Matern([1.0, 2.0])(np.zeros((3, 3)))
    with pytest.warns(BoundsWarning, match="initial value 1 of hyperparameter 'length_scale' lies outside its bounds"):
        k = dk.RBF(1.0, length_scale_bounds=(10.0, 100.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gpr = GaussianProcessRegressor(k).fit(X1, y1)
    assert 10.0 - 1e-9 <= gpr.kernel_.length_scale <= 100.0 + 1e-9
    with pytest.raises(ValueError, match="alpha must be a scalar or an array with same number of entries"):
        GaussianProcessRegressor(alpha=np.ones(3)).fit(X1, y1)
    with pytest.raises(KernelNotPositiveDefiniteError, match="not returning a positive definite matrix"):
        GaussianProcessRegressor(dk.DotProduct(1e-3, "fixed"), alpha=0.0).fit(np.ones((4, 2)), np.arange(4.0))
    with pytest.raises(np.linalg.LinAlgError):
        GaussianProcessRegressor(dk.DotProduct(1e-3, "fixed"), alpha=0.0).fit(np.ones((4, 2)), np.arange(4.0))
    with pytest.raises(RuntimeError, match="At most one of return_std or return_cov"):
        GaussianProcessRegressor().predict(X, return_std=True, return_cov=True)
    with pytest.raises(ValueError, match="number of targets"):
        GaussianProcessRegressor(n_targets=2).fit(X1, y1)
    with pytest.raises(TypeError, match="random_state"):
        GaussianProcessRegressor(dk.RBF(1.0, (0.1, 10)), n_restarts_optimizer=1, random_state="x").fit(X1, y1)
    Xd = np.vstack([X1, X1[:2]])  # duplicate inputs: singular without noise
    gpr = GaussianProcessRegressor(dk.RBF(1.0) + dk.WhiteKernel(0.1), alpha=0.0, optimizer=None).fit(
        Xd, np.append(y1, y1[:2]))
    lml, grad = gpr.log_marginal_likelihood(np.array([0.0, -800.0]), eval_gradient=True)
    assert math.isinf(lml) and lml < 0 and not grad.any()
