"""difflens.assim: the iEnKS and incremental 4D-Var against the exact Kalman filter / RTS smoother on a linear
system, and the particle filter's analysis and degenerate-weight fallback."""

import math

import pytest
import torch
from torch import nn

from difflens.assim import (HMM, IEnKS, ParticleFilter, Var4D, kalman_filter, lorenz63_sakov2012, rts_smoother,
                            run_filter, simulate)


class LinearField(nn.Module):
    """``dx/dt = A x``: RK4 of it is a linear map, so every filter's Gaussian algebra is exact."""

    autonomous: bool = True

    def __init__(self, A: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("A", A)

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return x @ self.A.T


def _linear_hmm(K=6):
    g = torch.Generator().manual_seed(0)
    A = 0.5 * torch.randn(3, 3, generator=g, dtype=torch.float64)
    H = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]], dtype=torch.float64)
    hmm = HMM(LinearField(A), 3, 0.05, 4, K, torch.tensor([1.0, -1.0, 0.5]), 1.0, R=torch.diag(torch.tensor([0.3, 0.5])),
              H=H, burn_in=0)
    with torch.no_grad():
        F = hmm.forecast(torch.eye(3, dtype=torch.float64)).T                  # one cycle: x -> F x
    return hmm, F


def _cycle(method, hmm, obs, E0):
    """Drive ``method`` by its public contract from a given first ensemble; analysis means and ensembles."""
    s = method.init(hmm, obs.shape[0], torch.Generator().manual_seed(1))
    s.start = E0.clone()
    means, covs = [], []
    for k in range(obs.shape[1]):
        s = method.assimilate(hmm, method.forecast(hmm, s), obs[:, k], torch.Generator())
        means.append(s.analysis.mean(-2))
        A = s.analysis - s.analysis.mean(-2, keepdim=True)
        covs.append(A.transpose(-1, -2) @ A / (A.shape[-2] - 1))
    return s, torch.stack(means, 1), torch.stack(covs, 1)


@pytest.mark.parametrize("lag,mda", [(1, False), (3, False), (1, True)])
def test_ienks_on_a_linear_system_is_the_kalman_filter_and_rts_smoother(lag, mda):
    hmm, F = _linear_hmm(K=6)
    data = simulate(hmm, 2, torch.Generator().manual_seed(2))
    E0 = hmm.sample_initial((2, 8), torch.Generator().manual_seed(3))
    m0 = E0.mean(-2)
    P0 = torch.stack([torch.cov(E0[x].T) for x in range(2)])
    kf = [kalman_filter(data.obs[x:x + 1], F, torch.zeros(3, 3, dtype=torch.float64), hmm.H, hmm.R, m0[x], P0[x])
          for x in range(2)]
    s, means, covs = _cycle(IEnKS(8, lag=lag, n_iter=3, mda=mda), hmm, data.obs, E0)
    for x in range(2):
        torch.testing.assert_close(means[x], kf[x].mean[0], atol=1e-9, rtol=0)
        torch.testing.assert_close(covs[x], kf[x].cov[0], atol=1e-9, rtol=0)
    if lag > 1:  # after the last observation, the window's start is the smoothed state lag cycles back
        K = data.obs.shape[1]
        for x in range(2):
            sx, sP = rts_smoother(kf[x])
            A = s.start[x] - s.start[x].mean(0)
            torch.testing.assert_close(s.start[x].mean(0), sx[0, K - 1 - lag], atol=1e-9, rtol=0)
            torch.testing.assert_close(A.T @ A / 7, sP[0, K - 1 - lag], atol=1e-9, rtol=0)


def test_ienks_tracks_lorenz63_and_beats_the_enkf_sqrt_short():
    from difflens.assim import EnKF

    hmm = lorenz63_sakov2012(150)
    data = simulate(hmm, 3, torch.Generator().manual_seed(0))
    r = run_filter(IEnKS(10, 1, 4, 1.02, True), hmm, data.truth, data.obs, torch.Generator().manual_seed(2))
    e = run_filter(EnKF("sqrt", 10, 1.02, True), hmm, data.truth, data.obs, torch.Generator().manual_seed(2))
    assert float(r.rmse_a.mean()) < 0.45 and float(r.rmse_a.mean()) < float(e.rmse_a.mean())
    with pytest.raises(ValueError, match="lag and n_iter"):
        IEnKS(10, lag=0)


