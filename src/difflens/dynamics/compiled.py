"""RK4 on a uniform grid compiled by ``torch.compile`` (inductor: fused C++ loops on the CPU).

Used by :func:`difflens.dynamics.integrate` with ``compile=True``. A chunk of
``unroll`` steps is traced once into one graph, and inductor turns it into one
or two loops over the batch that keep the stages in registers and write each
output state into one buffer that is copied to the result; Python runs once
per chunk instead of once per operation.

Inside the chunk a state of ``d <= MAX_ROWS`` components is carried as its
rows (each a contiguous ``(B,)`` vector: structure of arrays; a larger state
as one ``(d, B)`` tensor). The field is still called as
``f.forward_cm(t, x)`` on a ``(d, B)`` tensor, ``torch.stack`` of the rows, and
its result is unbound again; :func:`fold_stack_unbind` removes every such
``unbind(stack(rows))`` pair from the traced graph, so a field written with
``unbind`` and ``stack`` (as the difflens systems are) becomes pure row
arithmetic that inductor fuses across all stages and steps. Without the fold
each stage's ``(d, B)`` tensor is materialised, one loop per stage (about 3x
slower). A field that does not unbind its input (e.g. ``torch.roll``) still
works; it just keeps its ``(d, B)`` intermediates.

The first call for a given field type, state shape, dtype and number of
substeps compiles (7-10 s with gcc on an idle core, several times that on a
busy one; inductor's on-disk cache shortens it in later processes); later
calls reuse it. All of them share dynamo's cache for ``_chunk``, so after
``torch._dynamo.config.recompile_limit`` (8) variants a new one runs eagerly.
The numbers are the
classic RK4's, up to round-off (the C++ compiler may contract ``a * b + c``
into one fused multiply-add).
"""

from __future__ import annotations

import operator
import warnings
from collections.abc import Callable

import torch
from torch import Tensor, nn

__all__ = ["MAX_ROWS", "UNROLL", "compiled_rk4", "fold_stack_unbind"]

UNROLL = 10  # RK4 steps traced into one compiled graph (20 gains ~15% and compiles ~10x longer)
MAX_ROWS = 8  # states with more components are carried as one (d, B) tensor (a graph of d rows grows with d)
_CHUNKS: dict[tuple, Callable] = {}


def _is_unbind(node: torch.fx.Node) -> bool:
    return ((node.op == "call_method" and node.target == "unbind")
            or (node.op == "call_function" and node.target in (torch.unbind, torch.ops.aten.unbind.int)))


def _dim_arg(node: torch.fx.Node, index: int) -> object:
    if len(node.args) > index:
        return node.args[index]
    return node.kwargs.get("dim", 0)


def fold_stack_unbind(gm: torch.fx.GraphModule) -> int:
    """Replace ``torch.stack(xs, d).unbind(d)[i]`` by ``xs[i]`` in a traced graph; returns how many were folded.

    Only exact pairs are folded: the same dimension (0 or given the same way),
    every user of the ``unbind`` an integer ``getitem``, and each stacked tensor
    of the ``unbind`` result's shape and dtype (``torch.stack`` may promote
    dtypes; then the pair is left alone). A ``stack`` left without users is removed.
    """
    graph = gm.graph
    folded = 0
    for node in list(graph.nodes):
        if not _is_unbind(node) or not node.args:
            continue
        src = node.args[0]
        if not (isinstance(src, torch.fx.Node) and src.op == "call_function" and src.target is torch.stack):
            continue
        items = src.args[0] if src.args else src.kwargs.get("tensors")
        if not isinstance(items, (list, tuple)) or not all(isinstance(x, torch.fx.Node) for x in items):
            continue
        dim_stack, dim_unbind = _dim_arg(src, 1), _dim_arg(node, 1)
        if not (isinstance(dim_stack, int) and dim_stack == dim_unbind and dim_stack >= 0):
            continue
        users = list(node.users)
        if not all(u.op == "call_function" and u.target is operator.getitem and isinstance(u.args[1], int)
                   for u in users):
            continue
        same = True
        for u in users:
            a, b = items[u.args[1]].meta.get("example_value"), u.meta.get("example_value")
            if not (isinstance(a, Tensor) and isinstance(b, Tensor) and a.shape == b.shape and a.dtype == b.dtype):
                same = False
        if not same:
            continue
        for u in users:
            u.replace_all_uses_with(items[u.args[1]])
            graph.erase_node(u)
        graph.erase_node(node)
        if not src.users:
            graph.erase_node(src)
        folded += 1
    if folded:  # no graph.eliminate_dead_code(): it would drop the in-place out.copy_ (its result is unused)
        gm.recompile()
    return folded


def _inductor_on_rows(gm: torch.fx.GraphModule, example_inputs: list) -> Callable:
    """A ``torch.compile`` backend: :func:`fold_stack_unbind`, then inductor."""
    import torch._inductor as inductor

    fold_stack_unbind(gm)
    return inductor.compile(gm, example_inputs)


def _stage(f: nn.Module, s: Tensor, r: list[Tensor]) -> list[Tensor]:
    """``f.forward_cm`` on a state held as its rows (``d`` tensors ``(B,)``) or as one ``(d, B)`` tensor."""
    if len(r) == 1:
        return [f.forward_cm(s, r[0])]
    return list(f.forward_cm(s, torch.stack(r)).unbind(0))


