"""Input checks shared by the neural-process models, the oracle and the evaluation."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["check_context"]


def _check(t, name: str) -> None:
    if not isinstance(t, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (B, N, D), got {type(t).__name__}")
    if t.ndim != 3:
        raise ValueError(f"{name} must have shape (B, N, D) (batch, points, dimensions), got {tuple(t.shape)}")
    if not t.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {t.dtype}")


def check_context(x_context: Tensor, y_context: Tensor, x_target: Tensor, y_target: Tensor | None = None) -> None:
    """Raise a ``TypeError``/``ValueError`` naming the problem with a context/target set.

    ``x_context`` (B, N, Dx), ``y_context`` (B, N, Dy), ``x_target`` (B, M, Dx), optional
    ``y_target`` (B, M, Dy). ``N = 0`` (an empty context) is allowed: models then predict
    their prior. NaN or inf anywhere is refused.
    """
    names = ["x_context", "y_context", "x_target"] + (["y_target"] if y_target is not None else [])
    tensors = [x_context, y_context, x_target] + ([y_target] if y_target is not None else [])
    for t, name in zip(tensors, names):
        _check(t, name)
    if len({t.shape[0] for t in tensors}) != 1:
        raise ValueError(f"batch sizes differ: {dict(zip(names, (t.shape[0] for t in tensors)))}")
    if x_context.shape[1] != y_context.shape[1]:
        raise ValueError(f"x_context has {x_context.shape[1]} points but y_context has {y_context.shape[1]}")
    if x_context.shape[-1] != x_target.shape[-1]:
        raise ValueError(f"context and target have different input dimensions: x_context has "
                         f"{x_context.shape[-1]}, x_target has {x_target.shape[-1]}")
    if y_target is not None and (y_target.shape[1] != x_target.shape[1] or y_target.shape[-1] != y_context.shape[-1]):
        raise ValueError(f"y_target must have shape (B, {x_target.shape[1]}, {y_context.shape[-1]}), "
                         f"got {tuple(y_target.shape)}")
    for t, name in zip(tensors, names):
        if t.numel() and not bool(torch.isfinite(t).all()):
            bad = (~torch.isfinite(t)).reshape(t.shape[0], -1).any(-1).nonzero().reshape(-1)[:5].tolist()
            raise ValueError(f"{name} contains NaN or inf (first tasks {bad})")
