"""Seeding and the distances synthesis methods use as losses (plenoptic's ``tools.optim``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["l2_norm", "mse", "relative_sse", "set_seed"]


def set_seed(seed: int | None = None) -> None:
    """Seed the *global* torch and numpy generators (``torch.manual_seed``, ``np.random.seed``).

    This is the one place difflens touches global RNG state, on request: for
    notebooks and scripts that use global draws (``torch.rand``, ``torch.rand_like``).
    difflens itself never draws from them; its functions take explicit generators.
    ``seed=None`` does nothing. ``seed`` must be an int in ``[0, 2**32)``.
    """
    if seed is None:
        return
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int or None, got {type(seed).__name__}")
    if not 0 <= int(seed) < 2**32:
        raise ValueError(f"seed must be in [0, 2**32), got {seed}")
    torch.manual_seed(int(seed))
    np.random.seed(int(seed))


def mse(synth_rep: Tensor, ref_rep: Tensor, **kwargs: Any) -> Tensor:
    """Mean squared error over all elements, a 0-d tensor. Extra kwargs are ignored."""
    return torch.pow(synth_rep - ref_rep, 2).mean()


def l2_norm(synth_rep: Tensor, ref_rep: Tensor, **kwargs: Any) -> Tensor:
    """Euclidean norm of ``ref_rep - synth_rep`` over *all* elements (batch included), 0-d.

    ``sqrt(sum((x - y) ** 2))``; extra kwargs are ignored (plenoptic semantics).
    """
    return torch.linalg.vector_norm(ref_rep - synth_rep, ord=2)


def relative_sse(synth_rep: Tensor, ref_rep: Tensor, **kwargs: Any) -> Tensor:
    """``||ref - synth||^2 / ||ref||^2`` over all elements, a 0-d tensor."""
    return (torch.linalg.vector_norm(ref_rep - synth_rep, ord=2) ** 2
            / torch.linalg.vector_norm(ref_rep, ord=2) ** 2)
