"""Neural-process models: shapes, equivariance, the prior, bad inputs, training resume, autoregression."""

import pytest
import torch
from interrupts import InterruptAt
from torch import nn

from difflens.gp.neural import (
    CNP,
    AttentiveCNP,
    ConvCNP,
    GPTaskSampler,
    LatentNP,
    NeuralProcessTrainer,
    autoregressive_log_likelihood,
    autoregressive_sample,
    evaluate_model,
    oracle_log_likelihood,
    oracle_predict,
    task_kernel,
)

MODELS = [CNP, AttentiveCNP, ConvCNP, LatentNP]


def tasks(seed=0, n=6, m=9, b=3):
    return GPTaskSampler("se", torch.Generator().manual_seed(seed), batch_size=b, n_context=n, n_target=m).sample()


@pytest.mark.parametrize("cls", MODELS)
def test_shapes_positive_std_and_the_empty_context(cls):
    torch.manual_seed(0)
    model = cls()
    t = tasks()
    mean, std = model(t.x_context, t.y_context, t.x_target)
    assert mean.shape == std.shape == (3, 9, 1) and bool((std > 0).all())
    mean0, std0 = model(t.x_context[:, :0], t.y_context[:, :0], t.x_target)  # the prior: documented
    assert mean0.shape == (3, 9, 1) and bool(torch.isfinite(mean0).all() and (std0 > 0).all())


@pytest.mark.parametrize("cls", MODELS)
def test_bad_inputs_are_named(cls):
    model = cls()
    t = tasks()
    with pytest.raises(ValueError, match="different input dimensions"):
        model(t.x_context, t.y_context, torch.zeros(3, 4, 2))
    bad = t.y_context.clone()
    bad[1, 2] = float("nan")
    with pytest.raises(ValueError, match="y_context contains NaN"):
        model(t.x_context, bad, t.x_target)
    with pytest.raises(ValueError, match="x_context has 6 points but y_context has 5"):
        model(t.x_context, t.y_context[:, :5], t.x_target)
    with pytest.raises(ValueError, match=r"shape \(B, N, D\)"):
        model(t.x_context[0], t.y_context[0], t.x_target[0])


