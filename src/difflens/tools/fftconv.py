"""FFT path of the same-size correlation in :mod:`difflens.tools.conv`, and its kernel cache.

Circular padding is an exact circular correlation of size ``(H, W)`` done with
``rfft2``. The other modes pad (``"reflect"``/``"replicate"``) or zero-extend
(``"constant"``) the image to at least ``(H + kh - 1, W + kw - 1)``, rounded up to a
2-3-5-smooth FFT length, correlate circularly there (no wrap-around reaches the
kept pixels) and crop back to ``(H, W)``.
"""

from __future__ import annotations

from collections import OrderedDict
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["SpectrumCache", "fft_correlate2d", "fft_supported", "kernel_spectrum", "next_fast_len"]

_FFT_DTYPES = (torch.float32, torch.float64)


def fft_supported(dtype: torch.dtype) -> bool:
    """Whether the FFT path handles inputs of ``dtype`` (float32 and float64)."""
    return dtype in _FFT_DTYPES


@lru_cache(maxsize=512)
def next_fast_len(n: int) -> int:
    """Smallest integer ``>= n`` whose only prime factors are 2, 3 and 5."""
    if n < 1:
        raise ValueError(f"n must be positive, got {n}")
    m = n
    while True:
        k = m
        for p in (2, 3, 5):
            while k % p == 0:
                k //= p
        if k == 1:
            return m
        m += 1


def kernel_spectrum(weight: Tensor, fft_shape: tuple[int, int], shift: tuple[int, int]) -> Tensor:
    """``rfft2`` of the ``fft_shape`` image ``g`` with ``g[(s0 - u) % N0, (s1 - v) % N1] = w[u, v]``.

    Multiplying an image's ``rfft2`` by this spectrum correlates the image with
    ``weight`` with output pixel ``i`` reading input pixels ``i - shift + u``.
    ``weight``: ``(..., kh, kw)`` with ``kh <= N0`` and ``kw <= N1``; differentiable.
    """
    kh, kw = weight.shape[-2:]
    n0, n1 = fft_shape
    g = F.pad(weight.flip((-2, -1)), (0, n1 - kw, 0, n0 - kh))
    g = torch.roll(g, shifts=(shift[0] - (kh - 1), shift[1] - (kw - 1)), dims=(-2, -1))
    return torch.fft.rfft2(g)


def is_functorch_wrapped(t: Tensor) -> bool:
    check = getattr(getattr(torch._C, "_functorch", None), "is_functorch_wrapped_tensor", None)
    return bool(check(t)) if check is not None else False


class SpectrumCache:
    """Remembers kernel spectra so a frozen model does not re-transform its kernels.

    An entry is keyed on the FFT layout, dtype and device and holds a copy of the
    kernel it was computed from; it is reused only when the current kernel is
    *equal in value* to that copy, so any change of the parameters (optimiser step,
    ``load_state_dict``, in-place edits, ``.data`` assignment) is picked up on the
    next call. It is bypassed when the kernel carries a gradient (the spectrum must
    then stay on the autograd graph), on non-CPU devices (the value check would
    force a host sync there, and recomputing is cheap) and inside functorch transforms.
    Holds at most ``max_entries`` layouts (least recently used dropped first).
    """

    def __init__(self, max_entries: int = 4) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be positive, got {max_entries}")
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple, tuple[Tensor, Tensor]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def clear(self) -> None:
        """Forget every stored spectrum."""
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def spectrum(self, weight: Tensor, fft_shape: tuple[int, int],
                 shift: tuple[int, int]) -> Tensor:
        """The :func:`kernel_spectrum` of ``weight``, from the cache when valid."""
        if ((weight.requires_grad and torch.is_grad_enabled()) or weight.device.type != "cpu"
                or is_functorch_wrapped(weight)):
            return kernel_spectrum(weight, fft_shape, shift)
        key = (fft_shape, shift, tuple(weight.shape), weight.dtype, weight.device)
        entry = self._entries.get(key)
        if entry is not None and torch.equal(entry[0], weight):
            self._entries.move_to_end(key)
            self.hits += 1
            return entry[1]
        self.misses += 1
        with torch.inference_mode(False), torch.no_grad():
            kernel = weight.detach().clone()
            spec = kernel_spectrum(kernel, fft_shape, shift)
        self._entries[key] = (kernel, spec)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return spec

    def __getstate__(self) -> dict:
        # a deep copy or pickle of a model starts with an empty cache
        return {"max_entries": self.max_entries}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["max_entries"])


