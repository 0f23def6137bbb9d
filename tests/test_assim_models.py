"""difflens.assim: the state-space GP against the exact GP, 4D-Var, the emulator in the loop, ExtKF's TLM, the study."""

import json

import pytest
import torch

from difflens.assim import (EmulatorModel, EnKF, ExtKF, StateSpaceGP, Var4D, climatology, lorenz63_sakov2012,
                            run_filter, simulate, tangent_linear)


@pytest.mark.parametrize("nu", [0.5, 1.5])
def test_state_space_gp_equals_exact_gp(nu):
    from difflens.gp import GaussianProcess, Matern

    g = torch.Generator().manual_seed(0)
    t = torch.sort(torch.rand(150, generator=g, dtype=torch.float64) * 10).values
    y = torch.sin(t) + 0.1 * torch.randn(150, generator=g, dtype=torch.float64)
    ss = StateSpaceGP(nu, 0.8, 1.3, 0.05)
    m, v = ss.posterior(t, y)
    gp = GaussianProcess(Matern(nu, 0.8, 1.3), noise_variance=0.05, optimize=False).fit(t[:, None], y)
    gm, gs = gp.predict(t[:, None], return_std=True)
    torch.testing.assert_close(m, torch.as_tensor(gm), atol=1e-8, rtol=0)
    torch.testing.assert_close(v, torch.as_tensor(gs) ** 2, atol=1e-8, rtol=0)
    assert abs(float(ss.log_marginal_likelihood(t, y)) - gp.log_marginal_likelihood()) < 1e-8


def test_state_space_gp_bad_inputs():
    with pytest.raises(ValueError, match="strictly increasing"):
        StateSpaceGP().posterior(torch.tensor([0.0, 2.0, 1.0]), torch.zeros(3))
    with pytest.raises(ValueError, match="nu in"):
        StateSpaceGP(2.5)
    with pytest.raises(ValueError, match="lengthscale must be finite"):
        StateSpaceGP(1.5, float("nan"))


def test_tangent_linear_matches_finite_differences():
    hmm = lorenz63_sakov2012(5)
    x = torch.tensor([[1.0, 2.0, 20.0], [-3.0, -1.0, 25.0]], dtype=torch.float64)
    fx, J = tangent_linear(hmm, x)
    eps = 1e-6
    for j in range(3):
        e = torch.zeros(3, dtype=torch.float64)
        e[j] = eps
        with torch.no_grad():
            fd = (hmm.forecast(x + e) - hmm.forecast(x - e)) / (2 * eps)
        torch.testing.assert_close(J[:, :, j], fd, atol=1e-5, rtol=1e-6)
    with torch.no_grad():
        torch.testing.assert_close(fx, hmm.forecast(x))


def test_var4d_fits_the_window_and_beats_background():
    hmm = lorenz63_sakov2012(6, burn_in=1)
    data = simulate(hmm, 2, torch.Generator().manual_seed(0))
    B = climatology(hmm, 200, torch.Generator().manual_seed(1))
    for incremental in (True, False):
        v = Var4D(B, 0.1, lag=2, inner=10, incremental=incremental)
        r = v.run(hmm, data.truth, data.obs)
        assert v.optimization is not None and v.optimization.iteration == 1
        assert float(r.rmse_a.mean()) < float(r.rmse_f.mean())
        assert float(r.rmse_a.mean()) < 1.2
    with pytest.raises(ValueError, match="lag, inner and outer"):
        Var4D(B, 0.1, lag=0)