def test_convcnp_is_translation_equivariant_and_refuses_a_grid_too_large():
    torch.manual_seed(0)
    model = ConvCNP(points_per_unit=16)
    t = tasks(b=2)
    m1, s1 = model(t.x_context, t.y_context, t.x_target)
    shift = 3.0  # a multiple of the grid spacing: the grid shifts with the data
    m2, s2 = model(t.x_context + shift, t.y_context, t.x_target + shift)
    torch.testing.assert_close(m2, m1, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(s2, s1, atol=1e-5, rtol=1e-5)
    # a CNP is not: its outputs depend on absolute position
    cnp = CNP()
    assert not torch.allclose(cnp(t.x_context + shift, t.y_context, t.x_target + shift)[0],
                              cnp(t.x_context, t.y_context, t.x_target)[0], atol=1e-3)
    # far targets extend the grid; beyond max_grid_points the batch is refused
    far = t.x_target.clone()
    far[0, 0] = 1e6
    with pytest.raises(ValueError, match="max_grid_points"):
        model(t.x_context, t.y_context, far)


@pytest.mark.parametrize(("cnn", "shift"), [("unet", 1.0), ("unet", -2.0), ("dilated", 1 / 16), ("dilated", 2.5)])
def test_convcnp_shift_by_a_multiple_of_its_period_shifts_predictions_exactly(cnn, shift):
    model = ConvCNP(points_per_unit=16, channels=8, cnn=cnn, levels=4, generator=torch.Generator().manual_seed(2))
    assert model.period == pytest.approx(1.0 if cnn == "unet" else 1 / 16)
    t = tasks(seed=4, n=11, m=13, b=2)
    m1, s1 = model(t.x_context, t.y_context, t.x_target)
    m2, s2 = model(t.x_context + shift, t.y_context, t.x_target + shift)
    torch.testing.assert_close(m2, m1, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(s2, s1, atol=1e-5, rtol=1e-5)
    # the grid starts at a multiple of the period, holds a multiple of 2**levels points, covers inputs + margin
    g = model.grid(t.x_context, t.x_target)
    q = model.grid_multiple
    assert len(g) % q == 0 and float(g[0] / model.period) == pytest.approx(round(float(g[0] / model.period)))
    xs = torch.cat([t.x_context.reshape(-1), t.x_target.reshape(-1)])
    assert float(g[0]) <= float(xs.min()) - model.margin
    assert float(g[-1]) >= float(xs.max()) + model.margin - 1 / 16


def test_unet_keeps_the_length_and_refuses_one_it_cannot_halve():
    from difflens.gp.neural import UNet1d

    net = UNet1d(2, channels=4, levels=3)
    assert net(torch.randn(2, 2, 24)).shape == (2, 8, 24)
    with pytest.raises(ValueError, match="multiple of 2\\*\\*levels = 8"):
        net(torch.randn(2, 2, 20))
    with pytest.raises(ValueError, match="cnn must be 'unet' or 'dilated'"):
        ConvCNP(cnn="resnet")


class OracleModel(nn.Module):
    """The exact GP as a 'neural process' (to test the autoregressive chain rule)."""

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, xc, yc, xt):
        m, s = oracle_predict(task_kernel("se"), 0.02, xc.double(), yc.double(), xt.double())
        return m, s


def test_autoregressive_oracle_equals_the_joint_gp_density():
    t = tasks(seed=5, n=4, m=7, b=3).to(dtype=torch.float64)
    ar = autoregressive_log_likelihood(OracleModel(), *t)
    joint = oracle_log_likelihood(task_kernel("se"), 0.02, *t, joint=True)
    torch.testing.assert_close(ar, joint, rtol=1e-9, atol=1e-9)


def test_autoregressive_samples_of_the_oracle_have_the_gp_posterior_covariance():
    t = tasks(seed=6, n=3, m=4, b=1).to(dtype=torch.float64)
    draws = autoregressive_sample(OracleModel(), t.x_context, t.y_context, t.x_target,
                                  torch.Generator().manual_seed(0), n_samples=800)[:, 0, :, 0]
    from difflens.gp import GaussianProcess
    gp = GaussianProcess(task_kernel("se"), noise_variance=0.02 ** 2, optimize=False)
    gp.fit(t.x_context[0], t.y_context[0, :, 0])
    mean, cov = gp.predict(t.x_target[0], return_cov=True, include_noise=True)
    torch.testing.assert_close(draws.mean(0), mean, atol=0.12, rtol=0)
    torch.testing.assert_close(torch.cov(draws.T), cov, atol=0.12, rtol=0)
    off = cov - torch.diag(cov.diagonal())
    assert float(off.abs().max()) > 0.3  # the targets are correlated: independent draws would fail above


def test_interrupted_training_resumed_from_its_checkpoint_equals_uninterrupted(tmp_path):
    def trainer(seed=0):
        torch.manual_seed(0)
        model = ConvCNP(points_per_unit=8, channels=8, levels=2)
        sampler = GPTaskSampler("se", torch.Generator().manual_seed(seed), batch_size=4, n_target=10)
        return NeuralProcessTrainer(model, sampler, steps=12, check_every=2)

    full = trainer().fit()

    part = trainer()
    part.optimization.configure(callbacks=[InterruptAt(6)])
    path = tmp_path / "np.pt"
    part.fit(checkpoint_path=path, checkpoint_every=2)
    assert part.optimization.stop_reason == "interrupted" and part.optimization.iteration == 6 and path.is_file()
    resumed = trainer(seed=123)  # the sampler's generator comes back from the checkpoint
    resumed.fit(checkpoint_path=path, resume=True)
    assert resumed.optimization.iteration == 12
    for a, b in zip(full.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)
    assert torch.equal(full.optimization.history.loss, resumed.optimization.history.loss)


def test_training_lowers_the_loss_and_evaluation_reports_coverage():
    torch.manual_seed(0)
    model = ConvCNP(points_per_unit=16, channels=16)
    sampler = GPTaskSampler("se", torch.Generator().manual_seed(0), batch_size=8)
    tr = NeuralProcessTrainer(model, sampler, steps=60, lr=3e-3).fit()
    loss = tr.optimization.history.loss
    assert float(loss[-10:].mean()) < float(loss[:10].mean()) - 0.3
    ev = evaluate_model(model, [tasks(seed=9, b=4)])
    assert ev["ll"].shape == (4,) and bool(((ev["in_2sigma"] >= ev["in_1sigma"]) & (ev["in_2sigma"] <= 1)).all())
    with pytest.raises(TypeError, match="sampler"):
        NeuralProcessTrainer(model, object())


@pytest.mark.parametrize("cls", MODELS)
def test_initial_weights_come_from_the_generator_not_the_global_one(cls):
    torch.manual_seed(0)
    a = cls(generator=torch.Generator().manual_seed(5))
    torch.manual_seed(1)
    b = cls(generator=torch.Generator().manual_seed(5))
    c = cls(generator=torch.Generator().manual_seed(6))
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_latent_np_importance_sampled_likelihood_is_above_its_elbo_and_trains():
    model = LatentNP(hidden=32, latent=8, generator=torch.Generator().manual_seed(0))
    sampler = GPTaskSampler("se", torch.Generator().manual_seed(1), batch_size=8, n_target=20)
    tr = NeuralProcessTrainer(model, sampler, steps=40, lr=3e-3).fit()
    loss = tr.optimization.history.loss
    assert float(loss[-10:].mean()) < float(loss[:10].mean())
    t = tasks(seed=3, n=5, m=12, b=6)
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():  # -ELBO averaged over many single draws: a lower bound on log p(y_T | C) / M
        elbo = -torch.stack([model.training_loss(*t, g) for _ in range(200)]).mean()
    iwae = model.log_likelihood(*t, g, samples=512).mean()
    assert float(iwae) >= float(elbo) - 1e-3
    one = torch.stack([model.log_likelihood(*t, g, samples=1).mean() for _ in range(200)]).mean()
    assert float(iwae) >= float(one) - 1e-3  # more importance samples: a tighter bound


def test_evaluation_scores_a_model_on_the_oracles_targets_and_noise():
    """The exact GP run through evaluate_model scores what oracle_log_likelihood does: same targets, same
    noisy observations, the predictive of y (noise included), so a gap of 0 means the oracle itself."""
    batches = [tasks(seed=s, n=7, m=11, b=3) for s in (11, 12)]
    ev = evaluate_model(OracleModel(), batches)
    oracle = torch.cat([oracle_log_likelihood(task_kernel("se"), 0.02, *t.to(dtype=torch.float64)) for t in batches])
    torch.testing.assert_close(ev["ll"], oracle, atol=1e-4, rtol=0)
    # a predictive of f alone (no observation noise) is overconfident where the context is dense: it scores lower
    class NoiselessOracle(OracleModel):
        def forward(self, xc, yc, xt):
            m, s = super().forward(xc, yc, xt)
            return m, (s.square() - 0.02 ** 2).clamp_min(1e-8).sqrt()

    dense = [tasks(seed=13, n=40, m=20, b=4)]
    dense_oracle = oracle_log_likelihood(task_kernel("se"), 0.02, *dense[0].to(dtype=torch.float64))
    assert float(evaluate_model(NoiselessOracle(), dense)["ll"].mean()) < float(dense_oracle.mean()) - 0.5
