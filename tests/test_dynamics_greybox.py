"""Grey-box fitting owns its engine: exposed as ``.optimization``, checkpointed, resumed exactly."""

import torch

from difflens.dynamics import fit_greybox, make_dataset
from interrupts import InterruptAt


def observations():
    d = make_dataset(torch.Generator().manual_seed(0), n_train=2, n_val=1, n_test=1, train_samples=101,
                     test_samples=2, dt=0.01, spinup=5.0)
    noise = torch.randn(d.train.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    return d.train + 0.05 * noise


def test_interrupted_greybox_fit_resumed_equals_uninterrupted(tmp_path):
    obs = observations()
    kw = dict(segment=10, fit_initial_states=True, max_iter=6, lbfgs_iter=5)
    full = fit_greybox(obs, 0.01, **kw)
    assert full.finished and full.optimization.iteration == full.iterations == 6
    assert full.optimization.history.seconds > 0

    ckpt = tmp_path / "greybox.pt"
    cut = fit_greybox(obs, 0.01, callbacks=[InterruptAt(3)], checkpoint_path=ckpt, **kw)
    assert not cut.finished and cut.optimization.stop_reason == "interrupted" and cut.iterations == 3
    resumed = fit_greybox(obs, 0.01, checkpoint_path=ckpt, resume=True, **kw)
    assert resumed.finished and resumed.iterations == 6
    assert torch.equal(resumed.model.weight, full.model.weight)
    assert torch.equal(resumed.optimization.history.loss, full.optimization.history.loss)
    assert resumed.sigma_rho_beta == full.sigma_rho_beta and resumed.loss == full.loss
