"""Metamer owns its engine (``optimization``), checkpoints and resumes through it, and saves
and loads with schedulers; Metamer.load refuses a file made with other settings (as plenoptic)."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F

from difflens.engine import Optimization
from difflens.synthesize import Metamer
from difflens.tools.io import CheckpointError
from interrupts import InterruptAt


class Blur(torch.nn.Module):
    def __init__(self):
        super().__init__()
        k = torch.exp(-torch.arange(-2.0, 3.0) ** 2 / 4)
        self.register_buffer("k", (k[:, None] * k[None, :] / (k.sum() ** 2))[None, None])

    def forward(self, x):
        return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="circular"), self.k)


def images(b=1, size=12, seed=0):
    return torch.rand(b, 1, size, size, generator=torch.Generator().manual_seed(seed))


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def test_metamer_exposes_one_optimization_and_times_from_its_history():
    met = Metamer(images(), Blur())
    assert met.optimization is None and not hasattr(met, "engine") and not hasattr(met, "_engine")
    met.synthesize(max_iter=5, stop_criterion=0.0, progress=False)
    opt = met.optimization
    assert isinstance(opt, Optimization) and opt.iteration == 5 and opt.finished
    met.synthesize(max_iter=3, stop_criterion=0.0, progress=False)
    assert met.optimization is opt and opt.iteration == 8  # the same engine goes on
    assert opt.history.seconds > 0
    assert len(met.losses) == 8


def test_synthesize_settings_go_through_configure(monkeypatch):
    calls = []
    real = Optimization.configure

    def spy(self, **kwargs):
        calls.append(kwargs)
        return real(self, **kwargs)

    monkeypatch.setattr(Optimization, "configure", spy)
    met = Metamer(images(), Blur())
    met.synthesize(max_iter=4, store_progress=2, stop_criterion=1e-3, stop_iters_to_check=3, progress=False)
    (kw,) = calls
    assert kw["snapshot_every"] == 2 and kw["progress"] is False and kw["checkpoint_path"] is None
    (rule,) = kw["stop_rules"]
    assert (rule.tol, rule.iters_to_check) == (1e-3, 3)
    assert met.saved_iterations == [0, 2, 4]


def test_interrupted_synthesis_resumed_from_its_checkpoint_equals_an_uninterrupted_one(tmp_path):
    img, init = images(b=2, seed=1), images(b=2, seed=2)
    path = tmp_path / "ck.pt"

    a = Metamer(img, Blur(), initial_image=init)
    a.setup()
    a.optimization.configure(callbacks=[InterruptAt(7)])
    a.synthesize(max_iter=20, store_progress=4, stop_criterion=0.0, progress=False, checkpoint_path=path)
    assert a.optimization.stop_reason == "interrupted" and a.optimization.iteration == 7 and path.is_file()

    b = Metamer(img, Blur(), initial_image=init)  # a new process: same arguments, resume=True
    b.synthesize(max_iter=20, store_progress=4, stop_criterion=0.0, progress=False, checkpoint_path=path,
                 resume=True)
    c = Metamer(img, Blur(), initial_image=init)
    c.synthesize(max_iter=20, store_progress=4, stop_criterion=0.0, progress=False)
    assert b.optimization.iteration == 20 and b.optimization.finished
    assert torch.equal(b.metamer, c.metamer) and torch.equal(b.losses, c.losses)
    assert b.saved_iterations == c.saved_iterations == [0, 4, 8, 12, 16, 20]
    assert torch.equal(b.saved_metamer, c.saved_metamer)
    # a finished run resumed again does nothing
    b.synthesize(max_iter=20, store_progress=4, stop_criterion=0.0, progress=False, checkpoint_path=path,
                 resume=True)
    assert b.optimization.iteration == 20


@pytest.mark.parametrize("make_scheduler", [
    lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5),
    lambda opt: torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.9),
    lambda opt: torch.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=1, factor=0.5, threshold=0.5),
], ids=["StepLR", "ExponentialLR", "ReduceLROnPlateau"])
def test_metamer_with_a_scheduler_saves_loads_and_resumes_exactly(tmp_path, make_scheduler):
    img, init = images(seed=3), images(seed=4)

    def build():
        met = Metamer(img, Blur(), initial_image=init)
        opt = torch.optim.SGD([met.metamer], lr=5.0, momentum=0.5)
        return met, opt, make_scheduler(opt)

    a, opt, sched = build()
    _quiet(a.synthesize, max_iter=10, optimizer=opt, scheduler=sched, stop_criterion=0.0, progress=False)
    a.save(tmp_path / "m.pt")
    b = Metamer(img, Blur(), initial_image=init).load(tmp_path / "m.pt")
    assert type(b.scheduler) is type(sched) and type(b.optimizer) is torch.optim.SGD
    _quiet(b.synthesize, max_iter=15, stop_criterion=0.0, progress=False)
    c, opt, sched = build()
    _quiet(c.synthesize, max_iter=25, optimizer=opt, scheduler=sched, stop_criterion=0.0, progress=False)
    assert torch.equal(b.metamer, c.metamer) and torch.equal(b.losses, c.losses)
    assert b.optimization.history.lr == c.optimization.history.lr
    assert len(set(c.optimization.history.lr[10:])) > 1  # the scheduler acted after the save


def test_load_takes_a_scheduler_factory_when_the_saved_one_cannot_be_rebuilt(tmp_path):
    met = Metamer(images(seed=5), Blur())
    opt = torch.optim.SGD([met.metamer], lr=1.0)
    met.synthesize(max_iter=3, optimizer=opt, scheduler=torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 0.9 ** i),
                   stop_criterion=0.0, progress=False)
    met.save(tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match="LambdaLR.*lr_lambda.*scheduler="):
        Metamer(images(seed=5), Blur()).load(tmp_path / "m.pt")
    b = Metamer(images(seed=5), Blur()).load(
        tmp_path / "m.pt", scheduler=lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda i: 0.9 ** i))
    assert b.optimizer.param_groups[0]["lr"] == pytest.approx(0.9 ** 3)


def _l1(a, b):
    return (a - b).abs().reshape(a.shape[0], -1).mean(1)


def _mse_again(a, b):
    return (a - b).pow(2).reshape(a.shape[0], -1).mean(1)


def test_load_refuses_other_penalty_range_or_loss_function_as_plenoptic(tmp_path):
    img = images(seed=6)
    a = Metamer(img, Blur(), range_penalty_lambda=0.2)
    a.synthesize(max_iter=2, stop_criterion=0.0, progress=False)
    a.save(tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match=r"range_penalty_lambda=0\.2.*has 0\.1"):
        Metamer(img, Blur()).load(tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match="allowed_range"):
        Metamer(img, Blur(), range_penalty_lambda=0.2, allowed_range=(-1, 1)).load(tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match="different loss_function"):
        Metamer(img, Blur(), range_penalty_lambda=0.2, loss_function=_l1).load(tmp_path / "m.pt")
    # another function computing the same loss is the same loss (plenoptic compares outputs)
    b = Metamer(img, Blur(), range_penalty_lambda=0.2, loss_function=_mse_again).load(tmp_path / "m.pt")
    assert torch.equal(b.metamer, a.metamer) and b.range_penalty_lambda == 0.2


def test_load_errors_are_checkpoint_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        Metamer(images(), Blur()).load(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match="not a readable"):
        Metamer(images(), Blur()).load(tmp_path / "junk.pt")
    opt = Optimization([torch.zeros(3, requires_grad=True)], lambda: torch.zeros(3, requires_grad=True).sum())
    opt.save(tmp_path / "engine.pt")
    with pytest.raises(CheckpointError, match="difflens.synthesize.Metamer"):
        Metamer(images(), Blur()).load(tmp_path / "engine.pt")
