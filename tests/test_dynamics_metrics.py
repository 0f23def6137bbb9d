"""VPT, error growth, attractor statistics, the dataset builder and grey-box identification."""

import math

import numpy as np
import pytest
import torch

from difflens.dynamics import (
    Lorenz63,
    attractor_report,
    error_growth,
    fit_greybox,
    integrate,
    make_dataset,
    nrmse,
    return_map,
    valid_prediction_time,
    wasserstein_1d,
)
from difflens.dynamics.greybox import segment_observations
from difflens.dynamics.metrics import local_maxima

STD = torch.tensor([2.0, 4.0, 8.0], dtype=torch.float64)




def test_vpt_on_synthetic_exponential_errors():
    dt, lam, T = 0.01, 0.9056, 800
    lead = (torch.arange(T, dtype=torch.float64) + 1) * dt
    growth = 0.01 * torch.exp(lam * lead)  # normalised error in every variable
    truth = torch.zeros(2, T, 3, dtype=torch.float64)
    pred = truth + growth[None, :, None] * STD
    pred[1] = pred[1] * 2.0  # the second forecast is twice as wrong: crosses ln(2)/lambda earlier
    vpt = valid_prediction_time(pred, truth, STD, dt, lam)
    exact = torch.tensor([math.log(50.0), math.log(25.0)], dtype=torch.float64)  # in Lyapunov times
    assert torch.allclose(vpt, exact, atol=lam * dt)
    assert torch.allclose(nrmse(pred, truth, STD)[0], growth)


def test_vpt_edge_cases():
    truth = torch.zeros(3, 50, 3, dtype=torch.float64)
    pred = truth.clone()
    pred[1, 20:] = float("nan")  # a blown-up forecast counts as wrong from there
    pred[2, 0] = 10.0  # wrong from the first step
    vpt = valid_prediction_time(pred, truth, STD, 0.02, 1.0)
    assert vpt.tolist() == pytest.approx([50 * 0.02, 20 * 0.02, 0.0])  # never crossed -> full horizon
    with pytest.raises(ValueError, match="same shape"):
        valid_prediction_time(pred[:, :10], truth, STD, 0.02)
    with pytest.raises(ValueError, match="positive"):
        nrmse(pred, truth, torch.zeros(3))


def test_error_growth_quantiles():
    pred = torch.arange(12, dtype=torch.float64).reshape(4, 1, 3).expand(4, 5, 3) * STD
    g = error_growth(pred, torch.zeros_like(pred), STD)
    e = nrmse(pred, torch.zeros_like(pred), STD)[:, 0]
    assert torch.allclose(g["median"], torch.full((5,), float(e.median() + e.sort().values[2]) / 2, dtype=torch.float64))
    assert torch.allclose(g["mean"], torch.full((5,), float(e.mean()), dtype=torch.float64))


def test_wasserstein_matches_scipy():
    from scipy.stats import wasserstein_distance

    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(4000, generator=g), torch.randn(3000, generator=g) * 1.5 + 0.3
    assert float(wasserstein_1d(a, b, n_quantiles=4000)) == pytest.approx(
        wasserstein_distance(a.numpy(), b.numpy()), rel=0.02)


def test_local_maxima_and_return_map():
    t = torch.linspace(0, 20 * math.pi, 20001, dtype=torch.float64)
    amp = 1 + 0.5 * torch.sin(0.05 * t)
    z = amp * torch.sin(t)
    m = local_maxima(z)
    peaks = t[torch.arange(10) * 2000 + 500]  # sin peaks at pi/2 + 2 pi k
    assert m.shape == (10,) and torch.allclose(m, (1 + 0.5 * torch.sin(0.05 * peaks)), atol=1e-3)
    rm = return_map(z)
    assert rm.shape == (9, 2) and torch.equal(rm[1:, 0], rm[:-1, 1])


