"""The drawing trainers own their engine: ``optimization``, epoch-count stopping, resumable phases."""

import math
import subprocess
import sys
import time

import pytest
import torch

from difflens.data import load_digits
from difflens.draw import (
    BatchSampler,
    DrawConfig,
    DrawingAutoencoder,
    DrawTrainer,
    GestureDecoder,
    MLPEncoder,
    run_experiment,
)
from difflens.draw.experiment import CHECKPOINT_FILES, TIMING_KEYS, fine_tune
from difflens.engine import Optimization

TINY = DrawConfig(n_markers=6, hidden=(16,), epochs=3, batch_size=32, cluster_weight=0.1, cluster_epochs=3,
                  kmeans_seeds=(0,))


@pytest.fixture(scope="module")
def splits():
    xtr, ytr = load_digits(split="train")
    xte, yte = load_digits(split="test")
    return (xtr[:128], ytr[:128]), (xte[:50], yte[:50])


def _numbers(metrics):
    return {k: v for k, v in metrics.items() if k not in TIMING_KEYS}


def _same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        same = a[k] == b[k] or (isinstance(a[k], float) and math.isnan(a[k]) and math.isnan(b[k]))
        assert same, f"{k}: {a[k]!r} != {b[k]!r}"


def _stop_at_call(n):
    """A callback raising KeyboardInterrupt at its n-th call (one call per epoch, both phases)."""
    calls = []

    def callback(opt):
        calls.append(opt.iteration)
        if len(calls) == n:
            raise KeyboardInterrupt

    return callback


def _trainer(x, seed=1, **kw):
    dec = GestureDecoder(n_points=6)
    model = DrawingAutoencoder(MLPEncoder(dec.n_raw, hidden=(16,), generator=torch.Generator().manual_seed(0)), dec)
    return DrawTrainer(model, x, batch_size=16, lr=1e-2, epochs=4, generator=torch.Generator().manual_seed(seed),
                       snapshot_images=x[:2], **kw)


def test_trainer_exposes_its_engine_as_optimization_and_times_through_it():
    x = load_digits(split="train")[0][:48]
    trainer = _trainer(x).run(1)
    assert isinstance(trainer.optimization, Optimization) and not hasattr(trainer, "opt")
    assert trainer.optimization.finished and trainer.epoch == 1.0
    assert trainer.seconds == trainer.optimization.history.seconds > 0
    with pytest.raises(ValueError, match="epochs"):
        trainer.run(-1)


def test_trainer_resumes_an_interrupted_run_from_its_checkpoint(tmp_path):
    x = load_digits(split="train")[0][:48]
    straight = _trainer(x).run(4)
    path = tmp_path / "run.pt"
    cut = _trainer(x, callbacks=(_stop_at_call(2),)).run(4, checkpoint_path=path)
    assert cut.optimization.stop_reason == "interrupted" and cut.epoch == 2.0 and path.is_file()
    resumed = _trainer(x, seed=9).run(4, checkpoint_path=path, resume=True)  # the checkpoint restores the sampler
    assert resumed.optimization.finished and resumed.epoch == 4.0
    for p, q in zip(straight.model.parameters(), resumed.model.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    torch.testing.assert_close(straight.optimization.history.loss, resumed.optimization.history.loss,
                               rtol=0, atol=0)
    assert len(resumed.optimization.history.snapshots) == len(straight.optimization.history.snapshots) == 5
    again = _trainer(x).run(4, checkpoint_path=path, resume=True)  # a finished run: nothing more runs
    assert again.optimization.iteration == straight.optimization.iteration


def test_default_generators_are_seed_0():
    a, b = BatchSampler(20, 4), BatchSampler(20, 4, torch.Generator().manual_seed(0))
    assert torch.equal(a.next(), b.next())
    e1, e2 = MLPEncoder(5, (1, 8, 8), hidden=(4,)), MLPEncoder(5, (1, 8, 8), hidden=(4,))
    assert all(torch.equal(p, q) for p, q in zip(e1.parameters(), e2.parameters()))


def test_same_seed_same_metrics_even_under_cpu_load(splits):
    assert DrawConfig().time_budget is None  # epoch counts decide, not the clock
    assert TIMING_KEYS == {"train_seconds", "evaluate_seconds"}
    cfg = DrawConfig(n_markers=6, hidden=(16,), epochs=2, batch_size=32, cluster_weight=0.1, cluster_epochs=1,
                     kmeans_seeds=(0,))
    quiet = run_experiment(*splits, cfg, torch.Generator().manual_seed(3)).metrics
    _same(_numbers(quiet), _numbers(run_experiment(*splits, cfg, torch.Generator().manual_seed(3)).metrics))
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.2)
        loaded = run_experiment(*splits, cfg, torch.Generator().manual_seed(3)).metrics
    finally:
        busy.kill()
        busy.wait()
    _same(_numbers(quiet), _numbers(loaded))
    assert set(quiet) - set(_numbers(quiet)) == TIMING_KEYS


@pytest.fixture(scope="module")
def uninterrupted(splits):
    return run_experiment(*splits, TINY, torch.Generator().manual_seed(0)).metrics


@pytest.mark.parametrize("call, phase", [(2, "pre-training"), (3, "pre-training"), (5, "IDEC fine-tuning")])
def test_run_experiment_resumes_an_interrupted_phase_to_the_same_metrics(splits, uninterrupted, tmp_path,
                                                                         call, phase):
    with pytest.raises(KeyboardInterrupt, match=f"interrupted during {phase}"):
        run_experiment(*splits, TINY, torch.Generator().manual_seed(0), checkpoint_dir=tmp_path,
                       callbacks=(_stop_at_call(call),))
    files = sorted(p.name for p in tmp_path.iterdir())
    if phase == "pre-training":  # no later phase ran on the interrupted one
        assert files == [CHECKPOINT_FILES["pre-training"]]
    else:
        assert files == sorted(CHECKPOINT_FILES.values())
    epochs = []
    res = run_experiment(*splits, TINY, torch.Generator().manual_seed(0), checkpoint_dir=tmp_path, resume=True,
                         callbacks=(lambda opt: epochs.append(opt.iteration),))
    assert len(epochs) == TINY.epochs + TINY.cluster_epochs - call  # only the epochs left were trained
    _same(_numbers(uninterrupted), _numbers(res.metrics))
    assert res.trainer.optimization.finished and res.cluster_trainer.optimization.finished
    with pytest.raises(ValueError, match="checkpoint_dir"):
        run_experiment(*splits, TINY, resume=True)


def test_fine_tune_is_public_and_runs_the_idec_phase(splits):
    (xtr, _), _ = splits
    trainer = _trainer(xtr).run(1)
    cfg = DrawConfig(batch_size=16, cluster_epochs=2, cluster_weight=0.2)
    with pytest.raises(ValueError, match="n_clusters"):
        fine_tune(trainer.model, xtr, cfg)
    tuner = fine_tune(trainer.model, xtr, cfg, torch.Generator().manual_seed(4), n_clusters=5)
    assert tuner.optimization.finished and tuner.epoch == 2.0 and tuner.cluster.n_clusters == 5
    assert tuner.model is trainer.model
