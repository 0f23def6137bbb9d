"""difflens.assim: Kalman filter and RTS smoother against filterpy, ensemble filters on Lorenz-63, bad inputs."""

import numpy as np
import pytest
import torch

from difflens.assim import (HMM, EnKF, ExtKF, FilterDivergenceError, LETKF, ParticleFilter, ParticleWeightsError,
                            Var3D, check_spd, climatology, confidence_interval, kalman_filter,
                            lorenz63_sakov2012, lorenz96_sakov2008, random_rotation, rts_smoother, run_filter,
                            simulate)


def _random_system(rng, d, p):
    F = rng.normal(size=(d, d)) * 0.5
    A = rng.normal(size=(d, d))
    Q = A @ A.T * 0.1 + 0.01 * np.eye(d)
    H = rng.normal(size=(p, d))
    Bm = rng.normal(size=(p, p))
    R = Bm @ Bm.T + 0.1 * np.eye(p)
    return F, Q, H, R


@pytest.mark.parametrize("d,p,seed", [(3, 2, 0), (4, 4, 1), (2, 1, 2)])
def test_kalman_and_rts_equal_filterpy(d, p, seed):
    from filterpy.kalman import KalmanFilter
    from filterpy.kalman import rts_smoother as frts

    rng = np.random.default_rng(seed)
    F, Q, H, R = _random_system(rng, d, p)
    x0, P0, T = rng.normal(size=d), np.eye(d) * 2, 40
    ys = rng.normal(size=(T, p))
    kf = KalmanFilter(dim_x=d, dim_z=p)
    kf.F, kf.Q, kf.H, kf.R, kf.x, kf.P = F, Q, H, R, x0.copy(), P0.copy()
    mu, cov, _, _ = kf.batch_filter(ys)
    xs, Ps, _, _ = frts(mu, cov, np.array([F] * T), np.array([Q] * T))
    r = kalman_filter(torch.tensor(ys), torch.tensor(F), torch.tensor(Q), torch.tensor(H), torch.tensor(R),
                      torch.tensor(x0), torch.tensor(P0))
    np.testing.assert_allclose(r.mean[0].numpy(), mu, atol=1e-10, rtol=0)
    np.testing.assert_allclose(r.cov[0].numpy(), cov, atol=1e-10, rtol=0)
    sx, sP = rts_smoother(r)
    np.testing.assert_allclose(sx[0].numpy(), xs, atol=1e-10, rtol=0)
    np.testing.assert_allclose(sP[0].numpy(), Ps, atol=1e-10, rtol=0)
    kf = KalmanFilter(dim_x=d, dim_z=p)
    kf.F, kf.Q, kf.H, kf.R, kf.x, kf.P = F, Q, H, R, x0.copy(), P0.copy()
    ll = 0.0
    for y in ys:
        kf.predict()
        kf.update(y)
        ll += kf.log_likelihood
    assert abs(float(r.log_likelihood[0]) - ll) < 1e-9


def test_kalman_batched_equals_one_by_one_and_skips_nan():
    rng = np.random.default_rng(3)
    F, Q, H, R = (torch.tensor(a) for a in _random_system(rng, 3, 2))
    y = torch.tensor(rng.normal(size=(4, 20, 2)))
    both = kalman_filter(y, F, Q, H, R, torch.zeros(3), torch.eye(3))
    for b in range(4):
        one = kalman_filter(y[b], F, Q, H, R, torch.zeros(3), torch.eye(3))
        torch.testing.assert_close(both.mean[b], one.mean[0], atol=1e-12, rtol=0)
    y[1, 5] = float("nan")
    with pytest.warns(RuntimeWarning, match="1 observation"):
        r = kalman_filter(y, F, Q, H, R, torch.zeros(3), torch.eye(3))
    torch.testing.assert_close(r.mean[1, 5], r.mean_pred[1, 5])  # prediction only
    assert torch.isfinite(r.mean).all()


def test_bad_covariances_and_operators_are_named():
    with pytest.raises(ValueError, match="not symmetric"):
        check_spd(torch.tensor([[1.0, 0.5], [0.0, 1.0]]), "R")
    with pytest.raises(ValueError, match="not positive definite"):
        check_spd(torch.tensor([[1.0, 2.0], [2.0, 1.0]]), "R")
    with pytest.raises(ValueError, match="NaN"):
        check_spd(torch.tensor([[float("nan")]]), "R")
    hmm = lorenz63_sakov2012(10)
    with pytest.raises(ValueError, match=r"H must have shape \(p, 3\)"):
        HMM(hmm.model, 3, 0.01, 25, 10, hmm.x0_mean, 2.0, R=2.0, H=torch.eye(2))
    with pytest.raises(ValueError, match="observation-noise covariance R is not positive definite"):
        HMM(hmm.model, 3, 0.01, 25, 10, hmm.x0_mean, 2.0, R=-torch.eye(3))


