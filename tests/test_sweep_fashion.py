"""The draw study on Fashion-MNIST IDX files (dataset=fashion_mnist), the real-data input of the sweeps."""

import json
import os

import numpy as np
import pytest

from difflens.data import mnist, write_idx
from difflens.studies import run_study
from difflens.studies.draw import FASHION_MNIST_DEBIAN

TINY = {"gesture_epochs": 1, "static_epochs": 1, "cluster_epochs": 1, "kmeans_restarts": 1}


def _fake_fashion(root, n_train=120, n_test=60):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n, dtype=np.uint8) % 10
        images = (rng.random((n, 28, 28)) * 60).astype(np.uint8)
        for c in range(10):  # a class-dependent bright band, so the classes differ
            images[labels == c, 2 * c:2 * c + 6, :] = 250
        write_idx(root / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", labels)


def test_fashion_mnist_setting_runs_the_study_on_idx_files(tmp_path):
    _fake_fashion(tmp_path / "fm")
    ctx = run_study("draw", tmp_path / "out", verbose=False,
                    settings={**TINY, "dataset": "fashion_mnist", "data_root": str(tmp_path / "fm"),
                              "limit_train": 100})
    m = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert m["status"] == "complete" and m["data"].startswith("Fashion-MNIST from")
    assert 0.0 <= m["kmeans_accuracy_pixels"] <= 1.0 and 0.0 <= m["kmeans_accuracy_codes"] <= 1.0
    assert ctx.metrics["data"] == m["data"]


def test_fashion_mnist_without_a_folder_names_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        run_study("draw", tmp_path / "out", verbose=False,
                  settings={**TINY, "dataset": "fashion_mnist", "data_root": str(tmp_path / "missing")})


@pytest.mark.skipif(not os.path.isdir(FASHION_MNIST_DEBIAN), reason="dataset-fashion-mnist is not installed")
def test_debian_fashion_mnist_files_read():
    x, y = mnist(FASHION_MNIST_DEBIAN, "test", limit=500)
    assert x.shape == (500, 1, 28, 28) and y.shape == (500,)
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0 and set(y.tolist()) == set(range(10))
    xtr, _ = mnist(FASHION_MNIST_DEBIAN, "train")
    assert xtr.shape[0] == 60000
