"""Exact GP predictions and LML against scikit-learn (fixed hyperparameters), gradients, errors."""

import math

import numpy as np
import pytest
import torch
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process import kernels as sk

from difflens.engine import CheckpointError
from difflens.gp import (
    Brownian,
    GaussianProcess,
    JitterWarning,
    Kernel,
    Matern,
    NotFittedError,
    NotPositiveDefiniteError,
    Periodic,
    SquaredExponential,
    White,
    cholesky_jittered,
)

RNG = np.random.default_rng(1)


def data(n=25, d=1, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 5, (n, d))
    y = np.sin(2 * X[:, 0]) + (X[:, 1] if d > 1 else 0) + 0.1 * rng.standard_normal(n) + 0.5
    Xt = rng.uniform(-1, 6, (40, d))
    return X, y, Xt


CASES = [
    (lambda: SquaredExponential(0.7, 1.3), sk.ConstantKernel(1.3) * sk.RBF(0.7), 1, 0.05),
    (lambda: SquaredExponential([0.8, 1.5, 3.0], 0.9), sk.ConstantKernel(0.9) * sk.RBF([0.8, 1.5, 3.0]), 3, 0.01),
    (lambda: Matern(1.5, 1.1, 2.0), sk.ConstantKernel(2.0) * sk.Matern(1.1, nu=1.5), 2, 0.1),
    (lambda: SquaredExponential(2.0) * Periodic(1.0, 3.1) + White(0.02),
     sk.RBF(2.0) * sk.ExpSineSquared(1.0, 3.1) + sk.WhiteKernel(0.02), 1, 1e-3),
]


