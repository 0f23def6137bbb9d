"""RK4 on a uniform grid compiled by ``torch.compile`` (inductor: fused C++ loops on the CPU).

Used by :func:`difflens.dynamics.integrate` with ``compile=True``. A chunk of
``unroll`` steps is traced once into one graph, which inductor fuses into a few
loops over the batch, writing each output state straight into the result
buffer; Python runs once per chunk instead of once per operation. The first
call for a given field type, state shape and step compiles (tens of seconds
with gcc); later calls reuse it.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["UNROLL", "compiled_rk4"]

UNROLL = 10  # RK4 steps traced into one compiled graph
_CHUNKS: dict[tuple, object] = {}


def _chunk(f: nn.Module, x: Tensor, out: Tensor, s: Tensor, h: float, sub: int) -> Tensor:
    """``out.shape[0]`` outputs, each after ``sub`` RK4 steps of size ``h`` from ``(s, x)`` (component-major)."""
    hh = 0.5 * h
    for i in range(out.shape[0]):
        for _ in range(sub):
            k1 = f.forward_cm(s, x)
            k2 = f.forward_cm(s + hh, x + hh * k1)
            k3 = f.forward_cm(s + hh, x + hh * k2)
            k4 = f.forward_cm(s + h, x + h * k3)
            x = x + (h / 6.0) * (k1 + 2.0 * (k2 + k3) + k4)
            s = s + h
        out[i].copy_(x)
    return x


def compiled_rk4(f: nn.Module, x0: Tensor, t: Tensor, h: float, sub: int) -> Tensor | None:
    """States ``(len(t), d, B)`` (component-major) of RK4 with ``sub`` steps of ``h`` per interval of ``t``.

    ``t`` must be uniform with spacing ``sub * h``. None when ``f`` has no
    ``forward_cm`` or ``torch.compile`` is unavailable.
    """
    if not hasattr(f, "forward_cm") or sub > UNROLL:
        return None
    n = max(1, UNROLL // sub)
    key = (type(f), n)
    chunk = _CHUNKS.get(key)
    if chunk is None:
        try:
            chunk = torch.compile(_chunk, dynamic=False, fullgraph=True)
        except Exception:  # noqa: BLE001 - no compiler: the caller falls back to TorchScript
            return None
        _CHUNKS[key] = chunk
    x = x0.reshape(-1, x0.shape[-1]).t().contiguous()
    out = torch.empty((t.shape[0],) + x.shape, dtype=x.dtype, device=x.device)
    out[0] = x
    T = t.shape[0] - 1
    full = T - T % n
    s = t[0].clone()
    with torch.no_grad():
        for i in range(0, full, n):
            x = chunk(f, x, out[1 + i:1 + i + n], s, h, sub)
            s = t[i + n]
        for i in range(full, T):  # the remainder, eagerly (fewer than n outputs)
            x = _chunk(f, x, out[1 + i:2 + i], s, h, sub)
            s = t[i + 1]
    return out
