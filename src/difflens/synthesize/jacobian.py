"""Jacobian products of a model linearised at one input, with a product counter.

:class:`JacobianOperator` linearises ``fn`` at ``x`` and gives the products
with its Jacobian ``J`` (shape ``(m, n)``, ``n = x.numel()``,
``m = fn(x).numel()``) without forming it:

- ``jvp(V)``   = ``J v`` for each row ``v`` of ``V``          (``(k, n) -> (k, m)``)
- ``vjp(U)``   = ``Jᵀ u`` for each row ``u`` of ``U``         (``(k, m) -> (k, n)``)
- ``fisher(V)``= ``JᵀJ v`` (the Fisher matrix under white Gaussian output noise)
- ``jacobian()``: the full ``(m, n)`` matrix, by rows or columns, whichever is fewer.

Every product of one vector with ``J`` or ``Jᵀ`` adds one to ``n_jvp`` or
``n_vjp`` (a batch of ``k`` vectors counts ``k``; ``fisher`` counts one of
each), so solvers can be compared by how many products they need.

The model is run forward once, at construction. Both products then reuse
cached autograd graphs:

- ``vjp`` is one backward pass through the forward graph.
- ``jvp`` (``mode="reverse"``, the default when it works) uses the double-backward
  trick: ``g(u) = Jᵀu`` is built once as a graph that is linear in a dummy ``u``,
  and ``J v`` is the backward of ``g`` with respect to ``u``. No forward re-run.
- ``mode="forward"`` computes ``J v`` with forward-mode AD (dual tensors), which
  re-runs the model each call; use it for models whose backward is not twice
  differentiable. ``mode="auto"`` tries ``"reverse"`` and falls back to ``"forward"``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
import torch.autograd.forward_ad as fwAD
from torch import Tensor

__all__ = ["JacobianOperator"]

Mode = Literal["auto", "reverse", "forward"]


class JacobianOperator:
    """Products with the Jacobian of ``fn`` at ``x``; see the module docstring.

    Parameters
    ----------
    fn: callable taking a tensor shaped like ``x`` and returning one tensor (any shape).
    x: the point of linearisation, any shape, floating dtype; it is detached and cloned.
    mode: ``"auto"`` (default), ``"reverse"`` or ``"forward"``: how ``J v`` is computed.
    chunk_size: how many vectors go through autograd at once in batched products
        (``None``: all of them); batches that autograd cannot vectorise fall back to a loop.

    Attributes
    ----------
    n, m: input and output sizes. input_shape, output_shape: the original shapes.
    output: ``fn(x)``, detached. n_jvp, n_vjp: products counted so far.
    """

    def __init__(self, fn: Callable[[Tensor], Tensor], x: Tensor, *, mode: Mode = "auto",
                 chunk_size: int | None = None) -> None:
        if mode not in ("auto", "reverse", "forward"):
            raise ValueError(f"mode must be 'auto', 'reverse' or 'forward', got {mode!r}")
        if not isinstance(x, Tensor) or not x.is_floating_point():
            raise TypeError(f"x must be a floating-point tensor, got {type(x).__name__}"
                            + (f" of dtype {x.dtype}" if isinstance(x, Tensor) else ""))
        self.fn = fn
        self.mode: Mode = mode
        self.chunk_size = chunk_size
        self.input_shape = x.shape
        self.n = x.numel()
        self._x = x.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            y = fn(self._x)
        if not isinstance(y, Tensor):
            raise TypeError(f"the model must return a single tensor, got {type(y).__name__}")
        if not y.is_floating_point():
            raise TypeError(f"the model output must be floating point, got dtype {y.dtype}")
        if not y.requires_grad:
            raise ValueError("the model output does not depend on its input (no gradient path from "
                             "input to output): there is no Jacobian to analyse")
        self.output_shape = y.shape
        self.output = y.detach()
        self.m = y.numel()
        self._y = y.reshape(-1)
        self._u: Tensor | None = None  # dummy for the double-backward trick
        self._g: Tensor | None = None  # g(u) = J^T u, a graph linear in u
        self.n_jvp = 0
        self.n_vjp = 0

    # -- bookkeeping ------------------------------------------------------------
    @property
    def n_products(self) -> int:
        """Total Jacobian products (``n_jvp + n_vjp``)."""
        return self.n_jvp + self.n_vjp

    def reset_counts(self) -> None:
        """Set both product counters back to zero."""
        self.n_jvp = 0
        self.n_vjp = 0

    @property
    def dtype(self) -> torch.dtype:
        return self._x.dtype

    @property
    def device(self) -> torch.device:
        return self._x.device

    @property
    def x(self) -> Tensor:
        """The point of linearisation (detached)."""
        return self._x.detach()

    # -- products -----------------------------------------------------------------
    def vjp(self, U: Tensor) -> Tensor:
        """``Jᵀ u`` for ``U`` of shape ``(m,)`` or ``(k, m)``; returns ``(n,)`` or ``(k, n)``."""
        U, single = self._rows(U, self.m, "vjp", self.output.dtype)
        out = self._batched(lambda u, batched=False: self._grad(self._y, self._x, u, batched), U,
                            self.n)
        self.n_vjp += U.shape[0]
        return out[0] if single else out

    def jvp(self, V: Tensor) -> Tensor:
        """``J v`` for ``V`` of shape ``(n,)`` or ``(k, n)``; returns ``(m,)`` or ``(k, m)``."""
        V, single = self._rows(V, self.n, "jvp")
        if self.mode == "auto":
            try:
                out = self._batched(self._jvp_reverse, V, self.m)
                self.mode = "reverse"
            except RuntimeError:
                self.mode = "forward"
                self._u = self._g = None
                out = self._loop(self._jvp_forward, V, self.m)
        elif self.mode == "reverse":
            out = self._batched(self._jvp_reverse, V, self.m)
        else:
            out = self._loop(self._jvp_forward, V, self.m)
        self.n_jvp += V.shape[0]
        return out[0] if single else out

    def fisher(self, V: Tensor) -> Tensor:
        """``JᵀJ v`` for ``V`` of shape ``(n,)`` or ``(k, n)`` (one jvp and one vjp per vector)."""
        return self.vjp(self.jvp(V))

    def jacobian(self, chunk_size: int | None = None) -> Tensor:
        """The full Jacobian, shape ``(m, n)``, from ``min(m, n)`` products.

        ``chunk_size`` (default: about 2**22 output elements per batch) bounds memory.
        """
        k = min(self.m, self.n)
        if chunk_size is None:
            chunk_size = max(1, min(k, 2 ** 22 // max(self.m, self.n)))
        eye = torch.eye(k, dtype=self.dtype, device=self.device)
        if self.m <= self.n:  # rows: J^T e_i
            return torch.cat([self.vjp(eye[i:i + chunk_size]) for i in range(0, k, chunk_size)])
        cols = [self.jvp(eye[i:i + chunk_size]) for i in range(0, k, chunk_size)]
        return torch.cat(cols).T.contiguous()

    # -- internals ----------------------------------------------------------------
    def _rows(self, A: Tensor, size: int, name: str,
              dtype: torch.dtype | None = None) -> tuple[Tensor, bool]:
        if not isinstance(A, Tensor):
            raise TypeError(f"{name} expects a tensor, got {type(A).__name__}")
        single = A.dim() == 1
        A = A.reshape(1, -1) if single else A
        if A.dim() != 2 or A.shape[1] != size:
            raise ValueError(f"{name} expects shape ({size},) or (k, {size}), got {tuple(A.shape)}")
        return A.to(dtype=dtype or self.dtype, device=self.device), single

    @staticmethod
    def _grad(out: Tensor, inp: Tensor, grad_out: Tensor, batched: bool = False) -> Tensor:
        (g,) = torch.autograd.grad(out, inp, grad_out.reshape(*grad_out.shape[:batched], *out.shape),
                                   retain_graph=True, allow_unused=True, is_grads_batched=batched)
        if g is None:  # output independent of the input along this path
            return torch.zeros(*grad_out.shape[:batched], inp.numel(), dtype=out.dtype,
                               device=out.device)
        return g.reshape(*grad_out.shape[:batched], -1).detach()

    def _batched(self, one: Callable[..., Tensor], A: Tensor, out_size: int) -> Tensor:
        """Apply ``one`` to each row of ``A``: vectorised by autograd when possible."""
        if A.shape[0] == 1:
            return one(A[0]).reshape(1, out_size)
        step = self.chunk_size or A.shape[0]
        outs = []
        for i in range(0, A.shape[0], step):
            chunk = A[i:i + step]
            try:
                outs.append(one(chunk, batched=True).reshape(chunk.shape[0], out_size))
            except RuntimeError:
                outs.append(self._loop(one, chunk, out_size))
        return torch.cat(outs)

    @staticmethod
    def _loop(one: Callable[..., Tensor], A: Tensor, out_size: int) -> Tensor:
        return torch.stack([one(a).reshape(out_size) for a in A])

    def _jvp_reverse(self, v: Tensor, batched: bool = False) -> Tensor:
        if self._g is None:
            self._u = torch.zeros_like(self._y, requires_grad=True)
            with torch.enable_grad():
                (g,) = torch.autograd.grad(self._y, self._x, self._u, retain_graph=True,
                                           create_graph=True)
            if not g.requires_grad:
                raise RuntimeError("double backward unavailable")
            self._g = g.reshape(-1)
        return self._grad(self._g, self._u, v, batched)

    def _jvp_forward(self, v: Tensor) -> Tensor:
        with torch.no_grad(), fwAD.dual_level():
            dual = fwAD.make_dual(self._x.detach(), v.reshape(self.input_shape))
            out = fwAD.unpack_dual(self.fn(dual)).tangent
        if out is None:
            return torch.zeros(self.m, dtype=self.dtype, device=self.device)
        return out.reshape(-1)
