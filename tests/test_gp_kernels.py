"""Kernels against scikit-learn's kernels and exact formulas; PSD-ness, algebra, errors."""

import math

import numpy as np
import pytest
import torch
from sklearn.gaussian_process import kernels as sk

from difflens.gp import (
    Brownian,
    Constant,
    Kernel,
    Linear,
    Matern,
    Periodic,
    Product,
    SquaredExponential,
    Sum,
    White,
    kernel_from_spec,
)

RNG = np.random.default_rng(0)
X1 = RNG.uniform(-2, 2, (9, 3))
X2 = RNG.uniform(-2, 2, (6, 3))
X1_1D = RNG.uniform(-2, 2, (9, 1))
X2_1D = RNG.uniform(-2, 2, (6, 1))


def t(a):
    return torch.as_tensor(a, dtype=torch.float64)


PAIRS = [
    (lambda: SquaredExponential(0.7, 1.8), sk.ConstantKernel(1.8) * sk.RBF(0.7), False),
    (lambda: SquaredExponential([0.5, 1.2, 2.0], 0.6), sk.ConstantKernel(0.6) * sk.RBF([0.5, 1.2, 2.0]), False),
    (lambda: Matern(0.5, 0.8, 1.3), sk.ConstantKernel(1.3) * sk.Matern(0.8, nu=0.5), False),
    (lambda: Matern(1.5, [0.5, 1.0, 1.5], 1.1), sk.ConstantKernel(1.1) * sk.Matern([0.5, 1.0, 1.5], nu=1.5), False),
    (lambda: Matern(2.5, 1.7, 0.9), sk.ConstantKernel(0.9) * sk.Matern(1.7, nu=2.5), False),
    (lambda: Periodic(0.9, 2.5, 1.4), sk.ConstantKernel(1.4) * sk.ExpSineSquared(0.9, 2.5), True),
    (lambda: Linear(0.7), sk.ConstantKernel(0.7) * sk.DotProduct(sigma_0=1e-30), False),
    (lambda: Linear(0.7) + Constant(0.3), sk.ConstantKernel(0.7) * sk.DotProduct(math.sqrt(0.3 / 0.7)), False),
    (lambda: White(0.4), sk.WhiteKernel(0.4), False),
    (lambda: Constant(2.2), sk.ConstantKernel(2.2), False),
    (lambda: SquaredExponential(0.7) * Periodic(1.0, 3.0) + White(0.1),
     sk.RBF(0.7) * sk.ExpSineSquared(1.0, 3.0) + sk.WhiteKernel(0.1), True),
    (lambda: 2.0 * Matern(1.5, 0.6) + Linear(0.2), sk.ConstantKernel(2.0) * sk.Matern(0.6, nu=1.5)
     + sk.ConstantKernel(0.2) * sk.DotProduct(1e-30), False),
]


