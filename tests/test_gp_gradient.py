"""The fast LML gradient (analytic ``dLML/dK`` from ``potri`` + fused kernel backwards) against
plain autograd through ``torch.linalg.cholesky`` on op-by-op kernels, and against central
finite differences, on random kernels: every kernel of ``difflens.gp`` and of
``difflens.gp.sklearn_kernels``, alone and in sums, products and with white noise.

Kernels without a fused backward (periodic, linear, rational quadratic, ...) go through
ordinary autograd inside the kernel; the LML's own backward is analytic for all of them.
"""

import math

import numpy as np
import pytest
import torch

import difflens.gp.sklearn_kernels as dk
from difflens.gp import (
    Brownian,
    Constant,
    GaussianProcess,
    GaussianProcessRegressor,
    Linear,
    Matern,
    Periodic,
    SquaredExponential,
    White,
)
from difflens.gp.linalg import log_marginal_likelihood


def reference_lml(K: torch.Tensor, noise: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``log N(y | 0, K + noise I)`` written with plain torch ops (autograd through the Cholesky)."""
    A = K + noise * torch.eye(K.shape[0], dtype=K.dtype)
    L = torch.linalg.cholesky(A)
    alpha = torch.cholesky_solve(y[:, None], L)[:, 0]
    return -0.5 * (y @ alpha) - L.diagonal().log().sum() - 0.5 * y.shape[0] * math.log(2 * math.pi)


def draw(n: int, dim: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(n, dim, generator=g, dtype=torch.float64) * 4
    y = torch.sin(2 * X[:, 0]) + X.sum(1) * 0.3 + 0.1 * torch.randn(n, generator=g, dtype=torch.float64)
    return X, y


def randomize(module: torch.nn.Module, seed: int) -> None:
    """Set every raw (log) hyperparameter to a random value in [-1, 1]."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.rand(p.shape, generator=g, dtype=p.dtype) * 2 - 1)


def se_op_by_op(k: SquaredExponential | Matern, x: torch.Tensor) -> torch.Tensor:
    """The stationary kernels as textbook formulas (no fused operator)."""
    d = (x[:, None, :] - x[None, :, :]) / k.lengthscale
    r2 = d.square().sum(-1)
    r = torch.where(r2 > 0, torch.where(r2 > 0, r2, 1.0).sqrt(), 0.0)
    nu = getattr(k, "nu", None)
    if nu is None:
        return k.variance * torch.exp(-0.5 * r2)
    s = math.sqrt(2 * nu) * r
    poly = {0.5: 1.0, 1.5: 1 + s, 2.5: 1 + s + s.square() / 3}[nu]
    return k.variance * poly * torch.exp(-s)


def op_by_op(k, x: torch.Tensor) -> torch.Tensor:
    """``k(x)`` with the fused stationary kernels replaced by their textbook formulas."""
    from difflens.gp.kernels import Product, Sum

    if isinstance(k, Sum):
        return op_by_op(k.k1, x) + op_by_op(k.k2, x)
    if isinstance(k, Product):
        return op_by_op(k.k1, x) * op_by_op(k.k2, x)
    if isinstance(k, (SquaredExponential, Matern)):
        return se_op_by_op(k, x)
    return k(x)


GP_KERNELS = [
    (lambda: SquaredExponential(), 1),
    (lambda: SquaredExponential([1.0, 1.0, 1.0]), 3),
    (lambda: Matern(0.5, [1.0, 1.0]), 2),
    (lambda: Matern(1.5), 1),
    (lambda: Matern(2.5, [1.0, 1.0, 1.0]), 3),
    (lambda: Periodic(1.0, 2.0), 1),
    (lambda: Linear() + Constant(), 2),
    (lambda: Brownian() + White(), 1),
    (lambda: SquaredExponential() * Periodic(1.0, 3.0) + White(), 1),
    (lambda: Matern(1.5, [1.0, 1.0]) + SquaredExponential([1.0, 1.0]) * Matern(0.5), 2),
]


@pytest.mark.parametrize("make, dim", GP_KERNELS, ids=lambda v: repr(v()) if callable(v) else str(v))
@pytest.mark.parametrize("seed", [0, 1])
def test_gaussian_process_gradient_equals_autograd_and_finite_differences(make, dim, seed):
    X, y = draw(14 if dim == 1 else 18, dim, seed)
    if isinstance(make(), Brownian):
        X = X - 2.0  # both sides of the origin
    kernel = make()
    randomize(kernel, seed + 10)
    gp = GaussianProcess(kernel, noise_variance=0.05, optimize=False).fit(X, y)
    params = [p for p in gp.parameters() if p.requires_grad]
    fast = torch.autograd.grad(gp._lml_tensor(), params)
    ref_value = reference_lml(op_by_op(gp.kernel, X), gp.noise_variance, y)
    ref = torch.autograd.grad(ref_value, params)
    assert float(gp._lml_tensor()) == pytest.approx(float(ref_value), rel=1e-11)
    for f, r in zip(fast, ref):
        torch.testing.assert_close(f, r, rtol=1e-9, atol=1e-9)
    # central finite differences of the LML value, parameter by parameter
    h = 1e-5
    with torch.no_grad():
        for p, f in zip(params, fast):
            for i in range(p.numel()):
                flat = p.view(-1)
                old = float(flat[i])
                flat[i] = old + h
                up = float(gp._lml_tensor())
                flat[i] = old - h
                down = float(gp._lml_tensor())
                flat[i] = old
                assert float(f.reshape(-1)[i]) == pytest.approx((up - down) / (2 * h), rel=1e-5, abs=1e-6)


SK_KERNELS = [
    (lambda: dk.ConstantKernel(1.0) * dk.RBF(1.0) + dk.WhiteKernel(1e-2), 1),
    (lambda: dk.ConstantKernel(1.0) * dk.RBF([1.0, 1.0, 1.0]) + dk.WhiteKernel(1e-2), 3),
    (lambda: dk.Matern([1.0, 1.0], nu=0.5) * dk.ConstantKernel(2.0), 2),
    (lambda: dk.Matern(1.0, nu=1.5) + dk.WhiteKernel(0.1), 1),
    (lambda: dk.Matern([1.0, 1.0], nu=2.5) + dk.Matern(1.0, nu=np.inf), 2),
    (lambda: dk.Matern(1.0, nu=0.8) + dk.WhiteKernel(0.1), 1),  # general nu: Bessel, no fused path
    (lambda: dk.RationalQuadratic(1.0, 1.5) + dk.WhiteKernel(0.1), 2),
    (lambda: dk.ExpSineSquared(1.0, 3.0) * dk.RBF(2.0) + dk.WhiteKernel(0.05), 1),
    (lambda: dk.DotProduct(0.7) ** 2 + dk.WhiteKernel(0.1), 2),
    (lambda: dk.ConstantKernel(0.3) + dk.PairwiseKernel(0.4, metric="rbf") + dk.WhiteKernel(0.1), 2),
    (lambda: (dk.RBF(1.0) + dk.ConstantKernel(0.5)) * dk.Matern(2.0, nu=2.5) + dk.WhiteKernel(0.1), 1),
]


@pytest.mark.parametrize("make, dim", SK_KERNELS, ids=lambda v: repr(v()) if callable(v) else str(v))
def test_regressor_gradient_equals_autograd_and_finite_differences(make, dim):
    X, y = draw(15, dim, dim)
    gpr = GaussianProcessRegressor(make(), alpha=1e-4, optimizer=None).fit(X.numpy(), y.numpy())
    g = np.random.default_rng(dim)
    theta = gpr.kernel_.theta + g.uniform(-0.7, 0.7, gpr.kernel_.theta.shape)
    lml, grad = gpr.log_marginal_likelihood(theta, eval_gradient=True)
    # reference: the kernel's op-by-op matrix (no fused operator, noise as a dense diagonal) and
    # autograd through torch.linalg.cholesky
    th = torch.tensor(theta, requires_grad=True)
    kernel = gpr.kernel_.clone_with_theta(theta)
    K = kernel.evaluate(X, None, th, fused=False)
    ref_value = reference_lml(K, torch.tensor(1e-4, dtype=torch.float64), y)
    (ref,) = torch.autograd.grad(ref_value, th)
    assert lml == pytest.approx(float(ref_value), rel=1e-11)
    np.testing.assert_allclose(grad, ref.numpy(), rtol=1e-8, atol=1e-9)
    h = 1e-5
    numeric = np.array([(gpr.log_marginal_likelihood(theta + h * e) - gpr.log_marginal_likelihood(theta - h * e))
                        / (2 * h) for e in np.eye(theta.shape[0])])
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("outputs", [1, 3])
@pytest.mark.parametrize("vector_noise", [False, True])
def test_analytic_lml_backward_equals_cholesky_autograd(outputs, vector_noise):
    """The ``potri`` backward alone, for a random PSD ``K``, (N, T) targets and per-sample noise."""
    g = torch.Generator().manual_seed(outputs + 2 * vector_noise)
    n = 30
    A = torch.randn(n, n, generator=g, dtype=torch.float64)
    K0 = A @ A.mT / n
    y = torch.randn(n, outputs, generator=g, dtype=torch.float64)
    noise0 = torch.rand(n if vector_noise else (), generator=g, dtype=torch.float64) * 0.1 + 0.01
    S = torch.randn(n, n, generator=g, dtype=torch.float64)
    S = S + S.mT  # a symmetric direction: every kernel matrix's perturbation is one

    def fast(t, noise):
        return log_marginal_likelihood(K0 + t * S, noise, y)

    def ref(t, noise):
        A = K0 + t * S + torch.diag_embed(noise.expand(n))
        L = torch.linalg.cholesky(A)
        alpha = torch.cholesky_solve(y, L)
        return -0.5 * (y * alpha).sum() - outputs * L.diagonal().log().sum() - 0.5 * n * outputs * math.log(2 * math.pi)

    t = torch.tensor(0.0, dtype=torch.float64, requires_grad=True)
    noise = noise0.clone().requires_grad_(True)
    gf = torch.autograd.grad(fast(t, noise), (t, noise))
    gr = torch.autograd.grad(ref(t, noise), (t, noise))
    for a, b in zip(gf, gr):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
