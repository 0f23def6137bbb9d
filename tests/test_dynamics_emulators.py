"""Emulators: shapes, context checks, rollouts, blow-up errors, and resume == uninterrupted training."""

import pytest
import torch
from torch import nn

from difflens.dynamics import (
    Emulator,
    GRUNet,
    Lorenz63,
    LSTMNet,
    StateBlowUpError,
    TrainConfig,
    emulator_optimization,
    fcRNN,
    integrate,
    make_emulator,
    validation_loss,
)
from difflens.dynamics.data import TrajectoryData





def tiny_data(n=4, T=80, seed=0) -> TrajectoryData:
    g = torch.Generator().manual_seed(seed)
    x0 = torch.randn(n, 3, generator=g, dtype=torch.float64) * 5 + torch.tensor([0.0, 0.0, 25.0], dtype=torch.float64)
    with torch.no_grad():
        traj = integrate(Lorenz63(), x0, torch.arange(T, dtype=torch.float64) * 0.01).transpose(0, 1)
    flat = traj.reshape(-1, 3)
    d1 = (traj[:, 1:] - traj[:, :-1]).reshape(-1, 3)
    d2 = (traj[:, 2:] - 2 * traj[:, 1:-1] + traj[:, :-2]).reshape(-1, 3)
    return TrajectoryData(traj[:3], traj[3:], traj[3:], 0.01, flat.mean(0), flat.std(0), d1.std(0), d2.std(0))


@pytest.mark.parametrize("cls", [fcRNN, GRUNet, LSTMNet])
def test_seed_nets_map_windows_to_one_vector(cls):
    net = cls(3, 16, 3, 2)
    assert net(torch.randn(5, 15, 3)).shape == (5, 3)
    with pytest.raises(ValueError, match=r"\(batch, length, 3\)"):
        net(torch.randn(5, 3))


def test_fcrnn_is_the_seeds_relu_rnn():
    net = fcRNN(3, 8, 3, 1)
    assert isinstance(net.rnn, nn.RNN) and net.rnn.nonlinearity == "relu" and net.rnn.batch_first
    x = torch.randn(2, 6, 3)
    h = torch.zeros(2, 8)
    for t in range(6):  # the recurrence by hand, zero initial state, head on the last hidden state
        h = torch.relu(x[:, t] @ net.rnn.weight_ih_l0.T + net.rnn.bias_ih_l0 + h @ net.rnn.weight_hh_l0.T
                       + net.rnn.bias_hh_l0)
    assert torch.allclose(net(x), net.fc(h), atol=1e-6)


@pytest.mark.parametrize("inputs,target", [("state", "state"), ("state", "increment"),
                                           ("state+increment", "second_difference")])
def test_rollout_shapes_and_context_checks(inputs, target):
    data = tiny_data()
    em = make_emulator("gru", 8, 1, 6, data, inputs=inputs, target=target, generator=torch.Generator().manual_seed(0))
    ctx = data.val[:, :10].float()
    out = em.rollout(ctx, 7)
    assert out.shape == (1, 7, 3)
    assert torch.allclose(out[:, 0], em(ctx))  # the first rollout step is the one-step prediction
    assert torch.allclose(em.rollout(ctx[:, -6:], 7), out)  # only the last `context` states matter
    with pytest.raises(ValueError, match="needs a context of at least 6"):
        em.rollout(ctx[:, :5], 3)
    with pytest.raises(ValueError, match=r"\(batch, length, 3\)"):
        em.rollout(ctx[0], 3)
    with pytest.raises(ValueError, match="n_steps"):
        em.rollout(ctx, -1)
    with pytest.raises(ValueError, match="is on meta but the emulator is on cpu"):
        em.rollout(ctx.to("meta"), 3)


def test_emulator_config_errors():
    with pytest.raises(ValueError, match="inputs"):
        Emulator(fcRNN(3, 4, 3), inputs="velocity")
    with pytest.raises(ValueError, match="input_size 6"):
        Emulator(fcRNN(3, 4, 3), inputs="state+increment")
    with pytest.raises(ValueError, match="context must be >= 2"):
        Emulator(fcRNN(6, 4, 3), context=1, inputs="state+increment")
    with pytest.raises(ValueError, match="target"):
        Emulator(fcRNN(3, 4, 3), target="velocity")
    with pytest.raises(TypeError, match="generator"):
        make_emulator("rnn", 4, generator=0)


class Doubler(nn.Module):
    input_size = output_size = 3

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(10.0))

    def forward(self, z):
        return z[:, -1] * self.w  # increment 10 x: x -> 11 x


def test_blown_up_rollout_names_the_step():
    em = Emulator(Doubler(), context=2, inputs="state", target="increment")
    ctx = torch.ones(1, 2, 3)
    with pytest.raises(StateBlowUpError, match="step 5") as info:  # 11^6 > 1e6 at output index 5
        em.rollout(ctx, 20, max_abs=1e6)
    assert info.value.step == 5
    with pytest.raises(StateBlowUpError, match="NaN/inf"):
        em.rollout(ctx, 400, max_abs=None)  # 11^n overflows float32


def make_run(data, seed_init=0, seed_data=1):
    em = make_emulator("rnn", 8, 1, 5, data, generator=torch.Generator().manual_seed(seed_init))
    cfg = TrainConfig(iterations=8, batch_size=6, lr=1e-2, lr_final=1e-3, rollout_steps=3, noise=0.01)
    opt = emulator_optimization(em, data.train, cfg, torch.Generator().manual_seed(seed_data), val=data.val,
                                val_every=2)
    return em, opt


def test_resumed_training_equals_uninterrupted(tmp_path):
    data = tiny_data()
    em_a, opt_a = make_run(data)
    opt_a.run(8)

    _, opt_b = make_run(data)
    opt_b.run(5)
    opt_b.save(tmp_path / "ckpt.pt")
    # a fresh process: different initial weights and a differently seeded sampler, then load
    em_c, opt_c = make_run(data, seed_init=7, seed_data=99)
    opt_c.load(tmp_path / "ckpt.pt")
    opt_c.run(3)

    assert opt_c.iteration == 8
    for (name, a), c in zip(em_a.state_dict().items(), em_c.state_dict().values()):
        assert torch.equal(a, c), name
    assert torch.equal(opt_a.history.loss, opt_c.history.loss)
    assert opt_a.history["val_loss"].tolist() == opt_c.history["val_loss"].tolist()


def test_training_lowers_the_loss():
    data = tiny_data()
    em = make_emulator("rnn", 16, 1, 5, data, generator=torch.Generator().manual_seed(0))
    cfg = TrainConfig(iterations=60, batch_size=32, lr=1e-2, lr_final=1e-3, rollout_steps=1)
    before = validation_loss(em, data.train.float(), 1)
    emulator_optimization(em, data.train, cfg, torch.Generator().manual_seed(1)).run(cfg.iterations)
    assert validation_loss(em, data.train.float(), 1) < 0.2 * before
