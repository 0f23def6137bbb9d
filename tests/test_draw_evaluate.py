"""Cluster scoring (majority label, Hungarian matching), k-means scores and the linear probe."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from difflens.draw.evaluate import (
    contingency,
    hungarian_accuracy,
    kmeans_scores,
    linear_probe_accuracy,
    majority_accuracy,
)


def test_hand_made_values():
    labels = [0, 0, 1, 1, 1, 1]
    clusters = [0, 0, 1, 1, 2, 2]
    # majority: every cluster is pure -> 1; one-to-one: only two labels for three clusters -> 4/6
    assert majority_accuracy(labels, clusters) == 1.0
    assert hungarian_accuracy(labels, clusters) == pytest.approx(4 / 6)
    labels = [0, 0, 0, 1, 1, 2]
    clusters = [5, 5, 7, 7, 7, 7]
    assert majority_accuracy(labels, clusters) == pytest.approx(4 / 6)
    assert hungarian_accuracy(labels, clusters) == pytest.approx(4 / 6)
    # two clusters dominated by the same label: majority counts both, Hungarian only one
    labels = [0, 0, 0, 0, 1, 1]
    clusters = [0, 0, 1, 1, 1, 1]
    assert majority_accuracy(labels, clusters) == pytest.approx(4 / 6)
    assert hungarian_accuracy(labels, clusters) == pytest.approx(4 / 6)
    labels = [0, 0, 0, 0, 1, 2]
    clusters = [0, 0, 1, 1, 1, 2]
    assert majority_accuracy(labels, clusters) == pytest.approx(5 / 6)  # 2 + 2 + 1
    assert hungarian_accuracy(labels, clusters) == pytest.approx(4 / 6)  # c0->0 (2), c1->1 (1), c2->2 (1)


def test_contingency_table():
    table, cvals, lvals = contingency(np.array([3, 3, 9]), torch.tensor([1, 0, 0]))
    np.testing.assert_array_equal(table, [[1, 1], [1, 0]])
    np.testing.assert_array_equal(cvals, [0, 1])
    np.testing.assert_array_equal(lvals, [3, 9])


def test_against_brute_force_and_invariances():
    rng = np.random.default_rng(0)
    for _ in range(20):
        labels = rng.integers(0, 4, 30)
        clusters = rng.integers(0, 4, 30)
        best = max(sum(int(np.sum((clusters == c) & (labels == perm[c]))) for c in range(4))
                   for perm in itertools.permutations(range(4)))
        assert hungarian_accuracy(labels, clusters) == pytest.approx(best / 30)
        maj = sum(np.bincount(labels[clusters == c], minlength=4).max() for c in np.unique(clusters)) / 30
        assert majority_accuracy(labels, clusters) == pytest.approx(maj)
        assert hungarian_accuracy(labels, clusters) <= majority_accuracy(labels, clusters) + 1e-12
        renamed = rng.permutation(4)[clusters] + 10
        assert hungarian_accuracy(labels, renamed) == hungarian_accuracy(labels, clusters)
        assert majority_accuracy(labels, renamed) == majority_accuracy(labels, clusters)


def test_bad_inputs():
    with pytest.raises(ValueError, match="same length"):
        majority_accuracy([0, 1], [0])
    with pytest.raises(ValueError, match="empty"):
        hungarian_accuracy([], [])
    with pytest.raises(ValueError, match="dimension"):
        majority_accuracy(np.zeros((2, 2)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="n_clusters"):
        kmeans_scores(np.zeros((3, 2)), [0, 1, 2], n_clusters=4)


def test_kmeans_and_probe_on_separated_blobs():
    rng = np.random.default_rng(1)
    centres = np.array([[0, 0], [10, 0], [0, 10]], dtype=float)
    labels = np.repeat(np.arange(3), 20)
    x = centres[labels] + rng.standard_normal((60, 2))
    s = kmeans_scores(x, labels, seeds=(0, 1))
    assert s["majority"] == 1.0 and s["hungarian"] == 1.0 and s["majority_all"] == [1.0, 1.0]
    # an irrelevant feature with a huge scale dominates the distances and ruins k-means
    noisy = np.c_[x, 1000 * rng.standard_normal(60)]
    assert kmeans_scores(noisy, labels, seeds=(0,))["hungarian"] < 0.9
    assert linear_probe_accuracy(x[::2], labels[::2], x[1::2], labels[1::2]) == 1.0
