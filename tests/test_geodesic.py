"""Geodesic: the exact geodesic of linear models, owner of its engine, exact resume, helpers, bad input.

For a model ``x -> A x`` with ``A`` of full column rank the path energy is a positive-definite
quadratic in the free frames whose minimum is the evenly spaced straight line: the pixel fade.
So a geodesic started from a Brownian bridge must return to the pixel fade, and one started on
it must not move. plenoptic 1.1's own tests are ported in tests/ports/plenoptic/test_geodesic.py.
"""

from __future__ import annotations

import warnings

import pytest
import torch

import difflens.plenoptic_names as pn
from difflens.engine import NonFiniteLossError
from difflens.synthesize import Geodesic
from difflens.synthesize.synthesis import NonFiniteSynthesisLoss
from difflens.tools.io import CheckpointError
from difflens.tools.straightness import (deviation_from_line, make_straight_line, sample_brownian_bridge,
                                         translation_sequence)

D = torch.float64


def gen(seed):
    return torch.Generator().manual_seed(seed)


def anchors(size=6, dtype=D):
    a = 0.2 + 0.6 * torch.rand(1, 1, size, size, generator=gen(0), dtype=dtype)
    b = 0.2 + 0.6 * torch.rand(1, 1, size, size, generator=gen(1), dtype=dtype)
    return a, b


class LinearModel(torch.nn.Module):
    def __init__(self, d, seed=3):
        super().__init__()
        self.register_buffer("A", torch.randn(2 * d, d, generator=gen(seed), dtype=D))

    def forward(self, x):
        return x.reshape(x.shape[0], -1) @ self.A.T


class Squash(torch.nn.Module):  # a nonlinear model: the pixel fade is not its geodesic
    def forward(self, x):
        return torch.tanh(4 * (x - 0.5))


class Paraboloid(torch.nn.Module):  # images on a curved surface: geodesics bend, acceleration stays normal
    def forward(self, x):
        f = x.reshape(x.shape[0], -1)
        return torch.cat([f, 3 * f.pow(2).sum(1, keepdim=True)], 1)


