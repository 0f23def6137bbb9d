"""The bundled handwritten digits (scikit-learn's 8x8 set), resized to MNIST-like images.

scikit-learn ships 1,797 digits of 8x8 pixels with values 0..16 (the UCI
"optical recognition of handwritten digits" test set), so this needs no
download. :func:`load_digits` scales them to [0, 1], resizes the 8x8 box to the
central ``20/28`` of a ``size x size`` canvas (as MNIST centres its digits in a
20x20 box inside 28x28) with bilinear interpolation, and returns a fixed,
stratified, disjoint train/test split.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["load_digits"]

_SPLITS = ("train", "test", "all")


def _split_indices(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split: per class, a seeded permutation; the first ``round(f * n_c)`` go to test."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        idx = idx[rng.permutation(len(idx))]
        n_test = int(round(test_fraction * len(idx)))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def load_digits(
    size: int = 28,
    split: str = "train",
    seed: int = 0,
    test_fraction: float = 0.25,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> tuple[Tensor, Tensor]:
    """scikit-learn's digits as ``(images, labels)`` on an MNIST-like canvas.

    Parameters
    ----------
    size: side of the square output images in pixels (default 28; >= 8). The
        8x8 digit fills the central ``round(size * 20 / 28)`` pixels.
    split: ``"train"``, ``"test"`` or ``"all"``.
    seed: seed of the stratified split (default 0). For one seed, ``"train"`` and
        ``"test"`` are disjoint and together make ``"all"``; the split does not
        touch any global random state.
    test_fraction: share of each class held out for ``"test"`` (default 0.25:
        1,347 train / 450 test images).
    device, dtype: where and how the images are returned.

    Returns
    -------
    images: ``(N, 1, size, size)`` float in [0, 1]; labels: ``(N,)`` int64 in 0..9.
    Samples keep the order of the original set.
    """
    from sklearn.datasets import load_digits as _sk_load_digits

    if split not in _SPLITS:
        raise ValueError(f"split must be one of {_SPLITS}, got {split!r}")
    if not isinstance(size, int) or size < 8:
        raise ValueError(f"size must be an int >= 8, got {size!r}")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    bunch = _sk_load_digits()
    images = np.asarray(bunch.images, dtype=np.float64) / 16.0  # (1797, 8, 8) in [0, 1]
    labels = np.asarray(bunch.target, dtype=np.int64)
    if split != "all":
        train_idx, test_idx = _split_indices(labels, test_fraction, int(seed))
        keep = train_idx if split == "train" else test_idx
        images, labels = images[keep], labels[keep]
    x = torch.from_numpy(images).to(torch.float64)[:, None]  # (N, 1, 8, 8)
    if size != 8:
        inner = max(8, int(round(size * 20 / 28)))
        x = F.interpolate(x, size=(inner, inner), mode="bilinear", align_corners=False)
        before = (size - inner) // 2
        after = size - inner - before
        x = F.pad(x, (before, after, before, after))
    x = x.clamp(0.0, 1.0).to(device=device, dtype=dtype)
    return x, torch.from_numpy(labels).to(device)
