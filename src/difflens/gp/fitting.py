"""Hyperparameter fitting: maximise the log marginal likelihood with L-BFGS on the engine.

One engine iteration is one L-BFGS iteration (``LBFGS(max_iter=1)``, strong
Wolfe line search), so the engine's history and stop rules see every
iteration. ``torch.optim.LBFGS.step`` re-evaluates the closure at the point
its previous line search already evaluated; :class:`MemoLoss` answers that
repeat from a cache (same value, same gradient), so every evaluation costs
exactly one Cholesky plus one Cholesky-inverse and none is wasted.
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from difflens.tools.rng import default_generator

from .linalg import NotPositiveDefiniteError

if TYPE_CHECKING:  # pragma: no cover
    from .exact import GaussianProcess

__all__ = ["MemoLoss", "fit_hyperparameters"]

# evaluations one line search may spend; LBFGS passes ``max_eval - 1`` to its strong Wolfe
# search, so ``max_eval`` must be set explicitly when ``max_iter=1`` (its default would be 1).
_MAX_LINE_SEARCH = 25


class MemoLoss:
    """``() -> -LML`` over ``params`` that caches the last evaluation and the best one seen.

    A call at the same parameter values as the previous call returns a tensor
    with the cached value whose gradient is the cached gradient, at no cost.
    """

    def __init__(self, gp: GaussianProcess, params: list[Tensor]):
        self.gp, self.params = gp, params
        self.key: Tensor | None = None
        self.value: Tensor | None = None
        self.grads: list[Tensor] = []
        self.evaluations = 0
        self.best_value = math.inf
        self.best_params: list[Tensor] | None = None

    def _key(self) -> Tensor:
        return torch.cat([p.detach().reshape(-1) for p in self.params])

    def __call__(self) -> Tensor:
        key = self._key()
        if self.key is None or not torch.equal(key, self.key):
            with torch.enable_grad():
                loss = -self.gp._lml_tensor(warn=False)
                grads = torch.autograd.grad(loss, self.params, allow_unused=True)
            self.grads = [torch.zeros_like(p) if g is None else g.detach() for p, g in zip(self.params, grads)]
            self.key, self.value = key, loss.detach()
            self.evaluations += 1
            value = float(self.value)
            if math.isfinite(value) and value < self.best_value:
                self.best_value = value
                self.best_params = [p.detach().clone() for p in self.params]
        # value + <p - p, g>: equals the cached value, and its gradient is the cached gradient
        return self.value + sum(((p - p.detach()) * g).sum() for p, g in zip(self.params, self.grads))


def _restore(params: list[Tensor], values: list[Tensor]) -> None:
    with torch.no_grad():
        for p, v in zip(params, values):
            p.copy_(v)


def fit_hyperparameters(gp: GaussianProcess, params: list[Tensor],
                        generator: torch.Generator | None = None,
                        starts: list[list[Tensor]] | None = None) -> dict[str, Any]:
    """Maximise ``gp``'s LML over ``params`` (raw, log-space tensors) in place; returns a summary.

    Runs ``1 + gp.n_restarts`` L-BFGS runs (the first from the current values,
    the others from ``initial + U(-restart_range, restart_range)`` drawn with
    ``generator``) and keeps the best. A run that reaches hyperparameters where
    the kernel matrix cannot be factorised stops there with a warning and keeps
    the best point it had found.

    ``starts``: explicit starting points of the extra runs (one list of tensors like
    ``params`` per run), used instead of ``gp.n_restarts`` random ones.

    The engine of the best run becomes ``gp.optimization``. The summary is
    ``{"lml", "evaluations", "runs", "seconds"}``; ``seconds`` sums the engines'
    ``history.seconds`` over all runs (the likelihood evaluations happen inside them).
    """
    from difflens.engine import GradientNorm, LossChange, NonFiniteLossError, Optimization

    initial = [p.detach().clone() for p in params]
    n_restarts = gp.n_restarts if starts is None else len(starts)
    if n_restarts and starts is None:
        generator = default_generator(generator)
    runs: list[dict[str, Any]] = []
    best_value, best_params, best_opt = math.inf, None, None
    evaluations, seconds = 0, 0.0
    for run in range(n_restarts + 1):
        if run == 0:
            _restore(params, initial)
        elif starts is not None:
            _restore(params, starts[run - 1])
        else:
            _restore(params, [v + (torch.rand(v.shape, generator=generator, dtype=v.dtype, device=generator.device)
                                   * 2 - 1).to(v.device) * gp.restart_range for v in initial])
        loss = MemoLoss(gp, params)
        opt = Optimization(
            params, loss,
            optimizer=lambda ps: torch.optim.LBFGS(ps, lr=1.0, max_iter=1, max_eval=1 + _MAX_LINE_SEARCH,
                                                   history_size=10, line_search_fn="strong_wolfe"),
            stop_rules=[LossChange(gp.tol, window=1, relative=True), GradientNorm(1e-5)],
            record_change=False, check_every=1,
        )
        reason = None
        try:
            opt.run(gp.max_iter)
            reason = opt.stop_reason
        except (NotPositiveDefiniteError, NonFiniteLossError, ValueError) as exc:
            if loss.best_params is None:
                _restore(params, initial)
                raise
            reason = f"failed: {exc}"
            warnings.warn(f"hyperparameter run {run} stopped at iteration {opt.iteration} ({exc}); "
                          "keeping the best point it found", RuntimeWarning, stacklevel=3)
        if reason == "max_iter":
            warnings.warn(f"hyperparameter run {run} did not converge in max_iter={gp.max_iter} L-BFGS iterations "
                          "(raise max_iter or loosen tol)", RuntimeWarning, stacklevel=3)
        evaluations += loss.evaluations
        seconds += opt.history.seconds
        if loss.best_params is None:
            continue
        runs.append({"lml": -loss.best_value, "iterations": opt.iteration, "evaluations": loss.evaluations,
                     "stop_reason": reason})
        if loss.best_value < best_value:
            best_value, best_params, best_opt = loss.best_value, loss.best_params, opt
    if best_params is None:
        _restore(params, initial)
        raise NotPositiveDefiniteError("no hyperparameter run reached a finite log marginal likelihood")
    _restore(params, best_params)
    gp.optimization = best_opt
    return {"lml": -best_value, "evaluations": evaluations, "runs": runs, "seconds": seconds}