def test_incremental_var4d_on_a_linear_system_is_the_closed_form_minimiser():
    hmm, F = _linear_hmm(K=1)
    data = simulate(hmm, 2, torch.Generator().manual_seed(2))
    B = torch.tensor([[2.0, 0.3, 0.0], [0.3, 1.0, 0.2], [0.0, 0.2, 1.5]], dtype=torch.float64)
    v = Var4D(B, 1.0, lag=1, inner=50, outer=2)
    r = v.run(hmm, data.truth, data.obs)
    xb = hmm.x0_mean
    G = hmm.H @ F
    K = B @ G.T @ torch.linalg.inv(G @ B @ G.T + hmm.R)
    x0 = xb + (data.obs[:, 0] - xb @ G.T) @ K.T
    torch.testing.assert_close(r.mean_a[:, 0], x0 @ F.T, atol=1e-7, rtol=0)
    assert v.optimization is not None and v.optimization.iteration == 1


def test_particle_analysis_is_the_weighted_ensemble_before_resampling():
    hmm = lorenz63_sakov2012(5)
    g = torch.Generator().manual_seed(0)
    E = hmm.sample_initial((2, 50), g)
    y = E[:, :5].mean(1) + 0.5
    pf = ParticleFilter(50, 1.0, NER=1.0)                                     # always resamples
    s = pf.init(hmm, 2, g)
    s.E = E
    a = pf.assimilate(hmm, s, y, g)
    logw = -0.5 * ((y.unsqueeze(1) - E) ** 2).sum(-1) / 2.0                  # R = 2 I
    w = torch.softmax(logw, -1)
    mean, spread = pf.moments(hmm, a)
    torch.testing.assert_close(mean, (w.unsqueeze(-1) * E).sum(1))
    assert pf.resampled == 2 and torch.isfinite(spread).all()
    assert torch.allclose(a.logw, torch.full_like(a.logw, -math.log(50)))


def test_particle_weights_on_one_particle_fall_back_to_the_equal_weight_jitter():
    """All weight on one particle (the others' weights underflow to exactly 0 in linear space): the analysis is
    that particle, and the resampled copies are jittered with the equally weighted covariance, not collapsed."""
    hmm = lorenz63_sakov2012(5)
    g = torch.Generator().manual_seed(0)
    E = hmm.sample_initial((1, 40), g)
    y = E[:, 7] + 0.0
    E[:, :7] += 30.0
    E[:, 8:] += 30.0                                                          # weights exp(-675) ~ 1e-293: 1 - max w < 1e-10
    pf = ParticleFilter(40, 1.0, NER=0.5)
    s = pf.init(hmm, 1, g)
    s.E = E
    a = pf.assimilate(hmm, s, y, g)
    mean, _ = pf.moments(hmm, a)
    torch.testing.assert_close(mean, E[:, 7])
    after = a.E[0]
    assert torch.isfinite(after).all()
    assert float(after.std(0).min()) > 0.5                                    # every copy was jittered
    assert not bool((after == E[0, 7]).all(-1).any())


def test_chi2_quantile_matches_closed_forms():
    from difflens.assim.filters import chi2_quantile

    for q in (0.5, 0.95, 1 - 1e-6):
        assert abs(chi2_quantile(q, 2) - (-2 * math.log(1 - q))) < 1e-9          # 2 dof: exponential law
    assert abs(chi2_quantile(0.95, 3) - 7.814727903251178) < 1e-9


def test_particle_filter_rescue_recovers_a_cloud_that_missed_the_truth():
    """A cloud started 15 units away with a tiny spread: the bootstrap PF stays lost (no model noise), the rescue
    names the cycle and experiment, replaces the cloud by the inflated EnKF analysis, and the filter then tracks."""
    import dataclasses

    hmm = lorenz63_sakov2012(40, burn_in=20)
    data = simulate(hmm, 2, torch.Generator().manual_seed(0))
    off = dataclasses.replace(hmm, x0_mean=hmm.x0_mean + torch.tensor([15.0, 15.0, 0.0]), x0_cov=0.01 * torch.eye(3))
    rmse = {}
    for tail in (None, 1e-6):
        pf = ParticleFilter(200, 0.9, 0.2, rescue_tail=tail)
        rmse[tail] = run_filter(pf, hmm, data.truth, data.obs, torch.Generator().manual_seed(1), model=off).rmse_a
        if tail is None:
            assert pf.rescued == []
        else:
            assert (0, 0) in pf.rescued and (0, 1) in pf.rescued
    assert float(rmse[1e-6].max()) < 1.5 < float(rmse[None].min())
    with pytest.raises(ValueError, match="rescue_tail"):
        ParticleFilter(100, rescue_tail=1.0)
