"""Dense linear algebra for exact GPs: jittered Cholesky, and the log marginal likelihood
with an analytic gradient that costs one Cholesky and one Cholesky-inverse.

``log_marginal_likelihood(K, noise, y)`` is differentiable in ``K`` and
``noise``: its backward is ``dLML/dK = (alpha alpha^T - (K + noise I)^-1) / 2``
(Rasmussen & Williams eq. 5.9), computed from the Cholesky factor kept from the
forward pass with LAPACK ``potri``; autograd through ``torch.linalg.cholesky``
would cost about three times as much.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "JITTERS",
    "JitterWarning",
    "NotPositiveDefiniteError",
    "cholesky_inverse",
    "cholesky_jittered",
    "cholesky_solve",
    "log_marginal_likelihood",
    "profile_log_marginal_likelihood",
]

#: Relative jitters tried in turn (times the mean of the diagonal) when a Cholesky fails.
JITTERS = (0.0, 1e-12, 1e-11, 1e-10, 1e-9, 1e-8, 1e-7, 1e-6)


class NotPositiveDefiniteError(ValueError):
    """The kernel matrix stayed non-positive-definite even after the largest jitter."""


class JitterWarning(UserWarning):
    """A jitter was added to a kernel matrix's diagonal so that its Cholesky factorisation succeeds."""


def cholesky_jittered(A: Tensor, jitters: tuple[float, ...] = JITTERS, what: str = "kernel matrix",
                      warn: bool = True, shift: float = 0.0) -> tuple[Tensor, float]:
    """Lower Cholesky factor of the symmetric ``(N, N)`` matrix ``A + shift I``, adding jitter if needed.

    ``A`` is not modified. Tries ``A + shift I + j * mean(diag(A + shift I)) * I``
    for ``j`` in ``jitters`` until the
    factorisation succeeds. Returns ``(L, jitter)`` with ``jitter`` the absolute
    amount added (0.0 when none). A non-zero jitter emits a :class:`JitterWarning`
    when ``warn``. Raises :class:`NotPositiveDefiniteError` naming the likely causes
    when the largest jitter fails, and ``ValueError`` when ``A`` is not finite.
    """
    n = A.shape[-1]
    if n == 0:
        return A.clone(), 0.0
    scale = None
    for j in jitters:
        if j and scale is None:
            if not torch.isfinite(A).all():
                raise ValueError(f"the {n}x{n} {what} contains NaN or inf (hyperparameters out of range?)")
            scale = abs(A.diagonal().mean().item() + shift) or 1.0
        L = _cholesky(A, shift + (j * scale if j else 0.0))
        if L is not None:
            if j and warn:
                warnings.warn(f"added jitter {j * scale:.3g} ({j:g} x mean diagonal) to the {n}x{n} {what} "
                              "to make it positive definite", JitterWarning, stacklevel=3)
            return L, (j * scale if j else 0.0)
    raise NotPositiveDefiniteError(
        f"the {n}x{n} {what} is not positive definite, even with jitter {jitters[-1]:g} x its mean "
        f"diagonal ({jitters[-1] * (scale or 0.0):.3g}). Likely causes: duplicate inputs with zero "
        "noise_variance, a kernel that is not positive semi-definite on these inputs, or extreme "
        "hyperparameters. Use a larger noise_variance.")


def cholesky_inverse(L: Tensor, lower_only: bool = False) -> Tensor:
    """``(L L^T)^-1`` from the lower Cholesky factor ``L`` (N, N).

    ``lower_only=True`` (CPU/SciPy path only, see :func:`_use_scipy`) returns
    just the lower triangle ``T`` with zeros above (``T + T^T - diag(T)`` is the
    inverse), saving three passes over the matrix; on the torch path the full
    inverse is returned regardless.

    On CPU this is LAPACK ``dpotri`` through SciPy (OpenBLAS) on one thread:
    measured here at N = 2,000 it takes 0.5 s where ``torch.cholesky_inverse``
    (MKL, 2 threads) takes 4 s, and a multi-threaded OpenBLAS call leaves its
    workers spinning against torch's own thread pool. Elsewhere
    ``torch.cholesky_inverse``. Set :data:`INVERSE_BACKEND` to ``"torch"`` to
    always use torch.
    """
    if not _use_scipy(L):
        return torch.cholesky_inverse(L)
    from scipy.linalg import lapack

    potri = lapack.dpotri if L.dtype == torch.float64 else lapack.spotri
    with _blas_threads(LAPACK_THREADS):
        # L^T is the upper factor in Fortran order; potri writes the upper triangle of the
        # inverse and leaves the zeros below, so the C-order transpose is lower triangular.
        inv, info = potri(L.detach().numpy().T, lower=0, overwrite_c=False)
    if info != 0:
        raise NotPositiveDefiniteError(f"potri failed with info={info}")
    T = torch.from_numpy(inv.T)
    if lower_only:
        return T
    out = T.mT.clone()
    out += T
    out.diagonal().sub_(T.diagonal())
    return out


