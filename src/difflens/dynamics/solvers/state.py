"""A state of any structure (0-d to N-d tensor, complex, or a tuple of tensors) as one flat real vector."""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["FlatState", "flat_tolerance"]


class FlatState:
    """The layout of a state ``y0``: flattens it (and derivatives, tolerances) to ``(N,)`` real and back."""

    def __init__(self, y0: Tensor | tuple[Tensor, ...], name: str = "y0") -> None:
        self.is_tuple = isinstance(y0, (tuple, list))
        pieces = tuple(y0) if self.is_tuple else (y0,)
        if self.is_tuple and not pieces:
            raise ValueError(f"{name} is an empty tuple")
        for i, p in enumerate(pieces):
            what = f"{name}[{i}]" if self.is_tuple else name
            if not isinstance(p, Tensor):
                raise TypeError(f"{what} must be a torch.Tensor (or a tuple of them), got {type(p).__name__}")
            if not (p.is_floating_point() or p.is_complex()):
                raise TypeError(f"{what} must be a floating-point or complex tensor, got {p.dtype}")
        devices = {p.device for p in pieces}
        if len(devices) > 1:
            raise ValueError(f"the tensors of {name} are on different devices: {sorted(map(str, devices))}")
        self.shapes = [p.shape for p in pieces]
        self.dtypes = [p.dtype for p in pieces]
        self.complex = [p.is_complex() for p in pieces]
        self.real_dtype = pieces[0].real.dtype if not self.complex[0] else pieces[0].real.dtype
        for p in pieces[1:]:
            self.real_dtype = torch.promote_types(self.real_dtype, p.real.dtype if p.is_complex() else p.dtype)
        self.sizes = [p.numel() * (2 if c else 1) for p, c in zip(pieces, self.complex)]
        self.offsets = [0]
        for s in self.sizes:
            self.offsets.append(self.offsets[-1] + s)
        self.device = pieces[0].device
        self.plain = not self.is_tuple and not self.complex[0]
        self.same_dtype = self.plain and self.dtypes[0] == self.real_dtype

    @property
    def n(self) -> int:
        return self.offsets[-1]

    def _piece_flat(self, i: int, p: Tensor) -> Tensor:
        if self.complex[i]:
            p = torch.view_as_real(p.to(self.dtypes[i]).resolve_conj())
        return p.reshape(-1).to(self.real_dtype)

    def flatten(self, y) -> Tensor:
        if self.plain:
            return y.reshape(-1).to(self.real_dtype)
        pieces = tuple(y) if self.is_tuple else (y,)
        return torch.cat([self._piece_flat(i, p) for i, p in enumerate(pieces)])

    def flatten_derivative(self, dy, y) -> Tensor:
        """``f``'s output, checked against the state's structure, flattened."""
        if self.is_tuple:
            if not isinstance(dy, (tuple, list)) or len(dy) != len(self.shapes):
                raise ValueError(f"func(t, y) must return a tuple of {len(self.shapes)} tensors for a tuple state, "
                                 f"got {type(dy).__name__}" + (f" of length {len(dy)}" if isinstance(dy, (tuple, list))
                                                               else ""))
            pieces = tuple(dy)
        else:
            pieces = (dy,)
        for i, p in enumerate(pieces):
            if not isinstance(p, Tensor):
                raise TypeError(f"func(t, y) must return torch.Tensor derivatives, got {type(p).__name__}")
            if p.shape != self.shapes[i]:
                what = f"[{i}]" if self.is_tuple else ""
                raise ValueError(f"func(t, y){what} returned a derivative of shape {list(p.shape)} for a state of "
                                 f"shape {list(self.shapes[i])}; it must have the state's shape")
        if self.plain:
            dy = dy.reshape(-1)
            return dy if dy.dtype == self.real_dtype else dy.to(self.real_dtype)
        return torch.cat([self._piece_flat(i, p) for i, p in enumerate(pieces)])

    def unflatten(self, flat: Tensor, lead: tuple[int, ...] = ()):
        """``(*lead, N)`` -> the state structure with leading dims ``lead``."""
        if self.same_dtype:
            return flat.view((*lead, *self.shapes[0])) if flat.is_contiguous() else flat.reshape(
                (*lead, *self.shapes[0]))
        if self.plain:
            return flat.reshape((*lead, *self.shapes[0])).to(self.dtypes[0])
        out = []
        for i in range(len(self.shapes)):
            # a slice then a view, as torchdiffeq lays out tuple outputs
            p = flat[..., self.offsets[i]:self.offsets[i + 1]]
            if self.complex[i]:
                p = torch.view_as_complex(p.reshape((*lead, *self.shapes[i], 2)).contiguous())
            else:
                p = p.view((*lead, *self.shapes[i])) if p.is_contiguous() or lead else p.reshape(self.shapes[i])
            out.append(p.to(self.dtypes[i]))
        return tuple(out) if self.is_tuple else out[0]

    def split(self, flat: Tensor) -> list[Tensor]:
        """The pieces of a flat vector, each flat (real view for complex pieces)."""
        return [flat[self.offsets[i]:self.offsets[i + 1]] for i in range(len(self.shapes))]

    def mixed_norm(self, x: Tensor) -> Tensor:
        """RMS of a flat vector, or the largest RMS of its pieces for a tuple state."""
        if len(self.shapes) == 1:
            return x.pow(2).mean().sqrt() if x.numel() else x.new_zeros(())
        return torch.stack([p.pow(2).mean().sqrt() if p.numel() else p.new_zeros(()) for p in self.split(x)]).max()


