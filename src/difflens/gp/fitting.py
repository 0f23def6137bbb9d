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
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from difflens.tools.rng import default_generator

from .linalg import NotPositiveDefiniteError

if TYPE_CHECKING:  # pragma: no cover
    from .exact import GaussianProcess

__all__ = ["MemoLoss", "fit_hyperparameters", "profiles_scale"]

# evaluations one line search may spend; LBFGS passes ``max_eval - 1`` to its strong Wolfe
# search, so ``max_eval`` must be set explicitly when ``max_iter=1`` (its default would be 1).
_MAX_LINE_SEARCH = 25


class MemoLoss:
    """``() -> -LML`` over ``params`` that caches the last evaluation and the best one seen.

    A call at the same parameter values as the previous call returns a tensor
    with the cached value whose gradient is the cached gradient, at no cost.
    ``lml``: a callable returning ``(lml, aux)``, the differentiable LML and anything
    to keep with the best point (``best_aux``); default ``gp``'s own LML.
    """

    def __init__(self, gp: GaussianProcess, params: list[Tensor],
                 lml: Callable[[], tuple[Tensor, Any]] | None = None):
        self.gp, self.params = gp, params
        self.lml = lml if lml is not None else (lambda: (gp._lml_tensor(warn=False), None))
        self.key: Tensor | None = None
        self.value: Tensor | None = None
        self.grads: list[Tensor] = []
        self.evaluations = 0
        self.best_value = math.inf
        self.best_params: list[Tensor] | None = None
        self.best_aux: Any = None

    def _key(self) -> Tensor:
        return torch.cat([p.detach().reshape(-1) for p in self.params])

    def __call__(self) -> Tensor:
        key = self._key()
        if self.key is None or not torch.equal(key, self.key):
            with torch.enable_grad():
                lml, aux = self.lml()
                loss = -lml
                grads = torch.autograd.grad(loss, self.params, allow_unused=True)
            self.grads = [torch.zeros_like(p) if g is None else g.detach() for p, g in zip(self.params, grads)]
            self.key, self.value = key, loss.detach()
            self.evaluations += 1
            value = float(self.value)
            if math.isfinite(value) and value < self.best_value:
                self.best_value = value
                self.best_params = [p.detach().clone() for p in self.params]
                self.best_aux = aux
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

    When :func:`profiles_scale` holds (a kernel ``variance * C`` whose variance and
    the noise are both learned), the runs maximise the profile likelihood over the
    other hyperparameters and the noise-to-signal ratio, with the variance in closed
    form (:func:`~difflens.gp.linalg.profile_log_marginal_likelihood`): the same
    optimum with one dimension fewer. If that optimum puts the noise at or below
    ``gp.noise_floor``, the full likelihood is optimised instead.

    The engine of the best run becomes ``gp.optimization``. The summary is
    ``{"lml", "evaluations", "runs", "seconds", "profiled"}``; ``seconds`` sums the
    engines' ``history.seconds`` over all runs (the likelihood evaluations happen inside them).
    """
    initial = [p.detach().clone() for p in params]
    if starts is None and profiles_scale(gp, params):
        summary = _fit_profiled(gp, params, generator)
        if summary is not None:
            return summary
        _restore(params, initial)
    best_params, _aux, summary = _best_of_runs(gp, params, None, generator, starts)
    _restore(params, best_params)
    summary["profiled"] = False
    return summary


def profiles_scale(gp: Any, params: list[Tensor]) -> bool:
    """Whether ``gp``'s fit can maximise the profile likelihood over its kernel's variance.

    True for a :class:`~difflens.gp.exact.GaussianProcess` with ``profile_scale``,
    a learned noise variance and a kernel that is ``variance`` times a matrix that
    does not depend on it (``kernel.scales_linearly``), with that variance learned.
    """
    kernel = getattr(gp, "kernel", None)
    if not (getattr(gp, "profile_scale", False) and getattr(gp, "learn_noise", False)
            and getattr(kernel, "scales_linearly", False)):
        return False
    ids = {id(p) for p in params}
    return id(kernel.log_variance) in ids and id(gp.log_noise) in ids and bool(gp.y_train_.abs().max() > 0)


def _fit_profiled(gp: GaussianProcess, params: list[Tensor],
                  generator: torch.Generator | None) -> dict[str, Any] | None:
    """The profiled fit of :func:`fit_hyperparameters`; None when its optimum breaks the noise floor."""
    from .linalg import profile_log_marginal_likelihood

    kernel = gp.kernel
    log_variance, log_noise = kernel.log_variance, gp.log_noise
    with torch.no_grad():  # noise-to-signal ratio tau: the model is scale * (C + tau I)
        log_tau = (gp.noise_variance.log() - log_variance).detach().clone().requires_grad_(True)
    others = [p for p in params if p is not log_variance and p is not log_noise]
    reduced = others + [log_tau]

    def lml() -> tuple[Tensor, Tensor]:
        return profile_log_marginal_likelihood(kernel(gp.X_train_), log_tau.exp(), gp.y_train_, gp.jitters, False)

    saved_variance = log_variance.detach().clone()
    try:
        with torch.no_grad():
            log_variance.zero_()  # C = kernel(X) at variance 1, without a gradient for it
        log_variance.requires_grad_(False)
        best, scale, summary = _best_of_runs(gp, reduced, lml, generator, None)
    except BaseException:
        _restore([log_variance], [saved_variance])
        raise
    finally:
        log_variance.requires_grad_(True)
    _restore(reduced, best)
    noise = float(scale) * float(log_tau.detach().exp())
    floor = float(gp.noise_floor)
    if not noise > floor * (1.0 + 1e-9):
        _restore([log_variance], [saved_variance])
        return None
    with torch.no_grad():
        log_variance.fill_(math.log(float(scale)))
        log_noise.fill_(math.log(noise - floor))
    summary["profiled"] = True
    return summary


def _best_of_runs(gp: Any, params: list[Tensor], lml: Callable[[], tuple[Tensor, Any]] | None,
                  generator: torch.Generator | None,
                  starts: list[list[Tensor]] | None) -> tuple[list[Tensor], Any, dict[str, Any]]:
    """The L-BFGS runs of :func:`fit_hyperparameters`: ``(best params, their aux, summary)``.

    Leaves ``params`` at the last run's end; the caller restores the best.
    """
    from difflens.engine import GradientNorm, LossChange, NonFiniteLossError, Optimization

    initial = [p.detach().clone() for p in params]
    n_restarts = gp.n_restarts if starts is None else len(starts)
    if n_restarts and starts is None:
        generator = default_generator(generator)
    runs: list[dict[str, Any]] = []
    best_value, best_params, best_aux, best_opt = math.inf, None, None, None
    evaluations, seconds = 0, 0.0
    for run in range(n_restarts + 1):
        if run == 0:
            _restore(params, initial)
        elif starts is not None:
            _restore(params, starts[run - 1])
        else:
            _restore(params, [v + (torch.rand(v.shape, generator=generator, dtype=v.dtype, device=generator.device)
                                   * 2 - 1).to(v.device) * gp.restart_range for v in initial])
        loss = MemoLoss(gp, params, lml)
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
                          "keeping the best point it found", RuntimeWarning, stacklevel=4)
        if reason == "max_iter":
            warnings.warn(f"hyperparameter run {run} did not converge in max_iter={gp.max_iter} L-BFGS iterations "
                          "(raise max_iter or loosen tol)", RuntimeWarning, stacklevel=4)
        evaluations += loss.evaluations
        seconds += opt.history.seconds
        if loss.best_params is None:
            continue
        runs.append({"lml": -loss.best_value, "iterations": opt.iteration, "evaluations": loss.evaluations,
                     "stop_reason": reason})
        if loss.best_value < best_value:
            best_value, best_params, best_aux, best_opt = loss.best_value, loss.best_params, loss.best_aux, opt
    if best_params is None:
        _restore(params, initial)
        raise NotPositiveDefiniteError("no hyperparameter run reached a finite log marginal likelihood")
    gp.optimization = best_opt
    return best_params, best_aux, {"lml": -best_value, "evaluations": evaluations, "runs": runs,
                                   "seconds": seconds}