@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("make,ref,d,noise", CASES, ids=["se", "ard", "matern", "composite"])
def test_matches_sklearn_fixed_hyperparameters(make, ref, d, noise, normalize):
    X, y, Xt = data(25, d)
    gp = GaussianProcess(make(), noise_variance=noise, optimize=False, normalize_y=normalize).fit(X, y)
    sk_gp = GaussianProcessRegressor(ref, alpha=noise, optimizer=None, normalize_y=normalize).fit(X, y)
    mean, std = gp.predict(Xt, return_std=True)
    mean2, cov = gp.predict(Xt, return_cov=True)
    sk_mean, sk_std = sk_gp.predict(Xt, return_std=True)
    _, sk_cov = sk_gp.predict(Xt, return_cov=True)
    assert isinstance(mean, np.ndarray) and mean.shape == (40,) and std.shape == (40,) and cov.shape == (40, 40)
    np.testing.assert_allclose(mean, sk_mean, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(mean2, sk_mean, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(std, sk_std, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(cov, sk_cov, rtol=1e-6, atol=1e-9)
    assert gp.log_marginal_likelihood() == pytest.approx(sk_gp.log_marginal_likelihood_value_, rel=1e-9)


def test_include_noise_and_torch_io():
    X, y, Xt = data(20)
    gp = GaussianProcess(SquaredExponential(0.8), noise_variance=0.3, optimize=False, normalize_y=True).fit(
        torch.as_tensor(X), torch.as_tensor(y))
    Xt_t = torch.as_tensor(Xt)
    mean, std = gp.predict(Xt_t, return_std=True)
    assert isinstance(mean, torch.Tensor) and mean.dtype == torch.float64
    _, std_n = gp.predict(Xt_t, return_std=True, include_noise=True)
    ys = float(np.std(y))
    torch.testing.assert_close(std_n.square(), std.square() + 0.3 * ys ** 2)
    _, cov_n = gp.predict(Xt_t, return_cov=True, include_noise=True)
    torch.testing.assert_close(cov_n.diagonal(), std_n.square())
    # 1-D inputs are a column
    torch.testing.assert_close(gp.predict(Xt_t[:, 0]), mean)


def test_lml_gradient_gradcheck():
    from torch.func import functional_call

    from difflens.gp import log_marginal_likelihood

    X, y, _ = data(12, 2)
    X, y = torch.as_tensor(X), torch.as_tensor(y)
    kernel = SquaredExponential([0.7, 1.2], 1.1) + Matern(2.5, 0.9)
    names = ["k1.log_lengthscale", "k1.log_variance", "k2.log_lengthscale", "k2.log_variance"]
    raws = [dict(kernel.named_parameters())[n].detach().clone().requires_grad_(True) for n in names]
    raws.append(torch.tensor(math.log(0.05), dtype=torch.float64, requires_grad=True))

    def lml(*values):
        K = functional_call(kernel, dict(zip(names, values[:4])), (X,))
        return log_marginal_likelihood(K, values[4].exp(), y)

    assert torch.autograd.gradcheck(lml, tuple(raws), eps=1e-6, atol=1e-7, rtol=1e-6)
    # the GP's own differentiable LML is the same function
    gp = GaussianProcess(kernel, noise_variance=0.05, optimize=False).fit(X, y)
    value = gp._lml_tensor().detach()
    assert float(value) == pytest.approx(gp.log_marginal_likelihood(), rel=1e-12)
    assert float(value) == pytest.approx(float(lml(*raws).detach()), rel=1e-12)


def test_chunked_prediction_equals_unchunked():
    X, y, Xt = data(30, 2)
    a = GaussianProcess(Matern(2.5, [0.7, 1.0]), noise_variance=0.01, optimize=False).fit(X, y)
    b = GaussianProcess(Matern(2.5, [0.7, 1.0]), noise_variance=0.01, optimize=False, chunk_size=7).fit(X, y)
    ma, sa = a.predict(Xt, return_std=True)
    mb, sb = b.predict(Xt, return_std=True)
    np.testing.assert_allclose(mb, ma, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(sb, sa, rtol=1e-13, atol=1e-14)


def test_sample_y_statistics():
    X, y, _ = data(8)
    gp = GaussianProcess(SquaredExponential(0.9, 1.2), noise_variance=0.05, optimize=False).fit(X, y)
    Xs = np.array([[-0.5], [1.0], [2.2], [4.0], [6.0]])
    mean, cov = gp.predict(Xs, return_cov=True)
    g = torch.Generator().manual_seed(3)
    draws = gp.sample_y(Xs, 20000, generator=g)
    assert draws.shape == (5, 20000)
    se = np.sqrt(np.diag(cov) / 20000)
    assert np.all(np.abs(draws.mean(1) - mean) < 5 * se + 1e-12)
    np.testing.assert_allclose(np.cov(draws), cov, atol=0.05 * cov.max())
    # same generator state, same draws; prior draws have the kernel's covariance
    again = gp.sample_y(Xs, 20000, generator=torch.Generator().manual_seed(3))
    np.testing.assert_array_equal(draws, again)
    prior = gp.sample_y(Xs, 20000, prior=True, generator=torch.Generator().manual_seed(4))
    K = gp.kernel(torch.as_tensor(Xs)).detach().numpy()
    np.testing.assert_allclose(np.cov(prior), K, atol=0.05 * K.max())


def test_prior_sampling_before_fit_and_empty_fit():
    gp = GaussianProcess(SquaredExponential(1.0), optimize=False)
    d = gp.sample_y(np.linspace(0, 1, 4), 3, prior=True, generator=torch.Generator().manual_seed(0))
    assert d.shape == (4, 3) and np.isfinite(d).all()
    gp.fit(np.zeros((0, 1)), np.zeros(0))
    mean, std = gp.predict(np.linspace(0, 1, 4), return_std=True)
    np.testing.assert_allclose(mean, 0.0)
    np.testing.assert_allclose(std, 1.0)


def test_jitter_for_duplicate_inputs_without_noise():
    X = np.array([0.0, 1.0, 1.0, 2.0])
    y = np.array([0.0, 1.0, 1.0, 0.5])
    gp = GaussianProcess(SquaredExponential(1.0), noise_variance=0.0, optimize=False)
    with pytest.warns(JitterWarning, match="jitter"):
        gp.fit(X, y)
    assert gp.jitter_ > 0
    mean, std = gp.predict(X, return_std=True)
    assert np.isfinite(mean).all() and np.isfinite(std).all()
    np.testing.assert_allclose(mean, y, atol=1e-4)


def test_not_positive_definite_error():
    A = torch.diag(torch.tensor([1.0, -1.0, 2.0], dtype=torch.float64))
    with pytest.raises(NotPositiveDefiniteError, match="not positive definite"):
        cholesky_jittered(A)

    class Negative(Kernel):
        def _matrix(self, x1, x2):
            return -torch.ones(x1.shape[0], x1.shape[0] if x2 is None else x2.shape[0], dtype=x1.dtype)

        def _diag(self, x):
            return -torch.ones(x.shape[0], dtype=x.dtype)

    gp = GaussianProcess(Negative(), noise_variance=0.0, optimize=False)
    with pytest.raises(NotPositiveDefiniteError, match="noise_variance"):
        gp.fit(np.arange(3.0), np.zeros(3))


def test_brownian_gp_interpolates():
    X = np.array([0.5, 1.0, 3.0])
    y = np.array([0.2, -0.1, 0.7])
    gp = GaussianProcess(Brownian(1.0), noise_variance=0.0, optimize=False).fit(X, y)
    mean, std = gp.predict(np.array([0.5, 2.0, 4.0]), return_std=True)
    np.testing.assert_allclose(mean, [0.2, (-0.1 + 0.7) / 2, 0.7], atol=1e-10)  # Brownian bridge, then flat
    np.testing.assert_allclose(std ** 2, [0.0, 0.5, 1.0], atol=1e-10)


BAD_FIT = [
    (np.array([[0.0], [np.nan], [1.0]]), np.zeros(3), ValueError, "X contains NaN or inf"),
    (np.arange(3.0), np.array([0.0, np.inf, 1.0]), ValueError, "y contains NaN or inf"),
    (np.arange(3.0), np.zeros(4), ValueError, "must match"),
    (np.arange(3.0), np.zeros((3, 2)), ValueError, "one output"),
    (np.zeros((3, 1, 1)), np.zeros(3), ValueError, "shape"),
    ("abc", np.zeros(3), TypeError, "NumPy array or a torch tensor"),
    (np.array([1 + 1j, 2, 3]), np.zeros(3), TypeError, "real-valued"),
]


@pytest.mark.parametrize("X,y,exc,msg", BAD_FIT)
def test_bad_fit_inputs(X, y, exc, msg):
    gp = GaussianProcess(SquaredExponential(), optimize=False)
    with pytest.raises(exc, match=msg):
        gp.fit(X, y)


def test_bad_predict_and_constructor():
    gp = GaussianProcess(SquaredExponential([1.0, 1.0]), optimize=False)
    with pytest.raises(NotFittedError, match="not fitted"):
        gp.predict(np.zeros((2, 2)))
    assert issubclass(NotFittedError, ValueError)
    with pytest.raises(ValueError, match="2 dimension"):
        gp.fit(np.zeros((3, 3)), np.zeros(3))
    gp.fit(np.random.default_rng(0).uniform(size=(4, 2)), np.zeros(4))
    with pytest.raises(ValueError, match="fitted on 2"):
        gp.predict(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="NaN"):
        gp.predict(np.array([[0.0, np.nan]]))
    with pytest.raises(ValueError, match="at most one"):
        gp.predict(np.zeros((2, 2)), return_std=True, return_cov=True)
    with pytest.raises(ValueError, match="noise_variance"):
        GaussianProcess(SquaredExponential(), noise_variance=-1.0)
    with pytest.raises(ValueError, match="noise_variance"):
        GaussianProcess(SquaredExponential(), noise_variance=float("nan"))
    with pytest.raises(TypeError, match="Kernel"):
        GaussianProcess("rbf")
    with pytest.raises(ValueError, match="noise_floor"):
        GaussianProcess(SquaredExponential(), noise_variance=1e-7)


def test_refactorizes_after_manual_hyperparameter_change():
    X, y, Xt = data(15)
    gp = GaussianProcess(SquaredExponential(0.5), noise_variance=0.1, optimize=False).fit(X, y)
    gp.kernel.lengthscale = 1.3
    ref = GaussianProcess(SquaredExponential(1.3), noise_variance=0.1, optimize=False).fit(X, y)
    np.testing.assert_allclose(gp.predict(Xt), ref.predict(Xt), rtol=1e-12)
    assert gp.log_marginal_likelihood() == pytest.approx(ref.log_marginal_likelihood(), rel=1e-12)


def test_save_load_round_trip(tmp_path):
    X, y, Xt = data(20, 2)
    gp = GaussianProcess(SquaredExponential([0.8, 1.0]) * Periodic(1.0, 2.0) + White(0.01), noise_variance=0.05,
                         normalize_y=True, max_iter=100).fit(X, y)
    path = gp.save(tmp_path / "gp.pt")
    assert [p.name for p in tmp_path.iterdir()] == ["gp.pt"]  # no temporary left behind
    gp2 = GaussianProcess.load(path)
    m1, s1 = gp.predict(Xt, return_std=True)
    m2, s2 = gp2.predict(Xt, return_std=True)
    np.testing.assert_array_equal(m1, m2)
    np.testing.assert_array_equal(s1, s2)
    assert gp2.log_marginal_likelihood() == gp.log_marginal_likelihood()
    assert gp2.hyperparameters() == gp.hyperparameters()
    assert gp2.normalize_y and gp2.learn_noise
    # unfitted models round-trip too
    GaussianProcess(SquaredExponential(), optimize=False).save(tmp_path / "empty.pt")
    assert not GaussianProcess.load(tmp_path / "empty.pt").fitted
    torch.save({"format": "something else"}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="difflens.gp.GaussianProcess"):
        GaussianProcess.load(tmp_path / "other.pt")


def test_to_device_and_dtype():
    X, y, Xt = data(10)
    gp = GaussianProcess(SquaredExponential(0.8), noise_variance=0.1, optimize=False).fit(X, y)
    ref = gp.predict(Xt)
    gp.to("cpu")
    assert gp.device.type == "cpu" and gp.L_.device.type == "cpu"
    np.testing.assert_array_equal(gp.predict(Xt), ref)
    if torch.cuda.is_available():  # pragma: no cover - no GPU in CI
        gpu = gp.to("cuda")
        np.testing.assert_allclose(gpu.predict(Xt), ref, rtol=1e-10)
