"""GP fitting owns its data and its engine: copy_X_train, ``optimization``, one save format, default generators."""

import numpy as np
import pytest
import torch

from difflens.engine import Optimization
from difflens.gp import GaussianProcess, SquaredExponential
from difflens.tools.io import CheckpointError, save_file


def _data():
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 5, (15, 1))
    y = np.sin(X[:, 0]) + 0.05 * rng.standard_normal(15)
    return X, y, np.linspace(-1, 6, 9)


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_fit_copies_the_training_data_by_default(kind):
    X, y, Xt = _data()
    if kind == "torch":
        X, y = torch.from_numpy(X), torch.from_numpy(y)  # float64 CPU: what the model stores
    gp = GaussianProcess(SquaredExponential(0.8), noise_variance=0.05, optimize=False).fit(X, y)
    assert gp.copy_X_train
    before = gp.predict(Xt)
    X[:] = 0.0  # the caller reuses its arrays
    y[:] = 0.0
    np.testing.assert_array_equal(np.asarray(gp.predict(Xt)), np.asarray(before))
    assert float(gp.X_train_.abs().sum()) > 0


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_copy_X_train_false_keeps_the_reference(kind):
    X, y, _ = _data()
    if kind == "torch":
        X = torch.from_numpy(X)
    gp = GaussianProcess(SquaredExponential(0.8), noise_variance=0.05, optimize=False, copy_X_train=False)
    gp.fit(X, y)
    X[:] = 1.0
    assert bool((gp.X_train_ == 1.0).all())  # documented: the model sees the caller's changes


def test_copy_X_train_survives_save_and_load(tmp_path):
    X, y, _ = _data()
    gp = GaussianProcess(SquaredExponential(0.8), noise_variance=0.05, optimize=False, copy_X_train=False)
    assert GaussianProcess.load(gp.fit(X, y).save(tmp_path / "gp.pt")).copy_X_train is False


def test_fit_exposes_its_engine_as_optimization_and_times_it():
    X, y, _ = _data()
    gp = GaussianProcess(SquaredExponential(1.0), noise_variance=0.05)
    assert gp.optimization is None
    gp.fit(X, y)
    assert isinstance(gp.optimization, Optimization) and gp.optimization.finished
    assert not hasattr(gp, "optimization_")
    assert gp.fit_info_["seconds"] == gp.optimization.history.seconds > 0
    gp.optimize = False  # a refit with nothing to optimise drops the old engine
    assert gp.fit(X, y).optimization is None


def test_restart_seconds_sum_the_engines_and_default_generator_is_seed_0():
    X, y, _ = _data()
    kw = {"noise_variance": 0.5, "n_restarts": 2, "max_iter": 30}
    a = GaussianProcess(SquaredExponential(3.0), **kw).fit(X, y)
    b = GaussianProcess(SquaredExponential(3.0), **kw).fit(X, y, generator=torch.Generator().manual_seed(0))
    assert a.hyperparameters() == b.hyperparameters()
    assert a.fit_info_["seconds"] >= a.optimization.history.seconds > 0


def test_load_refuses_other_formats_and_newer_versions_with_checkpoint_error(tmp_path):
    X, y, _ = _data()
    path = GaussianProcess(SquaredExponential(), optimize=False).fit(X, y).save(tmp_path / "gp.pt")
    data = torch.load(path, weights_only=True)
    assert data["format"] == "difflens.gp.GaussianProcess"
    save_file({k: v for k, v in data.items() if k not in ("format", "version")}, tmp_path / "new.pt",
              format=data["format"], version=data["version"] + 1)
    with pytest.raises(CheckpointError, match="version"):
        GaussianProcess.load(tmp_path / "new.pt")
    save_file({"x": 1}, tmp_path / "other.pt", format="something.else", version=1)
    with pytest.raises(CheckpointError, match="something.else"):
        GaussianProcess.load(tmp_path / "other.pt")
    (tmp_path / "bad.pt").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(CheckpointError):
        GaussianProcess.load(tmp_path / "bad.pt")
    with pytest.raises(FileNotFoundError):
        GaussianProcess.load(tmp_path / "missing.pt")