@pytest.mark.parametrize("make,ref,only_1d", PAIRS, ids=[f"pair{i}" for i in range(len(PAIRS))])
@pytest.mark.parametrize("one_d", [False, True])
def test_kernel_matches_sklearn(make, ref, only_1d, one_d):
    k = make()
    if one_d and k.input_dim not in (None, 1):
        pytest.skip("ARD kernel for 3-D inputs")
    if only_1d and not one_d:
        pytest.skip("ExpSineSquared uses the Euclidean distance in D > 1 (not PSD); ours is a product")
    a, b = (X1_1D, X2_1D) if one_d else (X1, X2)
    np.testing.assert_allclose(k(t(a)).detach().numpy(), ref(a), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(k(t(a), t(b)).detach().numpy(), ref(a, b), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(k.diag(t(a)).detach().numpy(), ref.diag(a), rtol=1e-12, atol=1e-14)


def test_one_dimensional_vector_input_is_a_column():
    k = SquaredExponential(0.5)
    x = torch.linspace(0, 1, 5, dtype=torch.float64)
    assert torch.equal(k(x), k(x[:, None]))


def test_brownian_is_min():
    x = t(RNG.uniform(0, 5, 8))
    y = t(RNG.uniform(0, 5, 5))
    k = Brownian(1.0)
    np.testing.assert_array_equal(k(x, y).detach().numpy(), np.minimum(x.numpy()[:, None], y.numpy()[None, :]))
    k.variance = 2.5
    np.testing.assert_allclose(k(x).detach().numpy(), 2.5 * np.minimum(x.numpy()[:, None], x.numpy()[None, :]))
    np.testing.assert_allclose(k.diag(x).detach().numpy(), 2.5 * x.numpy())
    # two independent motions: no covariance across the origin
    assert float(Brownian()(t([-1.0]), t([2.0])).detach()) == 0.0
    assert float(Brownian()(t([-1.0]), t([-3.0])).detach()) == 1.0
    with pytest.raises(ValueError, match="1 dimension"):
        Brownian()(t(X1))


ALL = [SquaredExponential(0.5), SquaredExponential([0.5, 1.0, 2.0]), Matern(0.5, 0.3), Matern(1.5, 0.7),
       Matern(2.5, [1.0, 0.4, 0.9]), Periodic(0.8, 1.3), Linear(1.0), White(0.2), Constant(0.4),
       SquaredExponential(1.0) * Periodic(1.0, 2.0) + Linear(0.1)]


@pytest.mark.parametrize("k", ALL, ids=lambda k: type(k).__name__)
def test_psd_symmetric_and_diag(k):
    x = t(np.concatenate([RNG.uniform(-3, 3, (40, 3)), X1[:3]]))  # with duplicates
    K = k(x).detach()
    assert torch.allclose(K, K.mT, rtol=0, atol=1e-14)
    ev = torch.linalg.eigvalsh(K)
    assert ev.min() >= -1e-10 * max(1.0, float(ev.max()))
    np.testing.assert_allclose(k.diag(x).detach().numpy(), K.diagonal().numpy(), rtol=1e-12, atol=1e-15)


def test_periodic_multi_d_is_product_of_1d():
    k = Periodic(0.8, 1.7, 1.3)
    x, y = t(X1), t(X2)
    prod = torch.ones(9, 6, dtype=torch.float64)
    for d in range(3):
        prod = prod * Periodic(0.8, 1.7)(x[:, d:d + 1], y[:, d:d + 1])
    assert torch.allclose(k(x, y), 1.3 * prod, rtol=1e-12)


def test_brownian_psd_on_both_sides():
    x = t(np.linspace(-3, 4, 50))
    ev = torch.linalg.eigvalsh(Brownian(0.7)(x).detach())
    assert ev.min() >= -1e-12


def test_sum_and_product():
    a, b = SquaredExponential(0.6, 1.5), Matern(1.5, 0.9)
    x, y = t(X1), t(X2)
    s, p = a + b, a * b
    assert isinstance(s, Sum) and isinstance(p, Product)
    assert torch.allclose(s(x, y), a(x, y) + b(x, y))
    assert torch.allclose(p(x, y), a(x, y) * b(x, y))
    assert torch.allclose(p.diag(x), a.diag(x) * b.diag(x))
    scaled = 3.0 * a
    assert torch.allclose(scaled(x, y), 3.0 * a(x, y))
    assert set(s.hyperparameters()) == {"k1.lengthscale", "k1.variance", "k2.lengthscale", "k2.variance"}
    # parameters are shared, not copied: gradients reach both kernels
    (s(x).sum() + p(x).sum()).backward()
    assert a.log_lengthscale.grad is not None and b.log_variance.grad is not None
    with pytest.raises(TypeError, match="combine"):
        a + "x"
    with pytest.raises(ValueError, match="3-D and 2-D"):
        SquaredExponential([1.0, 1.0, 1.0]) + SquaredExponential([1.0, 1.0])


def test_hyperparameters_positive_and_settable():
    k = SquaredExponential([1.0, 2.0], 3.0)
    assert torch.allclose(k.lengthscale, t([1.0, 2.0]))
    k.lengthscale = [0.5, 0.25]
    assert torch.allclose(k.log_lengthscale, t([0.5, 0.25]).log())
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="variance"):
            SquaredExponential(1.0, bad)
    with pytest.raises(ValueError, match="shape"):
        k.lengthscale = [1.0, 2.0, 3.0]
    with pytest.raises(ValueError, match="nu"):
        Matern(nu=2.0)


def test_wrong_input_dimension():
    k = SquaredExponential([1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="3 dimension"):
        k(t(RNG.uniform(size=(4, 2))))
    with pytest.raises(ValueError, match="same number of input dimensions"):
        Matern(1.5)(t(X1), t(X1_1D))
    with pytest.raises(ValueError, match="shape"):
        SquaredExponential()(torch.zeros(2, 2, 2, dtype=torch.float64))
    with pytest.raises(TypeError, match="torch.Tensor"):
        SquaredExponential()(np.zeros((3, 1)))


def test_spec_round_trip():
    k = SquaredExponential([0.3, 0.4, 0.5], 1.2) * Periodic(0.7, 2.1) + Matern(2.5, 0.8) + White(0.01)
    k2 = kernel_from_spec(k.spec())
    x = t(X1)
    assert torch.allclose(k(x), k2(x), rtol=1e-14)
    with pytest.raises(ValueError, match="not a kernel spec"):
        kernel_from_spec({"type": "Nope"})


@pytest.mark.parametrize("k", [Matern(0.5, 0.5), Matern(1.5, [0.5, 0.7]), Matern(2.5, 1.0), Periodic(1.0, 1.0),
                               SquaredExponential([0.3, 0.4])])
def test_gradients_finite_at_duplicate_points(k):
    x = t(np.repeat(RNG.uniform(size=(3, 2)), 2, axis=0))
    k(x).sum().backward()
    for p in k.parameters():
        assert torch.isfinite(p.grad).all()


def test_kernel_is_module():
    k = SquaredExponential(1.0) + White(0.1)
    assert isinstance(k, (Kernel, torch.nn.Module))
    assert len(list(k.parameters())) == 3
    assert "lengthscale=1" in repr(k)


@pytest.mark.parametrize("kind", ["se", "m12", "m32", "m52"])
@pytest.mark.parametrize("dim", [1, 3])
def test_fused_stationary_gradcheck(kind, dim):
    from difflens.gp.stationary import stationary_matrix

    g = torch.Generator().manual_seed(dim)
    a = torch.randn(6, dim, dtype=torch.float64, generator=g).requires_grad_(True)
    b = torch.randn(4, dim, dtype=torch.float64, generator=g).requires_grad_(True)
    lv = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b, lv: stationary_matrix(a, b, lv, kind), (a, b, lv))
    assert torch.autograd.gradcheck(lambda a, lv: stationary_matrix(a, None, lv, kind), (a, lv))


@pytest.mark.parametrize("k", [SquaredExponential([0.6, 1.3, 0.9], 1.7), Matern(0.5, 0.8, 1.2),
                               Matern(1.5, [0.5, 0.9, 2.0]), Matern(2.5, 1.1, 0.7)], ids=str)
def test_fused_gradient_matches_op_by_op_autograd(k):
    """The fused backward equals autograd through the textbook formula."""
    x = t(np.concatenate([X1, X1[:2]]))  # duplicates included
    G = t(RNG.standard_normal((11, 11)))
    (k(x) * G).sum().backward()
    fused = [p.grad.clone() for p in k.parameters()]
    for p in k.parameters():
        p.grad = None
    ls, var = k.lengthscale, k.variance
    d = (x[:, None, :] - x[None, :, :]) / ls
    r2 = d.square().sum(-1)
    r = torch.where(r2 > 0, torch.where(r2 > 0, r2, 1.0).sqrt(), 0.0)
    nu = getattr(k, "nu", None)
    if nu is None:
        K = var * torch.exp(-0.5 * r2)
    elif nu == 0.5:
        K = var * torch.exp(-r)
    elif nu == 1.5:
        K = var * (1 + math.sqrt(3) * r) * torch.exp(-math.sqrt(3) * r)
    else:
        K = var * (1 + math.sqrt(5) * r + 5 / 3 * r2) * torch.exp(-math.sqrt(5) * r)
    (K * G).sum().backward()
    for f, p in zip(fused, k.parameters()):
        torch.testing.assert_close(f, p.grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_close_pairs_far_from_the_origin_are_exact(dtype):
    """Duplicates and near-duplicates far from 0 lose every digit in |a|^2 + |b|^2 - 2ab; not here."""
    from difflens.gp import Matern

    g = torch.Generator().manual_seed(0)
    base = torch.randn(6, 3, generator=g, dtype=torch.float64) + 300.0
    x = torch.cat([base, base[:3], base[:3] + 1e-4]).to(dtype)  # exact and near duplicates, off the diagonal
    k = Matern(nu=0.5, lengthscale=1.0, variance=1.0).to(dtype)
    with torch.no_grad():
        K = k(x)
        r = torch.cdist(x.double(), x.double(), compute_mode="donot_use_mm_for_euclid_dist")
    np.testing.assert_allclose(K.double().numpy(), torch.exp(-r).numpy(), rtol=1e-12 if dtype == torch.float64
                               else 1e-6, atol=0)
    assert float(K[0, 6]) == 1.0  # a duplicate covaries fully
