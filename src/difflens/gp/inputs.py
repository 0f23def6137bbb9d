"""Input checks and conversions for the GP classes (NumPy or torch in, float64 tensors out)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["NotFittedError", "as_inputs", "as_targets", "is_numpy_like"]


class NotFittedError(ValueError, AttributeError):
    """The model was used before :meth:`fit` (like scikit-learn's ``NotFittedError``)."""


def is_numpy_like(x: Any) -> bool:
    """Whether outputs for input ``x`` should be NumPy arrays (anything that is not a torch tensor)."""
    return not isinstance(x, Tensor)


def _to_tensor(x: Any, name: str, dtype: torch.dtype, device: torch.device) -> Tensor:
    if isinstance(x, Tensor):
        t = x.detach()
    elif isinstance(x, (np.ndarray, list, tuple, np.generic, float, int)):
        arr = np.asarray(x)
        if arr.dtype == object:
            raise TypeError(f"{name} must be numeric, got an array of Python objects (ragged input?)")
        t = torch.from_numpy(np.ascontiguousarray(arr))
    else:
        raise TypeError(f"{name} must be a NumPy array or a torch tensor, got {type(x).__name__}")
    if t.is_complex() or t.dtype == torch.bool or not (t.is_floating_point() or t.dtype in
                                                       (torch.int8, torch.int16, torch.int32, torch.int64,
                                                        torch.uint8)):
        raise TypeError(f"{name} must be real-valued (float or int), got dtype {t.dtype}")
    return t.to(device=device, dtype=dtype)


def _check_finite(t: Tensor, name: str) -> None:
    bad = ~torch.isfinite(t)
    if bool(bad.any()):
        rows = bad.reshape(t.shape[0], -1).any(-1).nonzero().reshape(-1)
        first = rows[:5].tolist()
        raise ValueError(f"{name} contains NaN or inf in {int(rows.numel())} row(s), first at rows {first}")


def as_inputs(x: Any, name: str = "X", dim: int | None = None, dtype: torch.dtype = torch.float64,
              device: torch.device | str = "cpu") -> Tensor:
    """``x`` as a finite ``(N, D)`` tensor; a 1-D ``(N,)`` input becomes ``(N, 1)``.

    ``dim``: the number of input dimensions required (the training data's), or None.
    """
    t = _to_tensor(x, name, dtype, torch.device(device))
    if t.ndim == 1:
        t = t.unsqueeze(-1)
    if t.ndim != 2:
        raise ValueError(f"{name} must have shape (N, D) or (N,), got shape {tuple(t.shape)}")
    if dim is not None and t.shape[1] != dim:
        raise ValueError(f"{name} has {t.shape[1]} input dimension(s) but the model was fitted on {dim}")
    _check_finite(t, name)
    return t


def as_targets(y: Any, n: int, name: str = "y", dtype: torch.dtype = torch.float64,
               device: torch.device | str = "cpu") -> Tensor:
    """``y`` as a finite ``(N,)`` tensor; ``(N, 1)`` is accepted, several outputs are not."""
    t = _to_tensor(y, name, dtype, torch.device(device))
    if t.ndim == 2 and t.shape[1] == 1:
        t = t[:, 0]
    if t.ndim != 1:
        raise ValueError(f"{name} must have shape (N,) or (N, 1) (one output), got shape {tuple(t.shape)}")
    if t.shape[0] != n:
        raise ValueError(f"X has {n} rows but {name} has {t.shape[0]} values; they must match")
    _check_finite(t.unsqueeze(-1), name)
    return t
