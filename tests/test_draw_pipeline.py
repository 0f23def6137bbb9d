"""The whole workflow at toy size, augmentation, seeded initialisation, figures and the study's registration."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import pytest
import torch

from difflens.data import load_digits
from difflens.draw.autoencoder import (
    DrawingAutoencoder,
    GestureDecoder,
    MLPEncoder,
    init_parameters,
)
from difflens.draw.experiment import DrawConfig, build_model, run_experiment
from difflens.draw.train import DrawTrainer, random_affine


def test_run_experiment_tiny():
    xtr, ytr = load_digits(split="train")
    xte, yte = load_digits(split="test")
    cfg = DrawConfig(n_markers=8, hidden=(32,), epochs=2, batch_size=32, kmeans_seeds=(0,))
    res = run_experiment((xtr[:128], ytr[:128]), (xte[:60], yte[:60]), cfg, torch.Generator().manual_seed(0),
                         n_snapshots=4)
    m = res.metrics
    for key in ("kmeans_accuracy_codes", "kmeans_accuracy_pixels", "hungarian_accuracy_codes",
                "hungarian_accuracy_pixels", "probe_accuracy_codes", "train_seconds", "test_psnr"):
        assert key in m and math.isfinite(m[key])
    for name in ("codes", "pixels"):
        assert 0 < m[f"hungarian_accuracy_{name}"] <= m[f"kmeans_accuracy_{name}"] <= 1
        assert res.tables[name].sum() == 60
    assert m["epochs"] == 2 and len(res.trainer.optimization.history.snapshots) == 3
    with pytest.raises(ValueError, match="variant"):
        DrawConfig(variant="spline")


def test_seeded_initialisation_is_reproducible():
    a = build_model(DrawConfig(), (1, 28, 28), torch.Generator().manual_seed(3))
    b = build_model(DrawConfig(), (1, 28, 28), torch.Generator().manual_seed(3))
    c = build_model(DrawConfig(), (1, 28, 28), torch.Generator().manual_seed(4))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(a.encoder.net[0].weight, c.encoder.net[0].weight)
    lin = torch.nn.Linear(400, 3)
    init_parameters(lin, torch.Generator().manual_seed(0))
    w = lin.weight.detach()
    assert float(w.abs().max()) <= 1 / 20 and float(w.std()) == pytest.approx(1 / 20 / 3 ** 0.5, rel=0.1)


def test_constant_speed_gesture_steps_have_fixed_length():
    dec = GestureDecoder(n_points=9, max_step=2.0, speed="constant")
    raw = torch.randn(3, dec.n_raw, generator=torch.Generator().manual_seed(0))
    steps = dec.commands(raw).positions.diff(dim=1)
    torch.testing.assert_close(steps.norm(dim=-1), torch.full((3, 8), 2.0))


def test_random_affine():
    x = torch.rand(5, 1, 12, 12, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(random_affine(x, torch.Generator().manual_seed(1)), x)  # no jitter: identity
    g1, g2 = torch.Generator().manual_seed(2), torch.Generator().manual_seed(2)
    a = random_affine(x, g1, shift=2.0, rotate=10.0, scale=0.1)
    torch.testing.assert_close(a, random_affine(x, g2, shift=2.0, rotate=10.0, scale=0.1))
    assert not torch.allclose(a, x)
    # a pure one-pixel shift moves a dot by one pixel
    dot = torch.zeros(1, 1, 9, 9)
    dot[0, 0, 4, 4] = 1
    g = torch.Generator().manual_seed(0)
    moved = random_affine(dot, g, shift=1.0)
    assert float(moved.sum()) == pytest.approx(1.0, abs=1e-5)


def test_resume_with_augmentation_is_exact(tmp_path):
    x, _ = load_digits(split="train")
    x = x[:64]

    def make():
        dec = GestureDecoder(n_points=6)
        model = DrawingAutoencoder(MLPEncoder(dec.n_raw, hidden=(16,), generator=torch.Generator().manual_seed(0)),
                                   dec)
        return DrawTrainer(model, x, batch_size=16, lr=1e-2, generator=torch.Generator().manual_seed(1),
                           augment={"shift": 1.5, "rotate": 8.0})

    straight = make().run(3)
    part = make().run(1.5)
    part.save(tmp_path / "a.pt")
    resumed = make()
    resumed.load(tmp_path / "a.pt")
    resumed.run(1.5)
    for p, q in zip(straight.model.parameters(), resumed.model.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    with pytest.raises(ValueError, match="augment"):
        DrawTrainer(straight.model, x, augment={"flip": 1.0})


def test_figures(tmp_path):
    import matplotlib.pyplot as plt
    import numpy as np

    from difflens.plot import draw as dplot

    x = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    dec = GestureDecoder(n_points=5)
    cmd = dec.commands(torch.zeros(4, dec.n_raw))
    figs = [dplot.reconstruction_grid(x, x, ncols=3),
            dplot.gesture_tracks(cmd.positions, cmd.sizes, cmd.intensities, x, ncols=3),
            dplot.gesture_tracks(cmd.positions, cmd.sizes, cmd.intensities, ordered=False),
            dplot.loss_curves(np.arange(5), np.linspace(1, 0.1, 5), [2, 4], [0.5, 0.2], 2),
            dplot.cluster_matrix({"a": np.eye(3, dtype=int)})]
    from difflens.plot.animation import save_animation

    anim = dplot.training_animation([x, x * 0.5], [0, 1], x)
    path = save_animation(anim, tmp_path / "train", fmt="gif")
    assert path.stat().st_size > 0
    for fig in figs:
        assert isinstance(fig, plt.Figure)
        plt.close(fig)


def test_study_is_registered():
    from difflens.studies.registry import get_study

    s = get_study("draw")
    assert s.order == 40 and "draw" in s.title.lower()