def _spectral_apply(x: Tensor, spec: Tensor, n: tuple[int, int], out_hw: tuple[int, int],
                    groups: int, adjoint: bool) -> Tensor:
    """``irfft2(mix(rfft2(x, s=n), spec))`` cropped to ``out_hw``.

    Forward (``adjoint=False``): ``x`` ``(B, C, a0, a1)`` -> ``(B, O, o0, o1)`` with
    ``Y[b, g, o] = sum_c X[b, g, c] G[g, o, c]``. Adjoint: ``(B, O, ...)`` ->
    ``(B, C, ...)`` with ``conj(G)`` and the sum over ``o``: the exact transpose, since
    ``conj(G)`` is the spectrum of the flipped real kernel.
    """
    b = x.shape[0]
    o, cg = spec.shape[:2]
    og = o // groups
    nf = spec.shape[-1]
    spec_x = torch.fft.rfft2(x, s=n)
    g = spec.reshape(groups, og, cg, n[0], nf)
    if not adjoint:
        xs = spec_x.reshape(b, groups, cg, n[0], nf)
        if cg == 1:
            prod = xs * g[:, :, 0]
        else:
            prod = torch.einsum("bgchw,gochw->bgohw", xs, g)
        prod = prod.reshape(b, o, n[0], nf)
    else:
        ys = spec_x.reshape(b, groups, og, n[0], nf)
        g = g.conj()
        if cg == 1:
            prod = (ys * g[:, :, 0]).sum(2) if og > 1 else ys[:, :, 0] * g[:, 0, 0]
        else:
            prod = torch.einsum("bgohw,gochw->bgchw", ys, g)
        prod = prod.reshape(b, groups * cg, n[0], nf)
    y = torch.fft.irfft2(prod, s=n)
    if (y.shape[-2], y.shape[-1]) != tuple(out_hw):
        y = y[..., : out_hw[0], : out_hw[1]]
    return y


class _FixedKernelCorrelation(torch.autograd.Function):
    """Correlation with a constant kernel spectrum, with a two-FFT exact-adjoint backward.

    Autograd's own backward of ``rfft2`` with a zero-extended size runs a full complex
    FFT; the adjoint here is another correlation (with ``conj(spec)``), so it is also
    differentiable again (double backward), has a forward-mode rule and a vmap rule.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(x: Tensor, spec: Tensor, n: tuple[int, int], out_hw: tuple[int, int],
                groups: int, adjoint: bool) -> Tensor:
        return _spectral_apply(x, spec, n, out_hw, groups, adjoint)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:  # type: ignore[override]
        x, spec, n, out_hw, groups, adjoint = inputs
        ctx.save_for_backward(spec)
        ctx.save_for_forward(spec)
        ctx.meta = (n, tuple(x.shape[-2:]), tuple(out_hw), groups, adjoint)

    @staticmethod
    def backward(ctx, grad_out: Tensor):  # type: ignore[override]
        (spec,) = ctx.saved_tensors
        n, in_hw, _, groups, adjoint = ctx.meta
        grad_x = _FixedKernelCorrelation.apply(grad_out, spec, n, in_hw, groups, not adjoint)
        return grad_x, None, None, None, None, None

    @staticmethod
    def jvp(ctx, x_t: Tensor, *_: object) -> Tensor:  # type: ignore[override]
        (spec,) = ctx.saved_tensors
        n, _, out_hw, groups, adjoint = ctx.meta
        return _FixedKernelCorrelation.apply(x_t, spec, n, out_hw, groups, adjoint)


def fft_correlate2d(x: Tensor, weight: Tensor, pad_mode: str = "reflect", groups: int = 1,
                    cache: SpectrumCache | None = None) -> Tensor:
    """Same-size correlation through ``rfft2``; see :func:`difflens.tools.conv.correlate2d`.

    ``x``: ``(B, C, H, W)`` float32/float64; ``weight``: ``(O, C / groups, kh, kw)``.
    Returns ``(B, O, H, W)``. Shapes are assumed already checked by the caller.
    """
    h, w = x.shape[-2:]
    kh, kw = weight.shape[-2:]
    weight = weight.to(x.dtype)
    pt, pl = (kh - 1) // 2, (kw - 1) // 2
    if pad_mode == "circular":
        if kh > h or kw > w:
            raise ValueError(f"circular padding needs a kernel no larger than the image; "
                             f"kernel {(kh, kw)}, image {(h, w)}")
        n, shift, src = (h, w), (pt, pl), x
    elif pad_mode == "constant":
        n, shift, src = (next_fast_len(h + kh - 1), next_fast_len(w + kw - 1)), (pt, pl), x
    else:
        src = F.pad(x, (pl, kw - 1 - pl, pt, kh - 1 - pt), mode=pad_mode)
        n, shift = (next_fast_len(h + kh - 1), next_fast_len(w + kw - 1)), (0, 0)
    spec = cache.spectrum(weight, n, shift) if cache is not None else kernel_spectrum(weight, n, shift)
    if (spec.requires_grad and torch.is_grad_enabled()) or is_functorch_wrapped(spec):
        # the kernel is being differentiated too: let autograd handle every input
        return _spectral_apply(src, spec, n, (h, w), groups, False)
    return _FixedKernelCorrelation.apply(src, spec, n, (h, w), groups, False)
