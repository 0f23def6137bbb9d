"""Eigendistortions and Jacobian products: every solver against the exact Fisher matrix."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest
import torch
import torch.nn.functional as F

import difflens as dl
from difflens.plot.eigendistortion import (
    display_eigendistortion,
    display_eigendistortion_all,
    plot_eigenvalues,
)
from difflens.synthesize import Eigendistortion
from difflens.synthesize.eigendistortion import eigenvalues_close
from difflens.synthesize.jacobian import JacobianOperator
from difflens.tools.io import CheckpointError

D = torch.float64


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


class ConvModel(torch.nn.Module):
    """Linear: zero-padded 2-channel 5x5 conv times a fixed gain field (no symmetric degeneracy)."""

    def __init__(self, size=16, dtype=D):
        super().__init__()
        g = _gen(1)
        self.register_buffer("w", torch.randn(2, 1, 5, 5, generator=g, dtype=dtype) / 5)
        self.register_buffer("gain", 0.5 + torch.rand(1, 2, size, size, generator=g, dtype=dtype))

    def forward(self, x):
        return F.conv2d(x, self.w, padding=2) * self.gain


class NonlinearModel(ConvModel):
    """Conv, softplus, divisive normalisation by a blurred energy, then a second conv."""

    def forward(self, x):
        y = F.softplus(4 * F.conv2d(x, self.w, padding=2))
        energy = F.avg_pool2d(y ** 2, 3, stride=1, padding=1).sum(1, keepdim=True)
        return F.conv2d(y / (0.1 + energy).sqrt(), self.w.transpose(0, 1), padding=2) * self.gain[:, :1]


def vector_map(x):
    """A flow-map-like nonlinear map of a (..., 3) state: four RK4 steps of Lorenz-63."""
    def f(s):
        a, b, c = s[..., 0], s[..., 1], s[..., 2]
        return torch.stack([10 * (b - a), a * (28 - c) - b, a * b - 8 / 3 * c], -1)
    dt = 0.01
    for _ in range(4):
        k1 = f(x); k2 = f(x + dt / 2 * k1); k3 = f(x + dt / 2 * k2); k4 = f(x + dt * k3)
        x = x + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return x


_DENSE: dict = {}


def dense_fisher(model, x):
    key = (id(model), x.shape, float(x.sum()))
    if key not in _DENSE:
        J = torch.autograd.functional.jacobian(model, x, vectorize=True).reshape(-1, x.numel())
        _DENSE[key] = (J.to(D), J.to(D).T @ J.to(D))
    return _DENSE[key]


IMG = torch.rand(1, 1, 16, 16, generator=_gen(2), dtype=D)
STATE = torch.tensor([1.0, 2.0, 20.0], dtype=D)
CASES = {"conv": (ConvModel().eval(), IMG), "nonlinear": (NonlinearModel().eval(), IMG),
         "vector": (vector_map, STATE)}


# -- Jacobian products -----------------------------------------------------------------
@pytest.mark.parametrize("mode", ["reverse", "forward", "auto"])
@pytest.mark.parametrize("case", ["nonlinear", "vector"])
def test_products_match_dense_jacobian(mode, case):
    model, x = CASES[case]
    J, Fm = dense_fisher(model, x)
    op = JacobianOperator(model, x, mode=mode)
    V = torch.randn(3, op.n, generator=_gen(), dtype=D)
    U = torch.randn(2, op.m, generator=_gen(), dtype=D)
    torch.testing.assert_close(op.jvp(V), V @ J.T)
    torch.testing.assert_close(op.jvp(V[0]), J @ V[0])
    torch.testing.assert_close(op.vjp(U), U @ J)
    torch.testing.assert_close(op.fisher(V), V @ Fm)
    assert (op.n_jvp, op.n_vjp, op.n_products) == (3 + 1 + 3, 2 + 3, 12)
    op.reset_counts()
    torch.testing.assert_close(op.jacobian(), J)
    assert op.n_products == min(op.m, op.n)


def test_jvp_matches_finite_differences():
    model, x = CASES["nonlinear"]
    op = JacobianOperator(model, x)
    v = torch.randn(x.numel(), generator=_gen(3), dtype=D)
    eps = 1e-6
    fd = (model(x + eps * v.view_as(x)) - model(x - eps * v.view_as(x))).flatten() / (2 * eps)
    torch.testing.assert_close(op.jvp(v), fd, rtol=1e-6, atol=1e-8)
    assert torch.autograd.gradcheck(lambda a: model(a), (x.clone().requires_grad_(),))


def test_jacobian_by_columns_when_output_is_larger():
    lift = lambda s: torch.cat([s, s ** 2, torch.sin(s)])
    op = JacobianOperator(lift, STATE)
    J = op.jacobian()
    torch.testing.assert_close(J, torch.autograd.functional.jacobian(lift, STATE))
    assert (op.n_jvp, op.n_vjp) == (3, 0)


def test_operator_errors():
    with pytest.raises(TypeError, match="floating-point"):
        JacobianOperator(vector_map, torch.arange(3))
    with pytest.raises(ValueError, match="does not depend"):
        JacobianOperator(lambda x: torch.ones(3), STATE)
    with pytest.raises(ValueError, match=r"shape \(3,\) or \(k, 3\)"):
        JacobianOperator(vector_map, STATE).jvp(torch.ones(4, dtype=D))
    with pytest.raises(ValueError, match="mode"):
        JacobianOperator(vector_map, STATE, mode="sideways")


# -- eigensolvers against the exact Fisher matrix -----------------------------------------
def _check_pairs(eig, Fm, exact_vals, tol_val, tol_vec):
    vecs = eig.eigendistortions.reshape(len(eig.eigenvalues), -1).to(D)
    lam = eig.eigenvalues.to(D)
    lmax = float(exact_vals[0])
    torch.testing.assert_close(vecs.norm(dim=1), torch.ones(len(vecs), dtype=D), atol=1e-6, rtol=0)
    gram = vecs @ vecs.T
    torch.testing.assert_close(gram, torch.eye(len(vecs), dtype=D), atol=1e-5, rtol=0)
    torch.testing.assert_close(lam, exact_vals[eig.eigenindex], atol=tol_val * lmax, rtol=0)
    resid = (vecs @ Fm - lam[:, None] * vecs).norm(dim=1)
    assert resid.max() <= tol_vec * lmax, resid
    assert torch.all(lam[:-1] >= lam[1:] - 1e-12), "eigenvalues must be descending"
    # sign convention: the largest-magnitude element of each eigendistortion is positive
    assert torch.all(vecs.gather(1, vecs.abs().argmax(1, keepdim=True)) > 0)


@pytest.mark.parametrize("case", ["conv", "nonlinear", "vector"])
def test_exact_matches_dense_eigh(case):
    model, x = CASES[case]
    J, Fm = dense_fisher(model, x)
    eig = Eigendistortion(x, model).synthesize("exact")
    n = x.numel()
    vals = torch.linalg.eigvalsh(Fm).flip(0)
    assert eig.eigendistortions.shape == (n, *(x.shape[1:] if x.ndim == 4 else x.shape))
    assert torch.equal(eig.eigenindex, torch.arange(n))
    torch.testing.assert_close(eig.jacobian, J)
    assert eig.n_products == min(J.shape)
    _check_pairs(eig, Fm, vals, 1e-10, 1e-9)


# (case, k, tol, eigenvalue error / λmax, residual / λmax). The nonlinear model's two smallest
# eigenvalues (1.0e-5, 1.9e-5 for λmax = 30) are closer than tol·λmax: Lanczos may stop on
# either, which the eigenvalue check (relative to λmax) accepts, as documented.
LANCZOS_CASES = [("conv", 1, 1e-10, 1e-10, 1e-6), ("conv", 3, 1e-10, 1e-10, 1e-6),
                 ("nonlinear", 1, 1e-7, 1e-6, 1e-4), ("vector", 1, 1e-7, 1e-12, 1e-12)]


@pytest.mark.parametrize("case,k,tol,tol_val,tol_vec", LANCZOS_CASES)
def test_lanczos_matches_exact(case, k, tol, tol_val, tol_vec):
    model, x = CASES[case]
    _, Fm = dense_fisher(model, x)
    vals = torch.linalg.eigvalsh(Fm).flip(0)
    eig = Eigendistortion(x, model).synthesize(k=k, tol=tol)
    n = x.numel()
    assert torch.equal(eig.eigenindex, torch.cat([torch.arange(k), torch.arange(n - k, n)]))
    assert eig.info["converged"]
    assert eig.n_products == 2 * eig.info["iterations"]  # one jvp + one vjp per iteration
    _check_pairs(eig, Fm, vals, tol_val, tol_vec)
    assert eigenvalues_close(eig.eigenvalues, vals[eig.eigenindex], vals[0]).all()


def test_lanczos_thick_restart_and_forward_mode():
    model, x = CASES["conv"]
    _, Fm = dense_fisher(model, x)
    vals = torch.linalg.eigvalsh(Fm).flip(0)
    eig = Eigendistortion(x, model, jvp_mode="forward").synthesize(k=2, basis_size=12, tol=1e-10)
    assert eig.info["converged"] and eig.info["iterations"] > 24  # restarted more than once
    assert eig.operator.mode == "forward"
    _check_pairs(eig, Fm, vals, 1e-10, 1e-6)


def designed_map(eigenvalues, seed=7):
    """A linear map of a (4, 6) input whose Fisher matrix has exactly ``eigenvalues``."""
    n = len(eigenvalues)
    Q = torch.linalg.qr(torch.randn(n, n, generator=_gen(seed), dtype=D))[0]
    A = Q.T * torch.as_tensor(eigenvalues, dtype=D).sqrt()[:, None]  # AᵀA = Q diag(λ) Qᵀ
    return (lambda a: A @ a.reshape(-1)), Q


@pytest.mark.parametrize("k", [1, 2])
def test_power_matches_exact(k):
    vals = torch.tensor([9.0, 4.0] + torch.linspace(3.5, 1.0, 20).tolist() + [0.5, 0.2], dtype=D)
    model, Q = designed_map(vals)
    x = torch.zeros(4, 6, dtype=D)
    eig = Eigendistortion(x, model).synthesize("power", k=k, max_iter=2000, tol=1e-13)
    assert eig.info["converged"]
    assert eig.n_products == 2 * k * eig.info["iterations"]
    _check_pairs(eig, Q @ torch.diag(vals) @ Q.T, vals, 1e-10, 1e-5)
    # eigenvectors are the designed ones, up to sign
    overlap = (eig.eigendistortions.reshape(2 * k, -1) @ Q)[:, eig.eigenindex].diagonal().abs()
    torch.testing.assert_close(overlap, torch.ones(2 * k, dtype=D), atol=1e-6, rtol=0)
    phase = eig.info["history"]["phase"]
    assert phase[0] == 0 and phase[-1] == 1


def test_randomized_svd_matches_exact_for_low_rank_model():
    W = torch.randn(6, 256, generator=_gen(4), dtype=D)
    model = lambda x: torch.tanh(W @ x.flatten() / 8)
    _, Fm = dense_fisher(model, IMG)
    vals = torch.linalg.eigvalsh(Fm).flip(0)
    eig = Eigendistortion(IMG, model).synthesize("randomized_svd", k=3, p=4, q=1)
    assert torch.equal(eig.eigenindex, torch.arange(3))
    assert eig.n_products == 2 * (3 + 4) * (1 + 2)
    _check_pairs(eig, Fm, vals, 1e-9, 1e-7)


def test_near_singular_blur_bottom_within_one_percent_definition():
    """A float32 blur: most eigenvalues are ~0; compare as documented in eigenvalues_close."""
    blur = dl.simulate.Gaussian(7, std=1.5, pad_mode="circular").eval()
    dl.tools.remove_grad(blur)
    x = IMG.float()
    ex = Eigendistortion(x, blur).synthesize("exact").eigenvalues.double()
    assert (ex < 1e-4 * ex[0]).sum() > 20  # a large, nearly degenerate near-null space
    eig = Eigendistortion(x, blur).synthesize()
    assert eigenvalues_close(eig.eigenvalues, ex[eig.eigenindex], ex[0]).all()
    assert eig.info["converged"] and eig.n_products < 200
    # power iteration with three times Lanczos' product budget is not there yet at the bottom
    with pytest.warns(UserWarning, match="max_iter"):
        pw = Eigendistortion(x, blur).synthesize("power", max_iter=3 * eig.n_products // 4)
    ok = eigenvalues_close(pw.eigenvalues, ex[pw.eigenindex], ex[0])
    assert ok[0] and not ok[1]


def test_eigenvalues_close_semantics():
    lam_max = 2.0
    assert eigenvalues_close(torch.tensor(1.0099), torch.tensor(1.0), lam_max)
    assert not eigenvalues_close(torch.tensor(1.02), torch.tensor(1.0), lam_max)
    # below 1e-4 * lam_max the tolerance is absolute: 0.01 * 1e-4 * 2 = 2e-6
    assert eigenvalues_close(torch.tensor(1.9e-6), torch.tensor(0.0), lam_max)
    assert not eigenvalues_close(torch.tensor(2.1e-6), torch.tensor(0.0), lam_max)


def test_degenerate_spectrum_and_invariant_subspace():
    eig = Eigendistortion(STATE, lambda s: 2 * s).synthesize()  # F = 4 I: breakdown at once
    torch.testing.assert_close(eig.eigenvalues, torch.full((2,), 4.0, dtype=D))
    assert eig.info["converged"] and eig.info["iterations"] <= 3


# -- conventions, randomness, shapes --------------------------------------------------------
def test_generator_reproducible_and_global_rng_untouched():
    model, x = CASES["nonlinear"]
    state = torch.random.get_rng_state()
    a = Eigendistortion(x, model).synthesize(max_iter=30, tol=0)
    b = Eigendistortion(x, model).synthesize(max_iter=30, tol=0, generator=_gen(0))
    c = Eigendistortion(x, model).synthesize(max_iter=30, tol=0, generator=_gen(5))
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.equal(a.eigendistortions, b.eigendistortions)
    assert not torch.equal(a.eigendistortions, c.eigendistortions)


@pytest.mark.parametrize("shape", [(3,), (2, 3), (1, 1, 6, 5), (1, 3, 4, 4), (2, 2, 3)])
def test_any_input_shape(shape):
    x = torch.rand(shape, generator=_gen(6), dtype=D) + 0.5
    model = lambda a: torch.tanh(a) * a.sum()
    eig = Eigendistortion(x, model).synthesize(k=1)
    dist_shape = x.shape[1:] if x.ndim == 4 else x.shape
    assert eig.eigendistortions.shape == (2, *dist_shape)
    assert (x + 3 * eig.eigendistortions).shape[0] == 2  # the tutorial's broadcast
    _, Fm = dense_fisher(model, x)
    vals = torch.linalg.eigvalsh(Fm).flip(0)
    torch.testing.assert_close(eig.eigenvalues, vals[[0, -1]], atol=1e-9 * vals[0], rtol=0)


def test_tutorial_calls_with_difflens_as_po():
    po = dl
    img = po.data.einstein()[..., 96:128, 96:128].contiguous()
    model = po.simulate.Gaussian(31, std=3.0, pad_mode="circular")
    po.tools.remove_grad(model)
    model.eval()
    eig = po.synthesize.Eigendistortion(img, model)
    eig.synthesize()
    assert eig.eigendistortions.shape == (2, 1, 32, 32)
    assert torch.equal(eig.eigenindex, torch.tensor([0, 1023]))
    assert eig.eigenvalues[0] > eig.eigenvalues[1]
    fig = po.imshow(img + 3 * eig.eigendistortions, title=["Maximum eigendistortion",
                                                           "Minimum eigendistortion"])
    assert len(fig.axes) == 2
    plt.close("all")


def test_agrees_with_plenoptic_exact():
    po = pytest.importorskip("plenoptic")
    model = dl.simulate.Gaussian(5, std=1.0, pad_mode="circular")
    ref_model = po.simulate.Gaussian(5, std=1.0, pad_mode="circular")
    for m in (model, ref_model):
        dl.tools.remove_grad(m)
    x = IMG[..., :8, :8].float().contiguous()
    ref = po.synthesize.Eigendistortion(x, ref_model)
    ref.synthesize("exact")
    eig = Eigendistortion(x, model).synthesize("exact")
    torch.testing.assert_close(eig.eigenvalues, ref.eigenvalues.to(eig.eigenvalues.dtype),
                               atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(eig.jacobian, ref.jacobian, atol=1e-6, rtol=1e-5)


# -- persistence, devices ---------------------------------------------------------------
def test_save_load_round_trip(tmp_path):
    model, x = CASES["conv"]
    eig = Eigendistortion(x, model).synthesize(k=2)
    path = eig.save(tmp_path / "eig.pt")
    new = Eigendistortion(x, model).load(path)
    for name in ("eigendistortions", "eigenvalues", "eigenindex"):
        assert torch.equal(getattr(new, name), getattr(eig, name))
    assert new.info["n_products"] == eig.info["n_products"]
    assert new.index_of(-1) == 3 and new.index_of(1) == 1
    with pytest.raises(ValueError, match="image differs"):
        Eigendistortion(x + 0.1, model).load(path)
    with pytest.raises(ValueError, match="model's output"):
        Eigendistortion(x, NonlinearModel().eval()).load(path)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="not a readable difflens save file"):
        Eigendistortion(x, model).load(bad)
    torch.save({"format": "something else"}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a 'difflens.synthesize.Eigendistortion'"):
        Eigendistortion(x, model).load(tmp_path / "other.pt")


def test_to_casts_and_resynthesizes():
    model, x = ConvModel(dtype=torch.float32).eval(), IMG.float()
    eig = Eigendistortion(x, model).synthesize()
    eig.to(torch.float64)
    assert eig.image.dtype == D and eig.eigendistortions.dtype == D
    eig.synthesize("exact")
    assert eig.eigendistortions.dtype == D


# -- errors -------------------------------------------------------------------------------
class Trainable(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Parameter(torch.ones(()))

    def forward(self, x):
        return self.a * x


def test_bad_input_errors(tmp_path):
    model, x = CASES["conv"]
    with pytest.raises(TypeError, match="floating-point"):
        Eigendistortion(torch.ones(1, 1, 4, 4, dtype=torch.long), model)
    with pytest.raises(ValueError, match="batch of one"):
        Eigendistortion(IMG.repeat(2, 1, 1, 1), model)
    with pytest.raises(ValueError, match="NaN"):
        Eigendistortion(torch.full((3,), float("nan"), dtype=D), vector_map)
    with pytest.raises(ValueError, match="remove_grad"):
        Eigendistortion(STATE, Trainable())
    with pytest.raises(ValueError, match="deterministic"):
        Eigendistortion(IMG, torch.nn.Dropout(0.5))
    with pytest.raises(ValueError, match="torch.Tensor"):
        Eigendistortion(STATE, lambda s: (s, s))
    eig = Eigendistortion(x, model)
    with pytest.raises(ValueError, match="method"):
        eig.synthesize("qr")
    with pytest.raises(ValueError, match="2k <= n"):
        Eigendistortion(STATE, vector_map).synthesize(k=2)
    with pytest.raises(ValueError, match="exact_max_input"):
        eig.synthesize("exact", exact_max_input=100)
    with pytest.raises(ValueError, match="synthesize"):
        eig.index_of(0)
    with pytest.raises(ValueError, match="nothing to display"):
        display_eigendistortion(eig)
    eig.synthesize(max_iter=20)
    with pytest.raises(ValueError, match="not synthesized"):
        eig.index_of(5)


def test_power_warns_when_not_converged():
    model, x = CASES["nonlinear"]
    with pytest.warns(UserWarning, match="max_iter"):
        Eigendistortion(x, model).synthesize("power", max_iter=5)


# -- figures -------------------------------------------------------------------------------
def test_figures_for_images_and_vectors():
    model, x = CASES["nonlinear"]
    eig = Eigendistortion(x, model).synthesize()
    fig = display_eigendistortion(eig, eigenindex=-1, alpha=3.0)
    assert "Eigendistortion[-1]" in fig.axes[0].get_title()
    fig = display_eigendistortion_all(eig, eigenindex=[0, -1], alpha=[5.0, 2.0])
    assert len(fig.axes) == 6 and not fig.axes[0].get_visible()
    with pytest.raises(ValueError, match="alpha"):
        display_eigendistortion_all(eig, eigenindex=[0, -1], alpha=[1.0])
    vec = Eigendistortion(STATE, vector_map).synthesize("exact")
    assert len(display_eigendistortion(vec, 2, alpha=0.5).axes) == 1
    assert len(display_eigendistortion_all(vec, [0, 1, 2]).axes) == 3
    assert plot_eigenvalues(vec).axes[0].get_yscale() == "log"
    plt.close("all")