def test_var4d_rescue_re_solves_a_window_started_on_the_wrong_wing():
    # the background starts on the other wing of the attractor and B is strong: the Gauss-Newton steps of the
    # sliding windows stay lost for several cycles; the lost-window test fires and the quasi-static re-solve
    # (observations added one at a time, climatological B) finds the truth's wing
    import dataclasses

    hmm = lorenz63_sakov2012(10, burn_in=1)
    data = simulate(hmm, 2, torch.Generator().manual_seed(0))
    B = climatology(hmm, 200, torch.Generator().manual_seed(1))
    wrong = dataclasses.replace(hmm, x0_mean=torch.tensor([-8.0, -8.0, 27.0]), x0_cov=torch.eye(3))
    plain = Var4D(B, 0.005, lag=4, outer=2).run(wrong, data.truth, data.obs)
    v = Var4D(B, 0.005, lag=4, outer=2, rescue_tail=1e-6)
    rescued = v.run(wrong, data.truth, data.obs)
    assert v.rescued and v.rescue_tries >= len(v.rescued)
    assert all(0 <= k < 10 and e in (0, 1) for k, e in v.rescued)
    assert float(rescued.rmse_a.mean()) < 0.8 * float(plain.rmse_a.mean())
    with pytest.raises(ValueError, match="rescue_tail must be in"):
        Var4D(B, 0.1, rescue_tail=1.5)
    with pytest.raises(ValueError, match="needs observations='all'"):
        Var4D(B, 0.1, observations="newest", rescue_tail=1e-6)


def _tiny_emulator():
    from difflens.dynamics import TrainConfig, make_dataset, make_emulator, train_emulator

    data = make_dataset(torch.Generator().manual_seed(0), n_train=4, n_val=1, n_test=1, train_samples=300,
                        test_samples=30, dt=0.01)
    em = make_emulator("lstm", 16, 1, 15, data, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    train_emulator(em, data.train, TrainConfig(iterations=60, batch_size=32, lr=2e-2), torch.Generator().manual_seed(2))
    return em


def test_emulator_model_window_state():
    em = _tiny_emulator()
    hmm = lorenz63_sakov2012(5)
    model = EmulatorModel(em, hmm)
    assert model.dim == 45 and model.H.shape == (3, 45)
    z = model.sample_initial((2, 4), torch.Generator().manual_seed(0))
    assert z.shape == (2, 4, 45)
    with torch.no_grad():
        z1 = model.forecast(z)
        w = z.reshape(8, 15, 3)
        for _ in range(25):
            w = torch.cat((w[:, 1:], em.step(w).unsqueeze(1)), 1)
    torch.testing.assert_close(z1.reshape(8, 15, 3), w)  # one cycle = 25 emulator steps, shifting the window
    torch.testing.assert_close(model.physical(z1), z1[..., -3:])
    data = simulate(hmm, 2, torch.Generator().manual_seed(0))
    r = run_filter(EnKF("sqrt", 10, 1.02, True), hmm, data.truth, data.obs, torch.Generator(), model=model)
    assert r.mean_a.shape == (2, 5, 3) and torch.isfinite(r.mean_a).all()
    r = run_filter(ExtKF(180.0), hmm, data.truth, data.obs, torch.Generator(), model=model)
    assert torch.isfinite(r.mean_a).all()


TINY = {"experiments": 1, "cycles": 20, "extkf_cycles": 10, "var4d_cycles": 2, "ienks_cycles": 10, "l96_cycles": 12,
        "climatology_cycles": 50, "pf_particles": 20, "emulator_iterations": 5, "emulator_hidden": 8,
        "emulator_cycles": 10, "gp_points": 30, "gp_long_points": 50}


def test_study_tiny_run(tmp_path):
    from difflens.studies import run_study

    first = run_study("assim", tmp_path / "a", seed=0, settings=TINY, verbose=False).record()
    m = json.loads((tmp_path / "a" / "metrics.json").read_text())
    for key in ("rmse_a_var3d", "rmse_a_extkf", "rmse_a_enkf_sqrt_n10", "rmse_a_enkf_pertobs_n10", "rmse_a_pf_n20",
                "rmse_a_var4d", "rmse_a_ienks_n10", "rmse_a_letkf_n7_l96", "rmse_a_enkf_sqrt_n10_emulator"):
        assert key in m and m[key] > 0, key
    assert m["ssgp_max_mean_error"] < 1e-8
    from difflens.studies.context import TIMING_KEY

    second = run_study("assim", tmp_path / "b", seed=0, settings=TINY, verbose=False).record()
    for key, value in first.items():  # same seed, same numbers (timings aside)
        if not TIMING_KEY.search(key) and key != "run":
            assert second[key] == value, key