def cholesky_solve(Y: Tensor, L: Tensor) -> Tensor:
    """``(L L^T)^-1 Y`` for the lower Cholesky factor ``L`` (N, N) and ``Y`` (N, T).

    Reads only the lower triangle of ``L``. On CPU this is LAPACK ``potrs`` through
    SciPy on the factor's memory as it is (the row-major lower factor is the
    column-major upper one), where ``torch.cholesky_solve`` first copies ``L`` into
    column-major order: at N = 2,000 that copy is most of its cost (18 ms against
    2 ms measured here). Elsewhere ``torch.cholesky_solve``.
    """
    if not (_use_scipy(L) and L.is_contiguous() and Y.dtype == L.dtype and Y.device == L.device):
        return torch.cholesky_solve(Y, L)
    from scipy.linalg import lapack

    potrs = lapack.dpotrs if L.dtype == torch.float64 else lapack.spotrs
    with _blas_threads(LAPACK_THREADS):
        x, info = potrs(L.detach().numpy().T, Y.detach().numpy(), lower=0)
    if info != 0:  # pragma: no cover - potrs fails only on bad arguments
        raise ValueError(f"potrs failed with info={info}")
    return torch.from_numpy(np.ascontiguousarray(x)).reshape(Y.shape)


def _use_scipy(L: Tensor) -> bool:
    return (INVERSE_BACKEND == "scipy" and L.device.type == "cpu" and L.dtype in (torch.float64, torch.float32)
            and L.shape[-1] > 0)


def _cholesky(A: Tensor, jitter: float) -> Tensor | None:
    """Lower Cholesky factor of ``A + jitter I`` (``A`` untouched), or None if it is not positive definite.

    On CPU: LAPACK ``potrf`` through SciPy (OpenBLAS) on :data:`LAPACK_THREADS`
    thread(s), measured here 2.4x faster than torch's (MKL) at N = 2,000;
    elsewhere ``torch.linalg.cholesky_ex``.
    """
    B = torch.empty_like(A, memory_format=torch.contiguous_format).copy_(A)
    if jitter:
        B.diagonal().add_(jitter)
    if _use_scipy(B):
        from scipy.linalg import lapack

        potrf = lapack.dpotrf if B.dtype == torch.float64 else lapack.spotrf
        with _blas_threads(LAPACK_THREADS):
            # B is symmetric, so its Fortran-order view B^T is B: factor it as U^T U in place
            c, info = potrf(B.numpy().T, lower=0, clean=1, overwrite_a=1)
        L = torch.from_numpy(c.T) if not np.shares_memory(c, B.numpy()) else B
        ok = info == 0
    else:
        L, info = torch.linalg.cholesky_ex(B)
        ok = info.item() == 0
    return L if ok and bool(torch.isfinite(L.diagonal()).all()) else None


#: "scipy" (LAPACK potrf/potri via SciPy on CPU tensors, the default) or "torch" (torch.linalg).
INVERSE_BACKEND = "scipy"
#: Threads SciPy's OpenBLAS may use inside potrf/potri. One is the default: on the 2-core machine
#: used for development every multi-threaded LAPACK call was slower (its workers compete with
#: torch's own thread pool); raise it on an otherwise idle many-core CPU.
LAPACK_THREADS = 1
_CONTROLLER = None


def _blas_threads(n: int):
    """A context manager capping SciPy's BLAS threads at ``n`` (a no-op without threadpoolctl)."""
    global _CONTROLLER
    try:
        if _CONTROLLER is None:
            from threadpoolctl import ThreadpoolController

            _CONTROLLER = ThreadpoolController()
        return _CONTROLLER.limit(limits=n, user_api="blas")
    except Exception:  # noqa: BLE001  # pragma: no cover - threadpoolctl missing or failing
        import contextlib

        return contextlib.nullcontext()


