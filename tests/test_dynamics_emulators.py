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
    fcRNN,
    integrate,
    make_emulator,
    train_emulator,
    validation_loss,
)
from difflens.dynamics.data import TrajectoryData
from difflens.tools.io import load_file
from interrupts import InterruptAt





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


CFG = TrainConfig(iterations=8, batch_size=6, lr=1e-2, lr_final=1e-3, rollout_steps=3, noise=0.01)


def fresh(data, seed_init=0):
    return make_emulator("rnn", 8, 1, 5, data, generator=torch.Generator().manual_seed(seed_init))


def train(em, data, seed_data=1, **kwargs):
    return train_emulator(em, data.train, CFG, torch.Generator().manual_seed(seed_data), val=data.val, val_every=2,
                          snapshot_every=2, **kwargs)


def test_interrupted_training_resumed_from_its_checkpoint_equals_uninterrupted(tmp_path):
    data = tiny_data()
    em_a = fresh(data)
    opt_a = train(em_a, data)  # run by train_emulator itself, timed by the engine
    assert opt_a.iteration == CFG.iterations and opt_a.finished and opt_a.module is em_a
    assert opt_a.history.seconds > 0 and opt_a.history.snapshot_iterations == [0, 2, 4, 6, 8]

    ckpt = tmp_path / "training.pt"
    em_b = fresh(data)
    opt_b = train(em_b, data, callbacks=[InterruptAt(4)], checkpoint_path=ckpt)
    assert opt_b.stop_reason == "interrupted" and not opt_b.finished and opt_b.iteration == 4 and ckpt.is_file()

    # a fresh process: other initial weights, no data scales, a differently seeded sampler; same call + resume
    em_c = make_emulator("rnn", 8, 1, 5, None, generator=torch.Generator().manual_seed(7))
    opt_c = train_emulator(em_c, data.train, CFG, torch.Generator().manual_seed(99), val=data.val, val_every=2,
                           snapshot_every=2, checkpoint_path=ckpt, resume=True)
    assert opt_c.iteration == 8 and opt_c.finished
    sa, sc = em_a.state_dict(), em_c.state_dict()
    assert list(sa) == list(sc)
    for name in sa:
        assert torch.equal(sa[name], sc[name]), name  # parameters and normalisation buffers
    assert torch.equal(opt_a.history.loss, opt_c.history.loss)
    assert opt_a.history["val_loss"].tolist() == opt_c.history["val_loss"].tolist()
    assert opt_a.history.snapshot_iterations == opt_c.history.snapshot_iterations
    for x, y in zip(opt_a.history.snapshots, opt_c.history.snapshots):
        assert all(torch.equal(x[k], y[k]) for k in x)
    # resuming a finished run runs nothing
    again = train_emulator(em_c, data.train, CFG, torch.Generator().manual_seed(5), checkpoint_path=ckpt, resume=True)
    assert again.iteration == 8 and torch.equal(again.history.loss, opt_a.history.loss)


def test_checkpoint_holds_the_emulator_buffers_once(tmp_path):
    data = tiny_data()
    em = fresh(data)
    train(em, data, checkpoint_path=tmp_path / "c.pt")
    saved = load_file(tmp_path / "c.pt")
    assert set(saved["state"]) == {"sampler"}
    assert set(saved["buffers"]) == {"mean", "std", "delta_std", "delta2_std"}
    assert torch.equal(saved["buffers"]["std"], em.std)


def test_train_emulator_names_bad_data():
    data = tiny_data()
    bad = data.train.clone()
    bad[1, 7, 2] = float("nan")
    with pytest.raises(ValueError, match="train contains NaN or inf"):
        train_emulator(fresh(data), bad, CFG, torch.Generator())
    with pytest.raises(ValueError, match=r"val must be trajectories of shape \(n, T, 3\)"):
        train_emulator(fresh(data), data.train, CFG, torch.Generator(), val=data.val[0])


def test_training_lowers_the_loss():
    data = tiny_data()
    em = make_emulator("rnn", 16, 1, 5, data, generator=torch.Generator().manual_seed(0))
    cfg = TrainConfig(iterations=120, batch_size=32, lr=1e-2, lr_final=1e-3, rollout_steps=1)
    before = validation_loss(em, data.train.float(), 1)
    train_emulator(em, data.train, cfg, torch.Generator().manual_seed(1))
    assert validation_loss(em, data.train.float(), 1) < 0.2 * before


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_forward_and_rollout_name_non_finite_windows(bad):
    data = tiny_data()
    em = fresh(data)
    ctx = data.val[:, :10].float().repeat(3, 1, 1)
    ctx[2, 4, 1] = bad
    for call in (lambda: em(ctx), lambda: em.rollout(ctx, 5), lambda: em.rollout(ctx, 0)):
        with pytest.raises(ValueError, match=r"contains NaN or inf \(batch element\(s\) \[2\]\)"):
            call()


def test_equal_seeds_give_identical_emulators_without_touching_the_global_rng():
    data = tiny_data()
    torch.manual_seed(1234)
    state = torch.get_rng_state()
    for kind in ("rnn", "gru", "lstm"):
        a = make_emulator(kind, 8, 2, 5, data, linear_skip=True, generator=torch.Generator().manual_seed(3))
        b = make_emulator(kind, 8, 2, 5, data, linear_skip=True, generator=torch.Generator().manual_seed(3))
        c = make_emulator(kind, 8, 2, 5, data, linear_skip=True, generator=torch.Generator().manual_seed(4))
        assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
        assert not torch.equal(a.net.rnn.weight_hh_l0, c.net.rnn.weight_hh_l0)
        # PyTorch's default initialisation distribution: U(-1/sqrt(hidden), 1/sqrt(hidden))
        w = torch.cat([p.flatten() for p in a.net.parameters()])
        assert w.abs().max() <= 8 ** -0.5 and w.abs().max() > 0.9 * 8 ** -0.5
    assert torch.equal(torch.get_rng_state(), state)  # neither used nor reseeded
    assert torch.equal(fcRNN(3, 4, 3).fc.weight, fcRNN(3, 4, 3).fc.weight)  # default: the default generator
    assert torch.equal(torch.get_rng_state(), state)
