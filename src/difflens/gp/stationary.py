"""Fused covariance matrices of the squared-exponential and Matérn kernels.

``stationary_matrix(a, b, log_variance, kind)`` returns ``variance * k(|a_i - b_j|^2)``
for inputs already divided by the lengthscales. It is one autograd node whose
backward works from the incoming gradient ``G`` directly:

    dL/dlog_variance = sum(G * K)
    dL/da_i = 2 * (rowsum(M)_i a_i - (M b)_i),  M = G * dK/dr2

(and symmetrically for ``b``), so a fitting step touches the ``N x M`` matrix
about ten times instead of the ~30 passes of an op-by-op autograd graph. The
lengthscale gradient reaches ``a`` and ``b`` through ordinary autograd.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["KINDS", "stationary_matrix"]

KINDS = ("se", "m12", "m32", "m52")
_S3, _S5 = math.sqrt(3.0), math.sqrt(5.0)


def _sqdist(a: Tensor, b: Tensor | None) -> Tensor:
    """Squared distances (N, M), >= 0; exact zeros on the diagonal when ``b is None``."""
    same = b is None
    b = a if same else b
    if a.shape[-1] == 1:
        d = a - b.reshape(1, -1)  # exact in 1-D
        return d.square_()
    na = a.square().sum(-1, keepdim=True)
    nb = na if same else b.square().sum(-1, keepdim=True)
    scale = na + nb.mT
    d2 = torch.addmm(scale, a, b.mT, alpha=-2.0).clamp_min_(0.0)
    # |a|^2 + |b|^2 - 2 a.b cancels for close pairs: its absolute error is ~eps * scale, so a
    # duplicate gets d2 ~ 1e-17 instead of 0 and r = sqrt(d2) ~ 3e-9 (float32: ~3e-4). Pairs within
    # sqrt(eps) of that scale are recomputed from their differences (few, unless the data repeat).
    close = torch.nonzero(d2 < scale.mul_(torch.finfo(d2.dtype).eps ** 0.5), as_tuple=True)
    if len(close[0]):
        d2[close] = (a[close[0]] - b[close[1]]).square().sum(-1)
    if same:
        d2.diagonal().zero_()
    return d2


def _profile(r2: Tensor, kind: str, log_variance: Tensor) -> tuple[Tensor, Tensor | None]:
    """``(K, aux)``: the kernel matrix and what its backward needs besides ``K``."""
    if kind == "se":
        return torch.add(log_variance, r2, alpha=-0.5, out=r2).exp_(), None
    s = r2.sqrt_().mul_(_S3 if kind == "m32" else (_S5 if kind == "m52" else 1.0))  # r2 now holds s
    e = torch.exp(log_variance - s)  # variance * exp(-s)
    if kind == "m12":
        return e, s
    if kind == "m32":
        return (1.0 + s).mul_(e), e  # dK/dr2 = -(3/2) v e^-s
    poly = s.square().div_(3.0).add_(s).add_(1.0)
    return poly.mul_(e), (1.0 + s).mul_(e)  # dK/dr2 = -(5/6) v (1 + s) e^-s


class _Stationary(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor | None, log_variance: Tensor, kind: str):  # type: ignore[override]
        # k depends on a - b only: centring keeps |a|^2 + |b|^2 - 2ab (and the backward's
        # rowsum(M) a - M b) from cancelling away digits when the inputs sit far from 0
        shift = a.mean(0, keepdim=True)
        a = a - shift
        b = None if b is None else b - shift
        K, aux = _profile(_sqdist(a, b), kind, log_variance)
        ctx.kind = kind
        ctx.save_for_backward(a, b, K, aux)
        return K

    @staticmethod
    def backward(ctx, G: Tensor):  # type: ignore[override]
        a, b, K, aux = ctx.saved_tensors
        kind = ctx.kind
        need_a, need_b, need_v = ctx.needs_input_grad[0], ctx.needs_input_grad[1], ctx.needs_input_grad[2]
        if not (need_a or need_b):
            return None, None, (torch.dot(G.reshape(-1), K.reshape(-1)) if need_v else None), None
        # M = G * dK/dr2 / c, with the constant c applied to the small (N, D) results
        if kind == "se":  # dK/dr2 = -K / 2; d/dlog_variance = sum(M), taken from M's row sums below
            M, c = torch.mul(G, K), -0.5
            g_v = None
        else:
            g_v = torch.dot(G.reshape(-1), K.reshape(-1)) if need_v else None
            if kind == "m12":  # dK/dr2 = -K / (2 r), taken as 0 at r = 0
                s = aux
                M, c = torch.mul(G, K).div_(s.clamp_min(torch.finfo(s.dtype).tiny)), -0.5
                M.masked_fill_(s == 0, 0.0)
            else:  # m32: -(3/2) v e^-s;  m52: -(5/6) v (1 + s) e^-s
                M, c = torch.mul(G, aux), (-1.5 if kind == "m32" else -5.0 / 6.0)
        # each product with [1, x] reads M once and gives a row (or column) sum and M x together;
        # G need not be symmetric (the likelihood passes only a triangle of K^-1), so both are needed
        g_a = g_b = None
        if b is None:
            ones_a = torch.cat([torch.ones_like(a[:, :1]), a], 1)
            rows, cols = M @ ones_a, (ones_a.mT @ M).mT  # (x^T M)^T: M.mT @ x is ~10x slower in torch
            if kind == "se" and need_v:
                g_v = rows[:, 0].sum()
            g_a = (rows[:, :1] + cols[:, :1]) * a
            g_a -= rows[:, 1:]
            g_a -= cols[:, 1:]
            g_a *= 2.0 * c
        else:
            if need_a:
                rows = M @ torch.cat([torch.ones_like(b[:, :1]), b], 1)
                if kind == "se" and need_v:
                    g_v = rows[:, 0].sum()
                g_a = (2.0 * c) * (rows[:, :1] * a - rows[:, 1:])
            if need_b:
                cols = (torch.cat([torch.ones_like(a[:, :1]), a], 1).mT @ M).mT
                g_b = (2.0 * c) * (cols[:, :1] * b - cols[:, 1:])
        if need_v and g_v is None:  # "se" with only b's gradient wanted
            g_v = M.sum()
        return g_a, g_b, g_v, None


def stationary_matrix(a: Tensor, b: Tensor | None, log_variance: Tensor, kind: str) -> Tensor:
    """``exp(log_variance) * k(|a_i - b_j|^2)``, shape (N, M); ``b=None`` means ``b = a``.

    ``a`` (N, D), ``b`` (M, D): inputs divided by the lengthscale(s). ``kind``:
    ``"se"`` ``exp(-r^2/2)``; ``"m12"``, ``"m32"``, ``"m52"``: Matérn 1/2, 3/2, 5/2.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    return _Stationary.apply(a, b, log_variance.to(a), kind)
