"""Linear-quadratic regulators: the discrete algebraic Riccati equation, gains, linearisation."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["dare", "linearize", "lqr"]


def _check_matrices(A: Tensor, B: Tensor, Q: Tensor, R: Tensor) -> None:
    for name, M in (("A", A), ("B", B), ("Q", Q), ("R", R)):
        if not isinstance(M, Tensor) or M.ndim != 2:
            raise ValueError(f"{name} must be a 2-D tensor, got {getattr(M, 'shape', type(M).__name__)}")
        if not bool(torch.isfinite(M).all()):
            raise ValueError(f"{name} contains NaN or inf")
    n, m = A.shape[0], B.shape[1]
    if A.shape != (n, n) or B.shape != (n, m) or Q.shape != (n, n) or R.shape != (m, m):
        raise ValueError(f"shapes must be A (n, n), B (n, m), Q (n, n), R (m, m); got A {list(A.shape)}, "
                         f"B {list(B.shape)}, Q {list(Q.shape)}, R {list(R.shape)}")


def dare(A: Tensor, B: Tensor, Q: Tensor, R: Tensor, tol: float = 1e-14, max_iter: int = 100) -> Tensor:
    """Solve ``P = A'PA - A'PB (R + B'PB)^-1 B'PA + Q`` by the structure-preserving doubling algorithm.

    Parameters
    ----------
    A (n, n), B (n, m), Q (n, n) symmetric PSD, R (m, m) symmetric PD: float64 recommended.
    tol: relative change of the iterate at which to stop; max_iter: doubling steps at most
        (each doubles the horizon: 60 steps is a horizon of 2^60).

    Returns
    -------
    Tensor
        ``P`` (n, n), the stabilising solution (what ``scipy.linalg.solve_discrete_are`` returns).

    Raises
    ------
    RuntimeError
        When it does not converge (an unstabilisable pair).

    Examples
    --------
    A double integrator, checked against SciPy:

    >>> import numpy as np
    >>> import scipy.linalg
    >>> import torch
    >>> from difflens.control import dare
    >>> A = torch.tensor([[1.0, 0.1], [0.0, 1.0]], dtype=torch.float64)
    >>> B = torch.tensor([[0.0], [0.1]], dtype=torch.float64)
    >>> Q, R = torch.eye(2, dtype=torch.float64), torch.eye(1, dtype=torch.float64)
    >>> P = dare(A, B, Q, R)
    >>> expected = scipy.linalg.solve_discrete_are(A.numpy(), B.numpy(), Q.numpy(), R.numpy())
    >>> np.allclose(P.numpy(), expected)
    True
    """
    _check_matrices(A, B, Q, R)
    n = A.shape[0]
    I = torch.eye(n, dtype=A.dtype, device=A.device)
    Ak, Gk, Hk = A, B @ torch.linalg.solve(R, B.T), Q
    for _ in range(max_iter):
        W = I + Gk @ Hk
        WA = torch.linalg.solve(W, Ak)
        WG = torch.linalg.solve(W, Gk)
        H_new = Hk + Ak.T @ Hk @ WA
        Gk = Gk + Ak @ WG @ Ak.T
        Ak = Ak @ WA
        change = float((H_new - Hk).norm() / H_new.norm().clamp_min(1e-300))
        Hk = H_new
        if change < tol:
            return 0.5 * (Hk + Hk.T)
    raise RuntimeError(f"dare did not converge in {max_iter} doubling steps (is (A, B) stabilisable?)")


def lqr(A: Tensor, B: Tensor, Q: Tensor, R: Tensor) -> tuple[Tensor, Tensor]:
    """Infinite-horizon discrete LQR: ``a = -K s`` minimises ``sum s'Qs + a'Ra`` for ``s' = As + Ba``.

    Returns ``(K, P)``: the gain (m, n) and the Riccati solution (n, n) (see :func:`dare`).
    """
    P = dare(A, B, Q, R)
    K = torch.linalg.solve(R + B.T @ P @ B, B.T @ P @ A)
    return K, P


def linearize(step, s0: Tensor, a0: Tensor) -> tuple[Tensor, Tensor]:
    """Jacobians ``A = d step / d s`` (n, n) and ``B = d step / d a`` (n, m) at ``(s0, a0)`` (1-D tensors)."""
    A, B = torch.autograd.functional.jacobian(step, (s0, a0))
    return A, B