def flat_tolerance(tol, name: str, state: FlatState) -> float | Tensor:
    """A tolerance as a float, or a flat ``(N,)`` tensor for per-element tolerances; clear errors otherwise."""
    if isinstance(tol, (int, float)) and not isinstance(tol, bool):
        if not (tol >= 0 and math.isfinite(tol)):
            raise ValueError(f"{name} must be a finite number >= 0, got {tol}")
        return float(tol)
    n_pieces = len(state.shapes)
    if isinstance(tol, (tuple, list)):
        if not state.is_tuple or len(tol) != n_pieces:
            raise ValueError(f"{name} given as a sequence of {len(tol)} must have one entry per tensor of a tuple "
                             f"state ({n_pieces if state.is_tuple else 'not a tuple'})")
        items = list(tol)
    elif isinstance(tol, Tensor):
        if tol.is_complex() or not (tol.is_floating_point() or tol.dtype in (torch.int32, torch.int64)):
            raise TypeError(f"{name} must be a real tensor, got {tol.dtype}")
        if tol.numel() == 1:
            v = float(tol)
            return flat_tolerance(v, name, state)
        if state.is_tuple:
            if tol.ndim != 1 or tol.numel() != n_pieces:
                raise ValueError(f"{name} has shape {list(tol.shape)}; for a tuple state of {n_pieces} tensors give "
                                 f"a scalar, a 1-D tensor of {n_pieces} (one per tensor) or a tuple of tensors")
            items = list(tol.unbind(0))
        else:
            items = [tol]
    else:
        raise TypeError(f"{name} must be a number, a tensor or (for a tuple state) a tuple, got {type(tol).__name__}")
    flat = []
    for i, (item, shape) in enumerate(zip(items, state.shapes)):
        item = torch.as_tensor(item, dtype=state.real_dtype, device=state.device).detach()
        try:
            b = torch.broadcast_to(item, shape)
        except RuntimeError:
            where = f" (for y0[{i}])" if state.is_tuple else ""
            raise ValueError(f"{name} has shape {list(item.shape)}, which does not broadcast to the state's shape "
                             f"{list(shape)}{where}; give a scalar or a per-element tensor of the state's shape")
        if state.complex[i]:
            b = b.unsqueeze(-1).expand(*shape, 2)
        flat.append(b.reshape(-1))
    out = torch.cat(flat)
    if bool((out < 0).any()) or not bool(torch.isfinite(out).all()):
        raise ValueError(f"{name} must be finite and >= 0 everywhere")
    return out