def test_attractor_report_separates_attractor_fixed_point_and_cycle():
    f = Lorenz63()
    x0 = torch.tensor([[1.0, 1.0, 20.0], [-2.0, 3.0, 25.0]], dtype=torch.float64)
    with torch.no_grad():
        runs = integrate(f, x0, torch.arange(6000, dtype=torch.float64) * 0.01)[1000:].transpose(0, 1)
    ref, run = runs[0], runs[1]
    std = ref.std(0)
    assert attractor_report(run, ref, std)["on_attractor"]
    fixed = f.fixed_points()[1].expand(4000, 3)
    rep = attractor_report(fixed, ref, std)
    assert not rep["on_attractor"] and rep["spread_ratio_min"] == 0
    tt = torch.arange(4000, dtype=torch.float64) * 0.01
    cycle = torch.stack([8 * torch.sin(tt), 8 * torch.cos(tt), 24 + 8 * torch.sin(2 * tt)], -1)
    rep = attractor_report(cycle, ref, std)
    assert not rep["on_attractor"] and rep["distinct_maxima_second_half"] < 20
    bad = run.clone()
    bad[10] = float("inf")
    assert not attractor_report(bad, ref, std)["finite"]


def test_dataset_splits_are_disjoint_normalised_and_seeded():
    kw = dict(n_train=3, n_val=2, n_test=2, train_samples=50, test_samples=40, dt=0.02, spinup=5.0)
    d1 = make_dataset(torch.Generator().manual_seed(3), **kw)
    d2 = make_dataset(torch.Generator().manual_seed(3), **kw)
    d3 = make_dataset(torch.Generator().manual_seed(4), **kw)
    assert d1.train.shape == (3, 50, 3) and d1.val.shape == (2, 50, 3) and d1.test.shape == (2, 40, 3)
    assert torch.equal(d1.train, d2.train) and not torch.equal(d1.train, d3.train)
    starts = torch.cat([d1.train[:, 0], d1.val[:, 0], d1.test[:, 0]])
    assert torch.cdist(starts, starts).add(torch.eye(7) * 1e9).min() > 1e-3  # no shared initial condition
    z = d1.normalise(d1.train).reshape(-1, 3)
    assert torch.allclose(z.mean(0), torch.zeros(3, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(d1.denormalise(d1.normalise(d1.val)), d1.val)
    # the trajectories follow the system: one RK4 step of dt/20 substeps reproduces the next sample
    with torch.no_grad():
        nxt = integrate(Lorenz63(), d1.test[:, 0], torch.tensor([0.0, 0.02], dtype=torch.float64),
                        step_size=0.001)[-1]
    assert torch.allclose(nxt, d1.test[:, 1], atol=1e-9)
    with pytest.raises(TypeError, match="torch.Generator"):
        make_dataset(3, **kw)


def test_greybox_recovers_sigma_rho_beta_from_clean_data():
    d = make_dataset(torch.Generator().manual_seed(0), n_train=2, n_val=1, n_test=1, train_samples=201,
                     test_samples=2, dt=0.01, spinup=5.0)
    res = fit_greybox(d.train, 0.01, segment=10, max_iter=30)
    assert max(res.relative_errors()) < 1e-4  # target 1%: clean data does far better
    assert res.loss < 1e-9
    W = res.model.weight.detach()
    zero = torch.tensor([[0, 0, 1, 1, 1], [0, 0, 1, 0, 1], [1, 1, 0, 1, 0]], dtype=torch.bool)
    assert W[zero].abs().max() < 1e-3  # the monomials Lorenz-63 does not use get ~zero weight


def test_greybox_bad_input_and_segments():
    obs = torch.randn(2, 31, 3, dtype=torch.float64)
    assert segment_observations(obs, 10).shape == (6, 11, 3)
    with pytest.raises(ValueError, match="segment"):
        segment_observations(obs, 40)
    obs[0, 3, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        fit_greybox(obs, 0.01)


def test_nrmse_against_numpy():
    g = torch.Generator().manual_seed(5)
    a, b = torch.randn(3, 7, 3, generator=g, dtype=torch.float64), torch.randn(3, 7, 3, generator=g,
                                                                             dtype=torch.float64)
    ref = np.sqrt((((a - b) / STD).numpy() ** 2).mean(-1))
    assert np.allclose(nrmse(a, b, STD).numpy(), ref)
