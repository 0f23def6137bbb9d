"""Eigensolvers for a symmetric positive semi-definite operator given only as products.

``apply(V)`` maps a ``(b, n)`` batch of row vectors to ``(b, n)`` rows ``F v``. Each solver
returns a :class:`SolverResult` with eigenvalues in descending order: the top ``k`` then
the bottom ``k`` (``exact``: all ``n``; ``randomized_svd``: the top ``k``), and
``index``, each eigenvalue's rank in the full spectrum (0 = largest).

Stopping rule (lanczos, power): a wanted eigenpair is done when its residual
``‖Fv − θv‖`` or the change of ``θ`` over the last ``max(10, iteration // 10)``
iterations is at most ``tol · |λ_max|``. The windowed change, rather than the change
per step, keeps slowly converging ends (a ``c / iteration²`` approach to a cluster
of near-zero eigenvalues) from stopping early.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from difflens.engine.progress import make_progress

Apply = Callable[[Tensor], Tensor]


@dataclass
class SolverResult:
    """What an eigensolver returns.

    ``values`` ``(N,)`` float64, descending; ``vectors`` ``(N, n)`` unit rows; ``index`` ``(N,)``
    each one's rank in the spectrum; ``residuals`` ``(N,)`` ``‖Fv − λv‖`` (estimated for Lanczos);
    ``iterations``, ``converged`` and the per-iteration ``history``.
    """
    values: Tensor  # (N,) float64, descending
    vectors: Tensor  # (N, n), unit rows
    index: Tensor  # (N,) long, rank in the spectrum
    residuals: Tensor  # (N,) float64, ‖Fv − λv‖ (estimated for lanczos)
    iterations: int = 0
    converged: bool = True
    history: dict[str, Tensor] = field(default_factory=dict)


def _randn(n: int, b: int, generator: torch.Generator, dtype: torch.dtype,
           device: torch.device) -> Tensor:
    g = torch.randn(b, n, generator=generator, dtype=dtype, device=generator.device)
    return g.to(device)


def _orth(V: Tensor) -> Tensor:
    """Orthonormalise the rows of ``V`` (``(b, n)``)."""
    return torch.linalg.qr(V.T, mode="reduced")[0].T.contiguous()


class _Window:
    """Windowed-change stopping rule and the history of estimates."""

    def __init__(self, tol: float) -> None:
        self.tol = tol
        self.values: list[Tensor] = []
        self.products: list[int] = []

    def push(self, values: Tensor, products: int) -> None:
        self.values.append(values.detach().to("cpu", torch.float64))
        self.products.append(products)

    def stalled(self, scale: float) -> Tensor:
        t = len(self.values)
        w = max(10, t // 10)
        if t <= w:
            return torch.zeros_like(self.values[-1], dtype=torch.bool)
        return (self.values[-1] - self.values[-1 - w]).abs() <= self.tol * scale

    def history(self) -> dict[str, Tensor]:
        return {"products": torch.tensor(self.products), "values": torch.stack(self.values)}


class _Progress:
    """A solver's iterations through the engine's progress display (a bar on a terminal, lines in a log)."""

    def __init__(self, progress: bool, total: int, desc: str, value_name: str) -> None:
        self.display = make_progress(progress, desc, 0, total, value_name=value_name)
        self.done = 0

    def update(self, value: Tensor) -> None:
        self.done += 1
        if self.display is not None:
            self.display.update(self.done, float(value))

    def close(self) -> None:
        if self.display is not None:
            self.display.close()


def lanczos(apply: Apply, n: int, k: int, max_iter: int, tol: float, *,
            generator: torch.Generator, dtype: torch.dtype, device: torch.device,
            basis_size: int | None = None, progress: bool = False) -> SolverResult:
    """Thick-restart Lanczos (symmetric Krylov–Schur) for the top and bottom ``k`` pairs.

    Keeps an orthonormal basis ``V`` (``j × n``, reorthogonalised twice per step) and the
    projected matrix ``H = Vᵀ F V`` (float64) with ``F V = V H + β v_next e_jᵀ``. When the
    basis reaches ``basis_size`` it restarts from the ``k + extra`` Ritz vectors at each end.
    One Fisher product per iteration; ``history["values"]`` holds ``(top k, bottom k)``.
    """
    m = min(n, basis_size or max(40, 8 * k))
    if m < 2 * k:
        raise ValueError(f"basis_size must be at least 2k = {2 * k}, got {m}")
    keep_each = k + max(0, (m - 2 * k) // 4)
    eps = torch.finfo(dtype).eps
    V = torch.zeros(m + 1, n, dtype=dtype, device=device)
    H = torch.zeros(m, m, dtype=torch.float64)  # small: kept on the CPU in float64
    V[0] = _orth(_randn(n, 1, generator, dtype, device))[0]
    j, it, beta, converged = 0, 0, 0.0, False
    window = _Window(tol)
    bar = _Progress(progress, max_iter, "Lanczos", "top eigenvalue")
    while it < max_iter:
        w = apply(V[j:j + 1])[0]
        it += 1
        Vj = V[:j + 1]
        norm_in = torch.linalg.vector_norm(w)
        h = Vj @ w
        w = w - h @ Vj
        if torch.linalg.vector_norm(w) < 0.7071 * norm_in:  # "twice is enough" (Kahan-Parlett)
            h2 = Vj @ w
            w = w - h2 @ Vj
            h = h + h2
        h = h.to("cpu", torch.float64)
        H[:j + 1, j] = h
        H[j, :j + 1] = h
        beta = float(torch.linalg.vector_norm(w))
        j += 1
        theta, S = torch.linalg.eigh(H[:j, :j])
        scale = float(theta.abs().max())
        resid = beta * S[j - 1].abs()
        kk = min(k, j)
        want = torch.cat([torch.arange(j - kk, j).flip(0), torch.arange(kk)])
        window.push(torch.cat([theta.flip(0)[:k], theta[:k]]) if j >= 2 * k
                    else torch.full((2 * k,), float("nan"), dtype=torch.float64), it)
        bar.update(theta[-1])
        if j >= 2 * k:
            done = (resid[want] <= tol * scale) | window.stalled(scale)
            if bool(done.all()) or j == n:
                converged = True
                break
        if beta <= 100 * eps * max(scale, 1e-300) * max(1.0, n ** 0.5):
            # invariant subspace: continue from a fresh random direction orthogonal to V
            if j == n:
                converged = True
                break
            r = _randn(n, 1, generator, dtype, device)[0]
            for _ in range(2):
                r = r - (V[:j] @ r) @ V[:j]
            w, beta = r, 0.0
            V[j] = r / torch.linalg.vector_norm(r)
        else:
            V[j] = w / beta
        if j == m and it < max_iter:  # thick restart from the Ritz vectors at both ends
            idx = torch.cat([torch.arange(keep_each), torch.arange(j - keep_each, j)])
            keep = len(idx)
            nxt = V[j].clone()
            V[:keep] = S[:, idx].T.to(device, dtype) @ V[:j]
            V[keep] = nxt
            V[keep + 1:] = 0
            H.zero_()
            H[range(keep), range(keep)] = theta[idx]
            j = keep
    bar.close()
    theta, S = torch.linalg.eigh(H[:j, :j])
    resid = beta * S[j - 1].abs()
    sel = torch.cat([torch.arange(j - k, j).flip(0), torch.arange(k).flip(0)])
    vecs = S[:, sel].T.to(device, dtype) @ V[:j]
    vecs = vecs / torch.linalg.vector_norm(vecs, dim=1, keepdim=True)
    return SolverResult(theta[sel], vecs, torch.cat([torch.arange(k), torch.arange(n - k, n)]),
                        resid[sel], it, converged, window.history())


def _block_power(apply: Apply, V: Tensor, shift: float, max_iter: int, tol: float,
                 scale: Callable[[Tensor], float], window: _Window, offset: int,
                 progress: bool, desc: str) -> tuple[Tensor, Tensor, Tensor, int, bool]:
    """Orthogonal iteration on ``F − shift·I``; returns Ritz values (ascending for
    ``shift > 0``, descending otherwise), vectors, residuals, iterations, converged."""
    b = V.shape[0]
    bar = _Progress(progress, max_iter, desc, "eigenvalue")
    converged = False
    for it in range(1, max_iter + 1):
        W = apply(V)
        lam = (V * W).sum(1).to("cpu", torch.float64)
        window.push(lam, offset + 2 * b * it)
        bar.update(lam[0])
        if bool(window.stalled(scale(lam)).all()):
            converged = True
            break
        if it < max_iter:
            V = _orth(W - shift * V)
    bar.close()
    # Rayleigh-Ritz on the final block (no extra products): sort and rotate
    Hs = (V @ W.T).to("cpu", torch.float64)
    theta, S = torch.linalg.eigh((Hs + Hs.T) / 2)
    order = torch.argsort(theta, descending=shift == 0)
    theta, S = theta[order], S[:, order].to(V.device, V.dtype)
    V, W = S.T @ V, S.T @ W
    resid = torch.linalg.vector_norm(W - theta.to(W.device, W.dtype)[:, None] * V, dim=1)
    resid = resid.to("cpu", torch.float64)
    return theta, V, resid, it, converged


def power(apply: Apply, n: int, k: int, max_iter: int, tol: float, *,
          generator: torch.Generator, dtype: torch.dtype, device: torch.device,
          progress: bool = False) -> SolverResult:
    """Block power iteration: top ``k`` on ``F``, then bottom ``k`` on ``F − λ_max I``.

    ``k`` Fisher products per iteration; ``history["values"]`` holds the top ``k``
    estimates, then the bottom ``k`` (ascending) for the second phase, with
    ``history["phase"]`` 0 or 1.
    """
    V0 = _orth(_randn(n, 2 * k, generator, dtype, device))
    top_w, bot_w = _Window(tol), _Window(tol)
    top, Vt, rt, it_t, ok_t = _block_power(apply, V0[:k], 0.0, max_iter, tol,
                                           lambda lam: float(lam.abs().max()), top_w, 0,
                                           progress, "power (top)")
    lmax = float(top[0])
    bot, Vb, rb, it_b, ok_b = _block_power(apply, V0[k:], lmax, max_iter, tol,
                                           lambda lam: abs(lmax), bot_w, 2 * k * it_t,
                                           progress, "power (bottom)")
    hist_t, hist_b = top_w.history(), bot_w.history()
    history = {"products": torch.cat([hist_t["products"], hist_b["products"]]),
                   "values": torch.cat([hist_t["values"], hist_b["values"]]),
                   "phase": torch.cat([torch.zeros(it_t, dtype=torch.long),
                                    torch.ones(it_b, dtype=torch.long)])}
    return SolverResult(torch.cat([top, bot.flip(0)]).cpu(), torch.cat([Vt, Vb.flip(0)]),
                        torch.cat([torch.arange(k), torch.arange(n - k, n)]),
                        torch.cat([rt, rb.flip(0)]).cpu(), it_t + it_b, ok_t and ok_b, history)


def randomized_svd(apply: Apply, n: int, k: int, p: int, q: int, *,
                   generator: torch.Generator, dtype: torch.dtype,
                   device: torch.device) -> SolverResult:
    """Halko–Martinsson–Tropp randomized range finder with ``q`` power steps (QR between
    them) and ``k + p`` probes; the top ``k`` only. ``(k + p)(q + 2)`` Fisher products."""
    if p < 0 or q < 0:
        raise ValueError(f"p and q must be >= 0, got p={p}, q={q}")
    b = min(n, k + p)
    Q = _orth(_randn(n, b, generator, dtype, device))
    for _ in range(q + 1):
        Q = _orth(apply(Q))
    FQ = apply(Q)
    B = (Q @ FQ.T).to("cpu", torch.float64)
    theta, S = torch.linalg.eigh((B + B.T) / 2)
    theta, S = theta.flip(0)[:k], S.flip(1)[:, :k].to(device, dtype)
    Y, FY = S.T @ Q, S.T @ FQ
    resid = torch.linalg.vector_norm(FY - theta.to(device, dtype)[:, None] * Y, dim=1)
    return SolverResult(theta, Y, torch.arange(k), resid.to("cpu", torch.float64), q + 2, True)


def exact(op) -> tuple[SolverResult, Tensor]:
    """All eigenpairs from the full Jacobian: ``eigh(JᵀJ)`` in float64. Returns (result, J)."""
    J = op.jacobian()
    # float64 where the device has it (MPS does not): the Fisher matrix is n x n
    J64 = J.to("cpu" if J.device.type == "mps" else J.device, torch.float64)
    theta, S = torch.linalg.eigh(J64.T @ J64)
    theta, S = theta.flip(0).cpu(), S.flip(1)
    resid = torch.zeros(op.n, dtype=torch.float64)
    return SolverResult(theta, S.T.to(J.device, J.dtype).contiguous(), torch.arange(op.n), resid,
                        1, True), J