class _LML(torch.autograd.Function):
    @staticmethod
    def forward(ctx, K: Tensor, noise: Tensor, y: Tensor, jitters: tuple, warn: bool,  # type: ignore[override]
                profile: bool = False):
        if noise.ndim:  # one noise variance per sample: add it to the diagonal
            K = K.clone()
            K.diagonal().add_(noise)
            shift = 0.0
        else:
            shift = float(noise)
        L, jitter = cholesky_jittered(K, jitters, warn=warn, shift=shift)
        Y = y.reshape(y.shape[0], -1)
        alpha = cholesky_solve(Y, L)
        n, t = Y.shape
        quad = (Y * alpha).sum()
        # profile: the LML of scale * (K + noise I) at the scale that maximises it, quad / (n t)
        scale = quad / (n * t) if profile else quad.new_ones(())
        lml = (-0.5 * n * t * (1.0 + scale.log()) if profile else -0.5 * quad) \
            - t * L.diagonal().log().sum() - 0.5 * n * t * math.log(2 * math.pi)
        ctx.save_for_backward(L, alpha)
        ctx.jitter = jitter
        ctx.noise_shape = noise.shape
        ctx.inverse_scale = float(1.0 / scale)
        ctx.mark_non_differentiable(scale)
        return lml, scale

    @staticmethod
    def backward(ctx, grad: Tensor, _grad_scale: Tensor):  # type: ignore[override]
        L, alpha = ctx.saved_tensors
        if not (ctx.needs_input_grad[0] or ctx.needs_input_grad[1]):
            return None, None, None, None, None, None
        # dLML/dK = (alpha alpha^T / scale - t K^-1) / 2 for t outputs (scale = 1 without profiling;
        # with it, the scale's own derivative is zero at its optimum). With only the lower triangle T
        # of K^-1, use G = alpha alpha^T / (2 scale) - t T + t diag(T) / 2: it is not symmetric, but
        # its inner product with any symmetric dK (every kernel matrix) equals that of the full G.
        lower_only = _use_scipy(L)
        W = cholesky_inverse(L, lower_only=lower_only)
        g = float(grad)
        t = alpha.shape[1]
        # in place on W, in one pass: G = (g / 2) alpha alpha^T - c W, then the diagonal term
        diag = W.diagonal().clone() if lower_only else None
        G = W.addmm_(alpha, alpha.mT, beta=-g * t if lower_only else -0.5 * g * t, alpha=0.5 * g * ctx.inverse_scale)
        if diag is not None:
            G.diagonal().add_(diag, alpha=0.5 * g * t)
        gnoise = None
        if ctx.needs_input_grad[1]:
            gnoise = G.diagonal().clone() if len(ctx.noise_shape) else G.diagonal().sum()
        return (G if ctx.needs_input_grad[0] else None), gnoise, None, None, None, None


def log_marginal_likelihood(K: Tensor, noise: Tensor | float, y: Tensor, jitters: tuple[float, ...] = JITTERS,
                            warn: bool = True) -> Tensor:
    """``log N(y | 0, K + noise I)`` for ``K`` (N, N) symmetric, ``y`` (N,); a scalar tensor.

    ``y`` may also be (N, T): T independent outputs sharing the kernel (the sum of
    their LMLs); ``noise`` may be a scalar or an (N,) tensor of per-sample variances.

    Differentiable in ``K`` and ``noise`` (one Cholesky forward, one ``potri``
    backward). The gradient with respect to ``K`` is the symmetric matrix
    ``(alpha alpha^T - (K + noise I)^-1) / 2``, correct for symmetric
    perturbations of ``K`` (every kernel matrix is one).
    """
    return _checked_lml(K, noise, y, jitters, warn, False)[0]


def profile_log_marginal_likelihood(C: Tensor, noise: Tensor | float, y: Tensor,
                                    jitters: tuple[float, ...] = JITTERS, warn: bool = True) -> tuple[Tensor, Tensor]:
    """The LML maximised over an output scale: ``max_s log N(y | 0, s (C + noise I))``, and that ``s``.

    For a kernel ``variance * C`` with a learned noise ``variance * noise``, the best
    ``variance`` for fixed ``C`` and ``noise`` is ``s = y^T (C + noise I)^-1 y / N``
    (per output, averaged over the ``T`` columns of an (N, T) ``y``). Maximising this
    profile (concentrated) likelihood over the remaining hyperparameters reaches the
    same optimum as the full LML with one dimension fewer, and without the slow
    valley along the scale that L-BFGS otherwise crawls through. Returns
    ``(lml, s)``: a scalar tensor differentiable in ``C`` and ``noise`` (the same
    Cholesky and ``potri`` as :func:`log_marginal_likelihood`) and the scale, a
    scalar tensor without gradient.
    """
    lml, scale = _checked_lml(C, noise, y, jitters, warn, True)
    return lml, scale


def _checked_lml(K: Tensor, noise: Tensor | float, y: Tensor, jitters: tuple[float, ...], warn: bool,
                 profile: bool) -> tuple[Tensor, Tensor]:
    noise = torch.as_tensor(noise, dtype=K.dtype, device=K.device)
    if y.ndim not in (1, 2) or K.shape != (y.shape[0], y.shape[0]):
        raise ValueError(f"need K of shape (N, N) and y of shape (N,) or (N, T), got {tuple(K.shape)} and "
                         f"{tuple(y.shape)}")
    if noise.ndim and noise.shape != (y.shape[0],):
        raise ValueError(f"noise must be a scalar or of shape (N,) = ({y.shape[0]},), got {tuple(noise.shape)}")
    return _LML.apply(K, noise, y, tuple(jitters), warn, profile)