def test_nan_observations_rejected_with_cycle():
    hmm = lorenz63_sakov2012(20)
    data = simulate(hmm, 2, torch.Generator().manual_seed(0))
    obs = data.obs.clone()
    obs[1, 7, 0] = float("nan")
    with pytest.raises(ValueError, match="experiment 1, cycle 7"):
        run_filter(EnKF("sqrt", 5), hmm, data.truth, obs, torch.Generator())


def test_divergence_and_collapse_named():
    hmm = lorenz63_sakov2012(20)
    data = simulate(hmm, 2, torch.Generator().manual_seed(0))
    with pytest.raises(FilterDivergenceError, match="diverged at cycle"):
        run_filter(EnKF("sqrt", 5), hmm, data.truth, data.obs * 1e6, torch.Generator(), max_abs=1e3)
    with pytest.raises(FilterDivergenceError, match="collapsed"):
        run_filter(EnKF("sqrt", 5), hmm, data.truth, data.obs, torch.Generator(), min_spread=1e3)


def test_particle_weights_underflow_named():
    hmm = lorenz63_sakov2012(5)
    data = simulate(hmm, 2, torch.Generator().manual_seed(0))
    pf = ParticleFilter(20, 1.0, 0.5)
    far = data.obs.clone()
    far[0, 2] = 1e200  # every weight of experiment 0 is exp(-inf): -inf in log space
    with pytest.raises(ParticleWeightsError, match=r"experiment\(s\) \[0\] at cycle 2"):
        run_filter(pf, hmm, data.truth, far, torch.Generator())
    # far, but not infinitely: log-weights keep the filter finite where plain weights would all underflow
    far[0, 2] = data.obs[0, 2] + 100.0
    r = run_filter(ParticleFilter(20, 1.0, 0.5), hmm, data.truth, far, torch.Generator())
    assert torch.isfinite(r.mean_a).all()


def test_rotation_keeps_mean_and_covariance():
    O = random_rotation(3, 6, torch.Generator().manual_seed(0))
    torch.testing.assert_close(O @ O.transpose(-1, -2), torch.eye(6, dtype=torch.float64).expand(3, 6, 6))
    torch.testing.assert_close(O @ torch.ones(6, dtype=torch.float64), torch.ones(3, 6, dtype=torch.float64))


def test_etkf_analysis_equals_kalman_update_for_large_linear_ensemble():
    """The ETKF's analysis mean and covariance are the Kalman update of the ensemble's own mean and covariance."""
    hmm = lorenz63_sakov2012(5)
    g = torch.Generator().manual_seed(0)
    E = torch.randn(2, 30, 3, generator=g, dtype=torch.float64) * 2 + 5
    y = torch.randn(2, 3, generator=g, dtype=torch.float64)
    Ea = EnKF("sqrt", 30).assimilate(hmm, E, y, g)
    for x in range(2):
        mu, P = E[x].mean(0), torch.cov(E[x].T)
        K = P @ torch.linalg.inv(P + hmm.R)
        torch.testing.assert_close(Ea[x].mean(0), mu + K @ (y[x] - mu))
        torch.testing.assert_close(torch.cov(Ea[x].T), (torch.eye(3, dtype=torch.float64) - K) @ P)


def test_letkf_with_huge_radius_equals_etkf():
    hmm = lorenz96_sakov2008(5)
    g = torch.Generator().manual_seed(0)
    E = torch.randn(2, 10, 40, generator=g, dtype=torch.float64)
    y = torch.randn(2, 40, generator=g, dtype=torch.float64)
    letkf = LETKF(10, radius=1e6)
    letkf.init(hmm, 2, torch.Generator())
    torch.testing.assert_close(letkf.assimilate(hmm, E, y, g), EnKF("sqrt", 10).assimilate(hmm, E, y, g))


def test_filters_track_lorenz63_short():
    hmm = lorenz63_sakov2012(150)
    data = simulate(hmm, 3, torch.Generator().manual_seed(0))
    B = climatology(hmm, 300, torch.Generator().manual_seed(1))
    for method, bound in [(EnKF("sqrt", 10, 1.02, True), 0.9), (EnKF("pertobs", 10, 1.04), 1.0),
                          (ParticleFilter(100, 2.4, 0.3), 0.9), (Var3D(B, 0.1), 1.4), (ExtKF(180), 1.4)]:
        r = run_filter(method, hmm, data.truth, data.obs, torch.Generator().manual_seed(2))
        m, half = confidence_interval(r.rmse_a)
        assert m < bound, (method.name, m)
        assert float(r.rmse_a.mean()) < float(r.rmse_f.mean())  # analyses beat forecasts
        assert half >= 0


def test_same_generator_same_numbers():
    hmm = lorenz63_sakov2012(30)
    data = simulate(hmm, 2, torch.Generator().manual_seed(0))
    a = run_filter(EnKF("pertobs", 8, 1.04), hmm, data.truth, data.obs, torch.Generator().manual_seed(5))
    b = run_filter(EnKF("pertobs", 8, 1.04), hmm, data.truth, data.obs, torch.Generator().manual_seed(5))
    assert torch.equal(a.mean_a, b.mean_a)