def run(geo, n, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return geo.synthesize(n, progress=False, stop_criterion=kw.pop("stop_criterion", 1e-12), **kw)


def lbfgs(params):
    return torch.optim.LBFGS(params, lr=1, max_iter=50, tolerance_grad=1e-12, tolerance_change=1e-16,
                             line_search_fn="strong_wolfe")


def test_linear_model_geodesic_is_the_pixel_fade():
    a, b = anchors()
    model = LinearModel(a.numel())
    geo = Geodesic(a, b, model, n_steps=5, initial_sequence="bridge", range_penalty_lambda=0.0,
                   generator=gen(7))
    start = geo.objective_function().item()
    assert not torch.allclose(geo.geodesic, geo.pixelfade, atol=1e-3)  # the bridge strays
    run(geo, 10, optimizer=lbfgs)
    assert torch.allclose(geo.geodesic, geo.pixelfade, atol=1e-6)
    straight = geo.objective_function(geo.pixelfade).item()
    assert geo.losses[-1].item() == pytest.approx(straight, rel=1e-6) and straight < start
    with torch.no_grad():  # constant speed
        rep = model(geo.geodesic)
    steps = (rep[1:] - rep[:-1]).pow(2).sum(1)
    assert torch.allclose(steps, steps.mean().expand_as(steps), rtol=1e-6)


def test_on_a_curved_representation_the_geodesic_bends_and_its_jerkiness_vanishes():
    # the first-order optimality of the path energy is J_k^T (z_{k+1} - 2 z_k + z_{k-1}) = 0: the
    # acceleration is normal to the surface, so calculate_jerkiness goes from ~350 to ~1e-11
    a, b = anchors()
    geo = Geodesic(a, b, Paraboloid(), n_steps=5, range_penalty_lambda=0.0)
    before = geo.calculate_jerkiness()
    assert before.min().item() > 100
    run(geo, 3, optimizer=lbfgs)
    assert geo.calculate_jerkiness().max().item() < 1e-8
    assert geo.losses[-1].item() < 0.3 * geo.losses[0].item()
    assert (geo.geodesic[1:-1] - geo.pixelfade[1:-1]).abs().max().item() > 1e-2


def test_started_on_the_geodesic_nothing_moves_and_the_endpoints_never_do():
    a, b = anchors()
    geo = Geodesic(a, b, LinearModel(a.numel()), n_steps=4)
    run(geo, 5, optimizer=lambda p: torch.optim.SGD(p, lr=1e-3))  # (Adam would blow round-off up to lr steps)
    assert geo.gradient_norm.max().item() < 1e-10  # zero to round-off: nothing moves
    assert torch.allclose(geo.geodesic, geo.pixelfade, rtol=0, atol=1e-12)
    squash = Geodesic(a, b, Squash(), n_steps=4)
    run(squash, 30, optimizer=lambda p: torch.optim.Adam(p, lr=0.01))
    assert torch.equal(squash.geodesic[0], a[0]) and torch.equal(squash.geodesic[-1], b[0])
    assert not torch.equal(squash.geodesic[1:-1], squash.pixelfade[1:-1])
    assert squash.losses[-1] < squash.losses[0]


def test_store_progress_records_step_energy_and_deviation_of_the_frames_before_each_step():
    a, b = anchors()
    geo = Geodesic(a, b, Squash(), n_steps=4)
    frames = []
    for k in range(3):
        frames.append(geo.geodesic.detach().clone())
        run(geo, 1, store_progress=True, optimizer=lambda p: torch.optim.Adam(p, lr=0.05)) if k == 0 else run(
            geo, 1, store_progress=True)
    assert geo.step_energy.shape == (3, 4) and geo.dev_from_line.shape == (3, 5, 2)
    for k, x in enumerate(frames):
        rep = Squash()(x)
        expected = (rep[1:] - rep[:-1]).reshape(4, -1).pow(2).sum(1)
        assert torch.allclose(geo.step_energy[k], expected)
        along, off = deviation_from_line(rep)
        assert torch.allclose(geo.dev_from_line[k], torch.stack([along, off], 1))


def test_resume_and_save_load_equal_an_uninterrupted_run(tmp_path):
    a, b = anchors()

    def make():
        return Geodesic(a, b, Squash(), n_steps=4, initial_sequence="bridge", generator=gen(2))

    whole = make()
    run(whole, 8, store_progress=2, optimizer=lambda p: torch.optim.Adam(p, lr=0.02))
    half = make()
    run(half, 4, store_progress=2, optimizer=lambda p: torch.optim.Adam(p, lr=0.02))
    half.save(tmp_path / "geo.pt")
    loaded = make().load(tmp_path / "geo.pt")
    run(loaded, 4)
    assert torch.equal(loaded.geodesic, whole.geodesic) and torch.equal(loaded.losses, whole.losses)
    assert torch.equal(loaded.step_energy, whole.step_energy)
    other = Geodesic(a, b, Squash(), n_steps=5)
    with pytest.raises(CheckpointError, match="n_steps are different"):
        other.load(tmp_path / "geo.pt")
    with pytest.raises(CheckpointError, match="same model"):
        Geodesic(a, b, lambda x: 2 * x, n_steps=4, initial_sequence="bridge").load(tmp_path / "geo.pt")


def test_to_casts_and_a_nan_is_named_and_rolled_back():
    a, b = anchors(dtype=torch.float32)
    geo = Geodesic(a, b, Squash(), n_steps=3)
    run(geo, 2, optimizer=lambda p: torch.optim.Adam(p, lr=0.02))
    geo.to(torch.float64)
    assert geo.geodesic.dtype == D and geo.optimizer.state[geo.intermediate]["exp_avg"].dtype == D
    run(geo, 2)
    geo.image_a[..., 0, 0] = float("nan")
    with pytest.raises(NonFiniteSynthesisLoss, match="Found a NaN in loss") as err:
        run(geo, 1)
    assert isinstance(err.value, NonFiniteLossError) and isinstance(err.value, ValueError)
    # back at the last iterate known to give a finite loss, with the history cut there
    assert torch.isfinite(geo.intermediate).all() and len(geo.losses) == geo.optimization.iteration == 3


@pytest.mark.parametrize("kwargs,match", [
    (dict(n_steps=1), "n_steps must be an integer >= 2"),
    (dict(initial_sequence="zigzag"), "initial_sequence"),
    (dict(range_penalty_lambda=-1.0), "range_penalty_lambda"),
])
def test_bad_settings_are_named(kwargs, match):
    a, b = anchors()
    with pytest.raises(ValueError, match=match):
        Geodesic(a, b, Squash(), **kwargs)


def test_bad_anchors_are_named():
    a, b = anchors()
    with pytest.raises(ValueError, match="same shape"):
        Geodesic(a, b[..., :4, :4], Squash())
    with pytest.raises(ValueError, match="batch"):
        Geodesic(a.repeat(2, 1, 1, 1), b.repeat(2, 1, 1, 1), Squash())


def test_straightness_helpers():
    a, b = anchors()
    line = make_straight_line(a, b, 4)
    assert torch.equal(line[0], a[0]) and torch.allclose(line[-1], b[0]) and torch.allclose(line[2], (a[0] + b[0]) / 2)
    bridge = sample_brownian_bridge(a, b, 6, max_norm=1.0, generator=gen(5))
    assert torch.equal(bridge, sample_brownian_bridge(a, b, 6, max_norm=1.0, generator=gen(5)))
    assert torch.allclose(bridge[0], a[0]) and torch.allclose(bridge[-1], b[0])
    assert torch.allclose(sample_brownian_bridge(a, b, 6, max_norm=0.0), make_straight_line(a, b, 6))
    # a path (0, 0) -> (1, 1) -> (2, 0): the middle point is half-way along and 0.5 (normalised) off
    path = torch.tensor([[0.0, 0.0], [1.0, 1.0], [2.0, 0.0]], dtype=D)
    along, off = deviation_from_line(path)
    assert torch.allclose(along, torch.tensor([0.0, 0.5, 1.0], dtype=D))
    assert torch.allclose(off, torch.tensor([0.0, 0.5, 0.0], dtype=D))
    along, off = deviation_from_line(path, normalize=False)
    assert torch.allclose(off, torch.tensor([0.0, 1.0, 0.0], dtype=D))
    seq = translation_sequence(a, 3)
    assert seq.shape == (4, 1, 6, 6) and torch.equal(seq[2], torch.roll(a[0], 2, -1))
    with pytest.raises(ValueError, match="at least 2 frames"):
        deviation_from_line(a)
    with pytest.raises(ValueError, match="no line"):
        deviation_from_line(torch.cat([a, b, a]))


def test_plenoptic_names_and_plots():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    a, b = anchors()
    seq = translation_sequence(a, 4)
    geo = pn.synth.Geodesic(seq[:1], seq[-1:], Squash(), 4)
    run(geo, 3, optimizer=lambda p: torch.optim.Adam(p, lr=0.01))
    fig, (ax1, ax2) = plt.subplots(1, 2)
    pn.synth.geodesic.plot_loss(geo, ax=ax1)
    pn.synth.geodesic.plot_deviation_from_line(geo, natural_video=seq, ax=ax2)
    assert len(ax1.lines) == 1 and len(ax2.lines) == 3
    assert [t.get_text() for t in ax2.get_legend().get_texts()] == ["pixelfade", "geodesic", "natural video"]
    plt.close(fig)
