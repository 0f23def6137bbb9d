"""Neural-process tasks and the exact-GP oracle, against scipy and the exact GP."""

import numpy as np
import pytest
import torch
from scipy import stats

from difflens.gp import GaussianProcess
from difflens.gp.neural import (
    KERNEL_NAMES,
    DigitTaskSampler,
    GPTaskSampler,
    oracle_log_likelihood,
    oracle_predict,
    task_kernel,
)


def se_cov(x, ls=0.4, var=1.0):
    d = x[:, None] - x[None, :]
    return var * np.exp(-0.5 * d ** 2 / ls ** 2)


def test_sampled_curves_whiten_to_standard_normal_under_the_generating_covariance():
    sampler = GPTaskSampler("se", torch.Generator().manual_seed(0), batch_size=8, n_context=5, n_target=15,
                            dtype=torch.float64)
    z = []
    for _ in range(40):
        t = sampler.sample()
        for b in range(8):
            x = t.all_x[b, :, 0].numpy()
            cov = se_cov(x) + 0.02 ** 2 * np.eye(len(x))
            L = np.linalg.cholesky(cov)
            z.append(np.linalg.solve(L, t.all_y[b, :, 0].numpy()))
    z = np.concatenate(z)
    assert stats.kstest(z, "norm").pvalue > 1e-3
    assert abs(z.mean()) < 0.05 and abs(z.var() - 1) < 0.06


def test_same_generator_state_gives_the_same_tasks_and_state_dict_round_trips():
    a = GPTaskSampler("matern52", torch.Generator().manual_seed(3))
    a.sample()
    state = a.state_dict()
    first = a.sample()
    b = GPTaskSampler("matern52", torch.Generator().manual_seed(99))
    b.load_state_dict(state)
    second = b.sample()
    for u, v in zip(first, second):
        assert torch.equal(u, v)
    assert 3 <= first.x_context.shape[1] <= 50 and first.x_target.shape[1] == 50
    assert float(first.all_x.min()) >= -2 and float(first.all_x.max()) <= 2


@pytest.mark.parametrize("name", KERNEL_NAMES)
def test_oracle_marginals_match_the_exact_gp_and_scipy(name):
    t = GPTaskSampler(name, torch.Generator().manual_seed(1), batch_size=3, n_context=7, n_target=9,
                      dtype=torch.float64).sample()
    ll = oracle_log_likelihood(task_kernel(name), 0.02, *t)
    mean, std = oracle_predict(task_kernel(name), 0.02, t.x_context, t.y_context, t.x_target)
    for b in range(3):
        gp = GaussianProcess(task_kernel(name), noise_variance=0.02 ** 2, optimize=False)
        gp.fit(t.x_context[b].numpy(), t.y_context[b, :, 0].numpy())
        m, s = gp.predict(t.x_target[b].numpy(), return_std=True, include_noise=True)
        np.testing.assert_allclose(mean[b, :, 0].numpy(), m, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(std[b, :, 0].numpy(), s, rtol=1e-8)
        ref = stats.norm.logpdf(t.y_target[b, :, 0].numpy(), m, s).mean()
        assert float(ll[b]) == pytest.approx(ref, rel=1e-9)


def test_oracle_joint_matches_scipy_multivariate_normal_and_is_the_larger_on_average():
    t = GPTaskSampler("se", torch.Generator().manual_seed(2), batch_size=20, n_context=4, n_target=12,
                      dtype=torch.float64).sample()
    joint = oracle_log_likelihood(task_kernel("se"), 0.02, *t, joint=True)
    marg = oracle_log_likelihood(task_kernel("se"), 0.02, *t)
    for b in range(2):
        x, y = t.all_x[b, :, 0].numpy(), t.all_y[b, :, 0].numpy()
        cov = se_cov(x) + 0.02 ** 2 * np.eye(len(x))
        n = 4
        cc, ct, tt = cov[:n, :n], cov[:n, n:], cov[n:, n:]
        mu = ct.T @ np.linalg.solve(cc, y[:n])
        sig = tt - ct.T @ np.linalg.solve(cc, ct)
        ref = stats.multivariate_normal(mu, sig).logpdf(y[n:]) / 12
        assert float(joint[b]) == pytest.approx(ref, rel=1e-7)
    # joint dependence is information: on average the joint density beats the product of marginals
    assert float(joint.mean()) > float(marg.mean())


def test_empty_context_is_the_prior():
    t = GPTaskSampler("se", torch.Generator().manual_seed(4), batch_size=2, n_context=0, n_target=5,
                      dtype=torch.float64).sample()
    mean, std = oracle_predict(task_kernel("se"), 0.02, t.x_context, t.y_context, t.x_target)
    assert torch.equal(mean, torch.zeros_like(mean))
    torch.testing.assert_close(std, torch.full_like(std, (1 + 0.02 ** 2) ** 0.5))


def test_digit_tasks_hold_the_requested_context_fraction():
    images = torch.rand(5, 1, 8, 8)
    s = DigitTaskSampler(images, torch.Generator().manual_seed(0), batch_size=3)
    t = s.complete(images[:2], 0.25, torch.Generator().manual_seed(1))
    assert t.x_context.shape == (2, 16, 2) and t.x_target.shape == (2, 64, 2)
    # every context pixel is a pixel of its image, at its coordinates
    idx = ((t.x_context[..., 0] + 1) / 2 * 7).round().long() * 8 + ((t.x_context[..., 1] + 1) / 2 * 7).round().long()
    assert torch.equal(torch.gather(images[:2].reshape(2, 64), 1, idx), t.y_context[..., 0])


def test_bad_sampler_arguments_are_named():
    g = torch.Generator()
    with pytest.raises(ValueError, match="unknown task kernel"):
        GPTaskSampler("rbf", g)
    with pytest.raises(ValueError, match="n_context"):
        GPTaskSampler("se", g, n_context=(5, 3))
    with pytest.raises(TypeError, match="generator"):
        GPTaskSampler("se", 0)
    with pytest.raises(ValueError, match="noise_std"):
        GPTaskSampler("se", g, noise_std=0.0)
