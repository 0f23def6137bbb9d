"""Decoders, the autoencoder, and training on the engine: loss goes down, resume equals uninterrupted."""

from __future__ import annotations

import pytest
import torch

from difflens.data import load_digits
from difflens.draw.autoencoder import (
    ConvEncoder,
    DrawingAutoencoder,
    GestureDecoder,
    MLPEncoder,
    StaticDecoder,
)
from difflens.draw.renderer import render_markers
from difflens.draw.train import BatchSampler, DrawTrainer, reconstruction_metrics
from difflens.tools.io import CheckpointError


def test_static_decoder_maps_raw_outputs_to_bounded_commands():
    dec = StaticDecoder(n_markers=5, shape=(20, 30), min_size=1.0, max_size=3.0)
    raw = 4 * torch.randn(7, dec.n_raw, generator=torch.Generator().manual_seed(0))
    img, cmd = dec(raw)
    assert img.shape == (7, 1, 20, 30) and cmd.positions.shape == (7, 5, 2)
    z = raw.reshape(7, 5, 3)
    torch.testing.assert_close(cmd.positions, torch.sigmoid(z[..., :2]) * torch.tensor([30.0, 20.0]))
    torch.testing.assert_close(cmd.sizes, 1.0 + 2.0 * torch.sigmoid(z[..., 2]))
    assert bool((cmd.intensities == 1).all()) and cmd.velocities is None
    torch.testing.assert_close(img[:, 0], render_markers(cmd.positions, cmd.sizes, None, (20, 30)))
    torch.testing.assert_close(dec.code(cmd), (cmd.positions / torch.tensor([30.0, 20.0])).flatten(1))
    assert StaticDecoder(n_markers=5, code="all").code(cmd).shape == (7, 15)
    assert StaticDecoder(n_markers=5, learn_intensity=True).n_raw == 20


def test_gesture_decoder_start_step_bound_and_code():
    dec = GestureDecoder(n_points=12, shape=28, max_step=1.5, start=(0.25, 0.5))
    raw = 5 * torch.randn(4, dec.n_raw, generator=torch.Generator().manual_seed(1))
    img, cmd = dec(raw)
    assert img.shape == (4, 1, 28, 28) and cmd.positions.shape == (4, 12, 2)
    torch.testing.assert_close(cmd.positions[:, 0], torch.tensor([7.0, 14.0]).expand(4, 2))
    steps = cmd.positions[:, 1:] - cmd.positions[:, :-1]
    assert float(steps.abs().max()) <= 1.5
    torch.testing.assert_close(steps, 1.5 * torch.tanh(raw[:, :22]).reshape(4, 11, 2))
    torch.testing.assert_close(cmd.intensities, torch.sigmoid(raw[:, 22:34]))
    assert dec.code(cmd).shape == (4, 22 + 12)
    assert GestureDecoder(n_points=12, code="positions").code(cmd).shape == (4, 24 + 12)
    with pytest.raises(ValueError, match=r"\(B, 46\)"):
        dec(torch.zeros(4, 45))


@pytest.mark.parametrize("encoder", [MLPEncoder, ConvEncoder])
def test_autoencoder_shapes(encoder):
    dec = GestureDecoder(n_points=10)
    model = DrawingAutoencoder(encoder(dec.n_raw, hidden=(32,)), dec)
    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    assert model(x).shape == (3, 1, 28, 28)
    assert model.code(x).shape == (3, 18 + 10)


def test_sampler_epochs_and_state():
    s = BatchSampler(10, 4, torch.Generator().manual_seed(0))
    first = [s.next() for _ in range(2)]
    assert s.batches_per_epoch == 2
    assert len(set(torch.cat(first).tolist())) == 8  # no repeats inside an epoch
    state = s.state_dict()
    later = [s.next() for _ in range(5)]
    assert s.epoch == 3
    s.load_state_dict(state)
    for a in later:
        torch.testing.assert_close(s.next(), a)
    with pytest.raises(CheckpointError, match="n=10"):
        BatchSampler(11, 4).load_state_dict(state)


def _setup(n: int = 96):
    x, _ = load_digits(split="train")
    x = x[:n]
    dec = GestureDecoder(n_points=16, max_step=2.5)
    model = DrawingAutoencoder(MLPEncoder(dec.n_raw, hidden=(64,), generator=torch.Generator().manual_seed(0)), dec)
    return model, x


def test_tiny_training_reduces_loss():
    model, x = _setup()
    before = reconstruction_metrics(model, x)
    trainer = DrawTrainer(model, x, batch_size=32, lr=3e-3, epochs=8,
                          generator=torch.Generator().manual_seed(1), test_images=x[:16], snapshot_images=x[:4])
    trainer.run(8)
    after = reconstruction_metrics(model, x)
    assert after["mse"] < 0.7 * before["mse"] and after["psnr"] > before["psnr"]
    assert len(trainer.optimization.history.snapshots) == 9  # epoch 0 .. 8
    assert trainer.optimization.history.snapshots[-1].shape == (4, 1, 28, 28)
    assert trainer.optimization.history.iterations("test_mse") == [3 * k for k in range(1, 9)]


def test_resume_equals_uninterrupted(tmp_path):
    def trainer_for(model, x):
        return DrawTrainer(model, x, batch_size=32, lr=3e-3, epochs=6,
                           generator=torch.Generator().manual_seed(5), snapshot_images=x[:2])

    model_a, x = _setup()
    straight = trainer_for(model_a, x).run(6)

    model_b, _ = _setup()
    first = trainer_for(model_b, x).run(2.0 + 1 / 3)  # stop inside an epoch
    first.save(tmp_path / "ckpt.pt")
    model_c, _ = _setup()
    torch.nn.init.zeros_(model_c.encoder.net[0].weight)  # the load must overwrite everything
    resumed = trainer_for(model_c, x)
    resumed.load(tmp_path / "ckpt.pt")
    resumed.run(6 - (2.0 + 1 / 3))
    assert resumed.optimization.iteration == straight.optimization.iteration == 18
    for p, q in zip(model_a.parameters(), model_c.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    torch.testing.assert_close(straight.optimization.history.loss, resumed.optimization.history.loss, rtol=0, atol=0)
    assert len(resumed.optimization.history.snapshots) == len(straight.optimization.history.snapshots)


def test_smoothness_penalty_is_the_mean_squared_velocity_change():
    model, x = _setup(32)

    def first_loss(weight):
        trainer = DrawTrainer(model, x, batch_size=32, lr=1e-3, generator=torch.Generator().manual_seed(2),
                              smoothness=weight)
        return trainer._loss().detach()

    with torch.no_grad():
        _, commands = model.decoder(model.encoder(x))  # batch_size == n: the first batch is all of x
        v = commands.velocities
        penalty = ((v[:, 1:] - v[:, :-1]) ** 2).sum(-1).mean()
    assert penalty > 0
    torch.testing.assert_close(first_loss(0.5) - first_loss(0.0), 0.5 * penalty, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="smoothness"):
        DrawTrainer(model, x, smoothness=-1.0)
