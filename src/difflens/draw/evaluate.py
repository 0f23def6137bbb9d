"""How well codes separate classes without labels: k-means scored two ways, and a linear probe.

- :func:`majority_accuracy`: each cluster takes its most frequent true label
  (the seed's method; several clusters may take the same label, so it rewards
  many small clusters).
- :func:`hungarian_accuracy`: the one-to-one cluster-to-label assignment that
  maximises the matches (``scipy.optimize.linear_sum_assignment``), what
  clustering papers report as "ACC". It is never above the majority score.
- :func:`linear_probe_accuracy`: a multinomial logistic regression fitted on
  training codes and scored on test codes (uses labels; an upper reference).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "cluster_comparison",
    "contingency",
    "hungarian_accuracy",
    "kmeans_scores",
    "linear_probe_accuracy",
    "majority_accuracy",
]

ArrayLike = np.ndarray | Tensor | Sequence


def _np(x: ArrayLike, name: str, ndim: int | None = None) -> np.ndarray:
    if isinstance(x, Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x)
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {x.shape}")
    return x


def contingency(labels: ArrayLike, clusters: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Counts ``C[i, j]`` of samples in cluster ``i`` with label ``j``, plus the cluster and label values."""
    y = _np(labels, "labels", 1)
    c = _np(clusters, "clusters", 1)
    if y.shape != c.shape:
        raise ValueError(f"labels and clusters must have the same length, got {len(y)} and {len(c)}")
    if len(y) == 0:
        raise ValueError("labels and clusters are empty")
    cluster_values, ci = np.unique(c, return_inverse=True)
    label_values, yi = np.unique(y, return_inverse=True)
    table = np.zeros((len(cluster_values), len(label_values)), dtype=np.int64)
    np.add.at(table, (ci.ravel(), yi.ravel()), 1)
    return table, cluster_values, label_values


def majority_accuracy(labels: ArrayLike, clusters: ArrayLike) -> float:
    """Share of samples whose label is the most frequent label of their cluster."""
    table, _, _ = contingency(labels, clusters)
    return float(table.max(axis=1).sum() / table.sum())


def hungarian_accuracy(labels: ArrayLike, clusters: ArrayLike) -> float:
    """Share of samples matched by the best one-to-one map from clusters to labels.

    With more clusters than labels the extra clusters count as errors (and vice versa).
    """
    from scipy.optimize import linear_sum_assignment

    table, _, _ = contingency(labels, clusters)
    rows, cols = linear_sum_assignment(table, maximize=True)
    return float(table[rows, cols].sum() / table.sum())


def _standardize(x: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
    ref = x if reference is None else reference
    mean, std = ref.mean(axis=0), ref.std(axis=0)
    return (x - mean) / np.where(std > 1e-12, std, 1.0)


def kmeans_scores(
    features: ArrayLike,
    labels: ArrayLike,
    n_clusters: int | None = None,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    standardize: bool = False,
    n_init: int = 10,
) -> dict[str, float | list[float]]:
    """k-means on ``features`` ``(N, D)`` scored against ``labels`` ``(N,)`` over several seeds.

    ``n_clusters`` defaults to the number of distinct labels. ``standardize``
    scales each feature to zero mean, unit variance first. Each seed runs
    scikit-learn's ``KMeans(n_init=n_init, random_state=seed)``.

    Returns ``majority``/``hungarian`` (means over seeds), ``majority_std``,
    ``hungarian_std`` and the per-seed lists ``majority_all``/``hungarian_all``.
    """
    from sklearn.cluster import KMeans

    x = _np(features, "features").reshape(len(features), -1).astype(np.float64)
    y = _np(labels, "labels", 1)
    if len(x) != len(y):
        raise ValueError(f"features and labels must have the same length, got {len(x)} and {len(y)}")
    if not len(seeds):
        raise ValueError("seeds must not be empty")
    k = int(n_clusters) if n_clusters is not None else len(np.unique(y))
    if not 1 <= k <= len(x):
        raise ValueError(f"n_clusters must lie in 1..{len(x)}, got {k}")
    if standardize:
        x = _standardize(x)
    majority, hungarian = [], []
    for seed in seeds:
        clusters = KMeans(n_clusters=k, n_init=n_init, random_state=int(seed)).fit_predict(x)
        majority.append(majority_accuracy(y, clusters))
        hungarian.append(hungarian_accuracy(y, clusters))
    return {
        "majority": float(np.mean(majority)), "majority_std": float(np.std(majority)),
        "hungarian": float(np.mean(hungarian)), "hungarian_std": float(np.std(hungarian)),
        "majority_all": majority, "hungarian_all": hungarian,
    }


def linear_probe_accuracy(
    train_features: ArrayLike,
    train_labels: ArrayLike,
    test_features: ArrayLike,
    test_labels: ArrayLike,
    C: float = 1.0,
    max_iter: int = 2000,
) -> float:
    """Test accuracy of a logistic regression fitted on standardized training features.

    The test features are standardized with the training mean and std.
    """
    from sklearn.linear_model import LogisticRegression

    xtr = _np(train_features, "train_features").reshape(len(train_features), -1).astype(np.float64)
    xte = _np(test_features, "test_features").reshape(len(test_features), -1).astype(np.float64)
    ytr, yte = _np(train_labels, "train_labels", 1), _np(test_labels, "test_labels", 1)
    if xtr.shape[1] != xte.shape[1]:
        raise ValueError(f"train and test features differ in width: {xtr.shape[1]} vs {xte.shape[1]}")
    model = LogisticRegression(C=C, max_iter=max_iter)
    model.fit(_standardize(xtr), ytr)
    return float(model.score(_standardize(xte, xtr), yte))


def cluster_comparison(
    named_features: dict[str, tuple[ArrayLike, ArrayLike]],
    train_labels: ArrayLike,
    test_labels: ArrayLike,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    standardize: dict[str, bool] | None = None,
) -> dict[str, dict[str, float | list[float]]]:
    """Score several representations alike.

    ``named_features`` maps a name to ``(train_features, test_features)``; k-means
    runs on the test features, the linear probe fits on train and scores on
    test. Returns ``{name: kmeans_scores(...) | {"probe": accuracy}}``.
    """
    standardize = standardize or {}
    results = {}
    for name, (train, test) in named_features.items():
        scores = kmeans_scores(test, test_labels, seeds=seeds, standardize=standardize.get(name, False))
        scores["probe"] = linear_probe_accuracy(train, train_labels, test, test_labels)
        results[name] = scores
    return results


def to_numpy_features(x: Tensor) -> np.ndarray:
    """``(N, ...)`` tensor -> ``(N, D)`` float64 array (helper for the study)."""
    return x.detach().to("cpu", torch.float64).reshape(len(x), -1).numpy()