def _chunk(f: nn.Module, x: Tensor, out: Tensor, s: Tensor, steps: Tensor, sub: int, by_rows: bool) -> Tensor:
    """Writes ``out.shape[0]`` states into ``out`` ``(n, d, B)``, each ``sub`` RK4 steps after the last.

    ``x`` is the starting state ``(d, B)`` at time ``s`` ``(1,)``; ``steps`` holds ``(h, h / 2, h / 6)``.
    Both are 1-D tensors: dynamo reads a Python float or a 0-d tensor argument as a number, traces
    twice and then specialises on its value. ``by_rows``: carry the state as its ``d`` rows (else as
    one ``(d, B)`` tensor). Returns the last state as a new contiguous tensor (not a view: a view of
    ``out`` would alias the next call's ``out``, a view of another buffer brings that buffer's guards).
    """
    h, hh, h6 = steps.unbind(0)
    s = s[0]
    r = list(x.unbind(0)) if by_rows else [x]
    rows = []  # every output state's rows, stacked once at the end: each is computed straight into its slice
    for _ in range(out.shape[0]):
        for _ in range(sub):
            k1 = _stage(f, s, r)
            k2 = _stage(f, s + hh, [a + hh * k for a, k in zip(r, k1)])
            k3 = _stage(f, s + hh, [a + hh * k for a, k in zip(r, k2)])
            k4 = _stage(f, s + h, [a + h * k for a, k in zip(r, k3)])
            r = [a + h6 * (p + 2.0 * (q + w) + z) for a, p, q, w, z in zip(r, k1, k2, k3, k4)]
            s = s + h
        rows.extend(r)
    out.copy_((torch.stack(rows) if by_rows else torch.cat(rows)).view(out.shape))
    return torch.stack(r) if by_rows else r[0].clone()


def compiled_rk4(f: nn.Module, x0: Tensor, t: Tensor, h: float, sub: int, unroll: int = UNROLL) -> Tensor | None:
    """States ``(len(t), d, B)`` (component-major) of RK4 with ``sub`` steps of ``h`` per interval of ``t``.

    ``t`` must be uniform with spacing ``sub * h``; ``unroll`` RK4 steps are
    compiled into one graph (``unroll // sub`` outputs per call). None when
    ``f`` has no ``forward_cm``, ``sub > unroll`` or ``torch.compile`` is
    unavailable or fails on the first chunk (then with a ``RuntimeWarning``
    naming the error; the caller falls back to TorchScript).
    """
    if not hasattr(f, "forward_cm") or sub > unroll:
        return None
    n = max(1, unroll // sub)
    key = (type(f), n, sub)
    chunk = _CHUNKS.get(key)
    if chunk is None:
        try:
            chunk = torch.compile(_chunk, backend=_inductor_on_rows, dynamic=False, fullgraph=True)
        except Exception:  # noqa: BLE001 - no compiler: the caller falls back to TorchScript
            return None
        _CHUNKS[key] = chunk
    x = x0.reshape(-1, x0.shape[-1]).t().clone(memory_format=torch.contiguous_format)  # as chunk returns it
    by_rows = 1 < x.shape[0] <= MAX_ROWS
    out = torch.empty((t.shape[0],) + x.shape, dtype=x.dtype, device=x.device)
    out[0] = x
    T = t.shape[0] - 1
    full = T - T % n
    s = t[0:1]
    steps = torch.tensor([h, 0.5 * h, h / 6.0], dtype=t.dtype, device=t.device)
    with torch.no_grad():
        if full:  # the first call checks every guard (and compiles when needed)
            try:
                x = chunk(f, x, out[1:1 + n], s, steps, sub, by_rows)
            except Exception as err:  # noqa: BLE001 - no working compiler: the caller runs TorchScript
                cause = getattr(err, "inner_exception", None) or err.__cause__ or err  # dynamo wraps it
                first = (str(cause).strip().splitlines() or [""])[0]
                warnings.warn(f"integrate(compile=True): torch.compile failed ({type(cause).__name__}: {first}); "
                              "running the TorchScript loop instead", RuntimeWarning, stacklevel=4)
                _CHUNKS.pop(key, None)
                return None
            s = t[n:n + 1]
        # The later calls differ only in the values of x, s and the slice of out, so they skip re-checking
        # the guards (~30% of a call's overhead). Should dynamo still want to recompile, it raises before
        # running anything; that call and the rest then run with every guard checked.
        i, guarded = n, False
        while i < full:
            try:
                with torch.compiler.set_stance(skip_guard_eval_unsafe=not guarded):
                    while i < full:
                        x = chunk(f, x, out[1 + i:1 + i + n], s, steps, sub, by_rows)
                        s = t[i + n:i + n + 1]
                        i += n
            except RuntimeError:
                if guarded:
                    raise
                guarded = True
        for i in range(full, T):  # the remainder, eagerly (fewer than n outputs)
            x = _chunk(f, x, out[1 + i:2 + i], s, steps, sub, by_rows)
            s = t[i + 1:i + 2]
    return out
