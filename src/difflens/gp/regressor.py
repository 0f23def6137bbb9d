"""``GaussianProcessRegressor``: scikit-learn's estimator conventions on difflens's torch GP.

>>> import numpy as np
>>> from difflens.gp import GaussianProcessRegressor
>>> from difflens.gp.sklearn_kernels import RBF, ConstantKernel, WhiteKernel
>>> X = np.linspace(0, 5, 20)[:, None]
>>> y = np.sin(X[:, 0])
>>> kernel = ConstantKernel(1.0) * RBF(1.0) + WhiteKernel(1e-2)
>>> gpr = GaussianProcessRegressor(kernel, random_state=0).fit(X, y)
>>> mean, std = gpr.predict(np.array([[2.5]]), return_std=True)
>>> bool(abs(mean[0] - np.sin(2.5)) < 0.1), kernel.theta.tolist() == [0.0, 0.0, np.log(1e-2)]
(True, True)

It follows ``sklearn.gaussian_process.GaussianProcessRegressor``: the user's
kernel is left untouched and ``fit`` stores a fitted clone in ``kernel_``;
fitted attributes end in ``_`` (``X_train_``, ``y_train_``, ``alpha_``, ``L_``,
``log_marginal_likelihood_value_``) and are NumPy arrays when ``fit`` got NumPy,
tensors when it got tensors; ``predict``/``sample_y`` answer in the type of their
``X``. ``y`` may have several columns (independent outputs sharing the kernel),
``alpha`` may give one noise variance per sample, and ``predict``/``sample_y``
before ``fit`` use the prior (default kernel ``ConstantKernel(1, "fixed") *
RBF(1, "fixed")``).

Hyperparameters are fitted by maximising the log marginal likelihood over the
kernel's ``theta`` within its ``bounds``:

- ``optimizer="lbfgs"`` (default): torch L-BFGS (strong Wolfe) on
  :class:`difflens.engine.Optimization`, the estimator owning the engine as
  ``optimization``; ``theta`` is clamped into its bounds inside the objective,
  so a hyperparameter that wants to leave its box ends exactly on the bound. One
  evaluation is one Cholesky and one Cholesky-inverse (:mod:`difflens.gp.linalg`).
- ``optimizer="fmin_l_bfgs_b"``: SciPy's L-BFGS-B (scikit-learn's own choice,
  for parity), on the same torch objective.
- a callable ``optimizer(obj_func, initial_theta, bounds) -> (theta_opt, func_min)``,
  as in scikit-learn; ``obj_func(theta, eval_gradient=True)`` returns the negative
  LML and its gradient.
- ``None``: keep the kernel's hyperparameters.

``n_restarts_optimizer`` extra runs start from points drawn log-uniformly within
the bounds with ``random_state`` (an int, a ``numpy.random.RandomState`` or
``Generator``, or a ``torch.Generator``; ``None`` means
:func:`difflens.tools.rng.default_generator`, a fixed seed, not NumPy's global state).
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from difflens.tools.rng import default_generator

from .inputs import NotFittedError, as_inputs
from .linalg import (
    NotPositiveDefiniteError,
    cholesky_jittered,
    cholesky_solve,
    log_marginal_likelihood,
)
from .sklearn_kernels import RBF, ConstantKernel, Kernel

__all__ = ["ConvergenceWarning", "GaussianProcessRegressor", "KernelNotPositiveDefiniteError"]

_EXACT = (0.0,)  # no jitter: a kernel matrix that is not positive definite is an error (as in scikit-learn)


class ConvergenceWarning(UserWarning):
    """A fitted hyperparameter ended on (or within rounding of) one of its bounds."""


class KernelNotPositiveDefiniteError(NotPositiveDefiniteError, np.linalg.LinAlgError):
    """The training kernel matrix plus ``alpha`` is not positive definite (also a ``LinAlgError``)."""


def default_kernel() -> Kernel:
    """scikit-learn's default: ``ConstantKernel(1.0, "fixed") * RBF(1.0, "fixed")``."""
    return ConstantKernel(1.0, constant_value_bounds="fixed") * RBF(1.0, length_scale_bounds="fixed")


RandomState = Any  # int | np.random.RandomState | np.random.Generator | torch.Generator | None


def _resolve_rng(random_state: RandomState, device: torch.device) -> Any:
    if isinstance(random_state, (torch.Generator, np.random.RandomState, np.random.Generator)):
        return random_state
    if random_state is None:
        return default_generator(None, device)
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        return torch.Generator(device=device).manual_seed(int(random_state))
    raise TypeError(f"random_state must be None, an int, a numpy RandomState/Generator or a torch.Generator, "
                    f"got {type(random_state).__name__}")


def _uniform(rng: Any, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    if isinstance(rng, torch.Generator):
        u = torch.rand(low.shape, generator=rng, dtype=torch.float64, device=rng.device).cpu().numpy()
        return low + (high - low) * u
    return rng.uniform(low, high)


def _normal(rng: Any, shape: tuple[int, ...], like: Tensor) -> Tensor:
    if isinstance(rng, torch.Generator):
        return torch.randn(shape, generator=rng, dtype=like.dtype, device=rng.device).to(like.device)
    return torch.as_tensor(rng.standard_normal(shape), dtype=like.dtype, device=like.device)


def _out(t: Tensor, numpy_out: bool) -> Any:
    return t.detach().cpu().numpy() if numpy_out else t


class _Objective:
    """What :func:`difflens.gp.fitting.fit_hyperparameters` drives: the LML of a clamped ``theta``."""

    n_restarts, restart_range = 0, 0.0

    def __init__(self, gpr: GaussianProcessRegressor, raw: Tensor, low: Tensor, high: Tensor):
        self.gpr, self.raw, self.low, self.high = gpr, raw, low, high
        self.max_iter, self.tol = gpr.max_iter, gpr.tol
        self.optimization = None

    def _lml_tensor(self, warn: bool = False) -> Tensor:
        return self.gpr._lml(self.gpr.kernel_, torch.clamp(self.raw, self.low, self.high))


class GaussianProcessRegressor:
    """Exact GP regression with scikit-learn's parameters, attributes and return conventions.

    Args:
        kernel: a :mod:`difflens.gp.sklearn_kernels` kernel; ``None`` means
            ``ConstantKernel(1.0, "fixed") * RBF(1.0, "fixed")``. Never modified.
        alpha: noise variance added to the diagonal of the training kernel matrix,
            a scalar or one value per sample (default 1e-10).
        optimizer: ``"lbfgs"`` (default, on the engine), ``"fmin_l_bfgs_b"`` (SciPy),
            a callable, or ``None``; see the module docstring.
        n_restarts_optimizer: extra optimiser runs from random points within the bounds.
        normalize_y: standardise each output column before fitting (predictions are
            returned in the original units).
        copy_X_train: store copies of ``X`` and ``y`` (default True).
        n_targets: number of outputs, used for the shape of prior predictions before ``fit``.
        random_state: int, NumPy RandomState/Generator or torch.Generator for the restarts.
        max_iter, tol: per-run L-BFGS iteration cap and relative-change tolerance ("lbfgs").
        dtype, device: where the computation runs (default float64 on CPU).

    Attributes (after ``fit``):
        kernel_, X_train_, y_train_, alpha_, L_, log_marginal_likelihood_value_,
        optimization: the :class:`~difflens.engine.Optimization` of the best "lbfgs" run (or None).
    """

    def __init__(self, kernel: Kernel | None = None, *, alpha: float | Any = 1e-10,
                 optimizer: str | Callable | None = "lbfgs", n_restarts_optimizer: int = 0,
                 normalize_y: bool = False, copy_X_train: bool = True, n_targets: int | None = None,
                 random_state: RandomState = None, max_iter: int = 200, tol: float = 1e-9,
                 dtype: torch.dtype = torch.float64, device: torch.device | str | None = None):
        self.kernel = kernel
        self.alpha = alpha
        self.optimizer = optimizer
        self.n_restarts_optimizer = n_restarts_optimizer
        self.normalize_y = normalize_y
        self.copy_X_train = copy_X_train
        self.n_targets = n_targets
        self.random_state = random_state
        self.max_iter = max_iter
        self.tol = tol
        self.dtype = dtype
        self.device = device
        self.optimization = None

    # ------------------------------------------------------------------ parameters
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Constructor arguments (with ``deep``, also the kernel's as ``kernel__name``)."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        out = {n: getattr(self, n) for n in names}
        if deep and isinstance(self.kernel, Kernel):
            out.update({f"kernel__{k}": v for k, v in self.kernel.get_params(True).items()})
        return out

    def set_params(self, **params: Any) -> GaussianProcessRegressor:
        """Set constructor arguments (``kernel__name`` reaches into the kernel); returns ``self``."""
        valid = self.get_params(deep=False)
        for key, value in params.items():
            name, sep, sub = key.partition("__")
            if name not in valid:
                raise ValueError(f"invalid parameter {name!r} for GaussianProcessRegressor; valid: {sorted(valid)}")
            if sep:
                getattr(self, name).set_params(**{sub: value})
            else:
                setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        return f"GaussianProcessRegressor(kernel={self.kernel!r})"

    @property
    def _device(self) -> torch.device:
        return torch.device(self.device or "cpu")

    # ------------------------------------------------------------------------ fit
    def fit(self, X: Any, y: Any) -> GaussianProcessRegressor:
        """Fit to ``X`` (N, D) and ``y`` (N,) or (N, T) (NumPy or torch); returns ``self``."""
        numpy_out = not isinstance(X, Tensor)
        # as scikit-learn: the default kernel's hyperparameters are free in fit, fixed for the prior
        kernel_ = ConstantKernel(1.0) * RBF(1.0) if self.kernel is None else self.kernel.clone()
        if not isinstance(kernel_, Kernel):
            raise TypeError(f"kernel must be a difflens.gp.sklearn_kernels.Kernel, got {type(kernel_).__name__}")
        Xt = as_inputs(X, "X", None, self.dtype, self._device)
        kernel_._check_dims(Xt)
        yt = torch.as_tensor(np.asarray(y, dtype=float) if not isinstance(y, Tensor) else y,
                             dtype=self.dtype, device=self._device)
        if yt.ndim not in (1, 2) or yt.shape[0] != Xt.shape[0]:
            raise ValueError(f"y must have shape (N,) or (N, T) with N = {Xt.shape[0]} rows of X, "
                             f"got shape {tuple(yt.shape)}")
        if not bool(torch.isfinite(yt).all()):
            raise ValueError("y contains NaN or inf")
        n_out = 1 if yt.ndim == 1 else yt.shape[1]
        if self.n_targets is not None and n_out != self.n_targets:
            raise ValueError(f"The number of targets seen in `y` is different from the parameter `n_targets`. "
                             f"Got {n_out} != {self.n_targets}.")
        Y = yt.reshape(yt.shape[0], -1)
        if self.normalize_y and Y.shape[0] > 0:
            mean, std = Y.mean(0), Y.std(0, unbiased=False)
            std = torch.where(std < 10 * torch.finfo(std.dtype).eps, torch.ones_like(std), std)
        else:
            mean, std = Y.new_zeros(Y.shape[1]), Y.new_ones(Y.shape[1])
        Yn = (Y - mean) / std
        noise = torch.as_tensor(np.asarray(self.alpha, dtype=float) if not isinstance(self.alpha, Tensor)
                                else self.alpha, dtype=self.dtype, device=self._device)
        if noise.ndim > 1 or (noise.ndim == 1 and noise.shape[0] != Y.shape[0]):
            if noise.ndim == 1 and noise.shape[0] == 1:
                noise = noise[0]
            else:
                raise ValueError(f"alpha must be a scalar or an array with same number of entries as y. "
                                 f"({noise.shape[0] if noise.ndim else 1} != {Y.shape[0]})")
        self._X = Xt.clone() if self.copy_X_train else Xt
        self._Y, self._noise, self._y_ndim = Yn, noise, yt.ndim
        self._mean_t, self._std_t = mean, std
        self.kernel_ = kernel_
        self.optimization = None

        if self.optimizer is not None and kernel_.n_dims > 0:
            kernel_.theta = self._optimize(kernel_)
            self._warn_at_bounds(kernel_)
        self._factorize(kernel_)

        self.X_train_ = _out(self._X, numpy_out) if numpy_out else self._X
        y_store = Yn if yt.ndim == 2 else Yn[:, 0]
        self.y_train_ = _out(y_store, numpy_out)
        a = self._alpha if yt.ndim == 2 else self._alpha[:, 0]
        self.alpha_, self.L_ = _out(a, numpy_out), _out(self._L, numpy_out)
        if yt.ndim == 1:
            self._y_train_mean, self._y_train_std = float(mean[0]), float(std[0])
        else:
            self._y_train_mean, self._y_train_std = _out(mean, True), _out(std, True)
        return self

    def _lml(self, kernel: Kernel, theta: Tensor) -> Tensor:
        K, white = kernel.evaluate_split(self._X, theta)
        if K is None:
            K = self._X.new_zeros(self._X.shape[0], self._X.shape[0])
        noise = self._noise if white is None else self._noise + white
        return log_marginal_likelihood(K, noise, self._Y, _EXACT, False)

    def _optimize(self, kernel: Kernel) -> np.ndarray:
        bounds = kernel.bounds
        if np.any(bounds[:, 0] > bounds[:, 1]):
            raise ValueError(f"kernel {kernel} has a hyperparameter whose lower bound exceeds its upper bound")
        starts = [np.clip(kernel.theta, bounds[:, 0], bounds[:, 1])]  # out-of-bounds: warned at construction
        if int(self.n_restarts_optimizer) > 0:
            if not np.isfinite(bounds).all():
                raise ValueError("Multiple optimizer restarts (n_restarts_optimizer>0) requires that all bounds "
                                 "are finite.")
            rng = _resolve_rng(self.random_state, self._device)
            starts += [_uniform(rng, bounds[:, 0], bounds[:, 1]) for _ in range(int(self.n_restarts_optimizer))]
        if self.optimizer == "lbfgs":
            return self._optimize_engine(kernel, starts, bounds)
        if self.optimizer == "fmin_l_bfgs_b":
            from scipy.optimize import minimize

            def run(obj, x0, b):
                res = minimize(obj, x0, method="L-BFGS-B", jac=True, bounds=b)
                return res.x, res.fun
        elif callable(self.optimizer):
            run = self.optimizer
        else:
            raise ValueError(f"optimizer must be 'lbfgs', 'fmin_l_bfgs_b', a callable or None, got {self.optimizer!r}")

        def obj_func(theta: np.ndarray, eval_gradient: bool = True):
            if eval_gradient:
                lml, grad = self.log_marginal_likelihood(theta, eval_gradient=True, clone_kernel=False)
                return -lml, -grad
            return -self.log_marginal_likelihood(theta, clone_kernel=False)

        results = [run(obj_func, s, bounds) for s in starts]
        best = min(range(len(results)), key=lambda i: results[i][1])
        return np.asarray(results[best][0], dtype=float)

    def _optimize_engine(self, kernel: Kernel, starts: list[np.ndarray], bounds: np.ndarray) -> np.ndarray:
        from .fitting import fit_hyperparameters

        kw = {"dtype": self.dtype, "device": self._device}
        raw = torch.tensor(starts[0], **kw, requires_grad=True)
        low, high = torch.tensor(bounds[:, 0], **kw), torch.tensor(bounds[:, 1], **kw)
        target = _Objective(self, raw, low, high)
        try:
            fit_hyperparameters(target, [raw], None, starts=[[torch.tensor(s, **kw)] for s in starts[1:]])
        except NotPositiveDefiniteError:
            return starts[0]  # no run reached a finite LML: keep the start (the final Cholesky names the problem)
        self.optimization = target.optimization
        return torch.clamp(raw.detach(), low, high).cpu().numpy()

    def _warn_at_bounds(self, kernel: Kernel) -> None:
        theta, bounds = kernel.theta, kernel.bounds
        close = np.isclose(bounds, np.atleast_2d(theta).T)
        i = 0
        for h in kernel.hyperparameters:
            if h.fixed:
                continue
            for dim in range(h.n_elements):
                if close[i, 0]:
                    warnings.warn(f"The optimal value found for dimension {dim} of parameter {h.name} is close to "
                                  f"the specified lower bound {h.bounds[dim][0]}. Decreasing the bound and calling "
                                  "fit again may find a better value.", ConvergenceWarning, stacklevel=3)
                elif close[i, 1]:
                    warnings.warn(f"The optimal value found for dimension {dim} of parameter {h.name} is close to "
                                  f"the specified upper bound {h.bounds[dim][1]}. Increasing the bound and calling "
                                  "fit again may find a better value.", ConvergenceWarning, stacklevel=3)
                i += 1

    def _factorize(self, kernel: Kernel) -> None:
        with torch.no_grad():
            K = kernel.evaluate(self._X, None, fused=True).clone()
            K.diagonal().add_(self._noise)
            try:
                L, _ = cholesky_jittered(K, _EXACT, what="training kernel matrix (+ alpha)")
            except (NotPositiveDefiniteError, ValueError) as exc:
                raise KernelNotPositiveDefiniteError(
                    f"The kernel, {kernel}, is not returning a positive definite matrix. Try gradually increasing "
                    "the 'alpha' parameter of your GaussianProcessRegressor estimator.") from exc
            self._L = L
            self._alpha = cholesky_solve(self._Y, L)
            n, t = self._Y.shape
            self.log_marginal_likelihood_value_ = np.float64(
                -0.5 * (self._Y * self._alpha).sum() - t * L.diagonal().log().sum()
                - 0.5 * n * t * math.log(2 * math.pi))

    # ------------------------------------------------------------------------- LML
    def log_marginal_likelihood(self, theta: Any = None, eval_gradient: bool = False, clone_kernel: bool = True):
        """The LML of the training data at ``theta`` (default: the fitted value, precomputed).

        With ``eval_gradient``, also its gradient with respect to ``theta`` (n_dims,),
        by automatic differentiation. ``clone_kernel=False`` sets ``kernel_.theta``.
        A kernel matrix that is not positive definite gives ``-inf`` (and a zero gradient).
        """
        if theta is None:
            if eval_gradient:
                raise ValueError("Gradient can only be evaluated for theta!=None")
            self._check_fitted()
            return self.log_marginal_likelihood_value_
        self._check_fitted()
        kernel = self.kernel_.clone_with_theta(theta) if clone_kernel else self.kernel_
        if not clone_kernel:
            kernel.theta = theta
        th = torch.tensor(kernel.theta, dtype=self.dtype, device=self._device, requires_grad=eval_gradient)
        try:
            with torch.enable_grad() if eval_gradient else torch.no_grad():
                lml = self._lml(kernel, th)
                if eval_gradient:
                    (grad,) = torch.autograd.grad(lml, th, allow_unused=True)
        except NotPositiveDefiniteError:
            return (-np.inf, np.zeros_like(kernel.theta)) if eval_gradient else -np.inf
        if not eval_gradient:
            return np.float64(lml)
        grad = torch.zeros_like(th) if grad is None else grad
        return np.float64(lml.detach()), grad.cpu().numpy()

    def _check_fitted(self) -> None:
        if not hasattr(self, "kernel_"):
            raise NotFittedError("this GaussianProcessRegressor is not fitted yet: call fit(X, y) first")

    # --------------------------------------------------------------------- predict
    def predict(self, X: Any, return_std: bool = False, return_cov: bool = False):
        """Posterior (or, before ``fit``, prior) mean at ``X`` (M, D); optionally its std or covariance.

        Shapes: mean (M,) or (M, T); std like mean; cov (M, M) or (M, M, T)
        (one output is squeezed, as in scikit-learn). NumPy in, NumPy out.
        """
        if return_std and return_cov:
            raise RuntimeError("At most one of return_std or return_cov can be requested.")
        numpy_out = not isinstance(X, Tensor)
        if not hasattr(self, "kernel_"):
            return self._predict_prior(X, return_std, return_cov, numpy_out)
        Xs = as_inputs(X, "X", self._X.shape[1], self.dtype, self._device)
        self.kernel_._check_dims(Xs)
        std2 = self._std_t.square()
        with torch.no_grad():
            Ks = self.kernel_.evaluate(Xs, self._X, fused=True)
            mean = (Ks @ self._alpha) * self._std_t + self._mean_t
            mean = mean[:, 0] if mean.shape[1] == 1 else mean
            if not (return_std or return_cov):
                return _out(mean, numpy_out)
            V = torch.linalg.solve_triangular(self._L, Ks.mT, upper=False)
            if return_cov:
                cov = self.kernel_.evaluate(Xs, None, fused=True) - V.mT @ V
                cov = cov.unsqueeze(-1) * std2
                cov = cov[..., 0] if cov.shape[-1] == 1 else cov
                return _out(mean, numpy_out), _out(cov, numpy_out)
            diag = self.kernel_.diag(Xs)
            var = torch.as_tensor(diag, dtype=self.dtype, device=self._device) - V.square().sum(0)
            if bool((var < 0).any()):
                warnings.warn("Predicted variances smaller than 0. Setting those variances to 0.", RuntimeWarning,
                              stacklevel=2)
                var = var.clamp_min(0.0)
            std = (var.unsqueeze(-1) * std2).sqrt()
            std = std[:, 0] if std.shape[1] == 1 else std
            return _out(mean, numpy_out), _out(std, numpy_out)

    def _predict_prior(self, X: Any, return_std: bool, return_cov: bool, numpy_out: bool):
        kernel = default_kernel() if self.kernel is None else self.kernel
        Xs = as_inputs(X, "X", None, self.dtype, self._device)
        kernel._check_dims(Xs)
        t = self.n_targets if self.n_targets is not None and self.n_targets > 1 else None
        mean = Xs.new_zeros(Xs.shape[0]) if t is None else Xs.new_zeros(Xs.shape[0], t)
        with torch.no_grad():
            if return_cov:
                cov = kernel.evaluate(Xs, None, fused=True)
                cov = cov if t is None else cov.unsqueeze(-1).repeat(1, 1, t)
                return _out(mean, numpy_out), _out(cov, numpy_out)
            if return_std:
                std = torch.as_tensor(kernel.diag(Xs), dtype=self.dtype, device=self._device).sqrt()
                std = std if t is None else std.unsqueeze(-1).repeat(1, t)
                return _out(mean, numpy_out), _out(std, numpy_out)
        return _out(mean, numpy_out)

    def sample_y(self, X: Any, n_samples: int = 1, random_state: RandomState = 0):
        """Joint draws of the (posterior or prior) process at ``X``: (M, n_samples) or (M, T, n_samples).

        ``random_state``: int (a seeded ``torch.Generator``), NumPy RandomState/Generator
        or torch.Generator. The covariance is factored by an eigendecomposition, so
        singular covariances are sampled exactly.
        """
        numpy_out = not isinstance(X, Tensor)
        Xs = as_inputs(X, "X", None, self.dtype, self._device)
        rng = _resolve_rng(random_state, self._device)
        mean, cov = self.predict(Xs, return_cov=True)
        with torch.no_grad():
            if mean.ndim == 1:
                out = self._draw(rng, mean, cov, int(n_samples))
            else:
                out = torch.stack([self._draw(rng, mean[:, t], cov[..., t], int(n_samples))
                                   for t in range(mean.shape[1])], 1)
        return _out(out, numpy_out)

    @staticmethod
    def _draw(rng: Any, mean: Tensor, cov: Tensor, n: int) -> Tensor:
        evals, evecs = torch.linalg.eigh(cov)
        z = _normal(rng, (mean.shape[0], n), mean)
        return mean.unsqueeze(-1) + evecs @ (evals.clamp_min(0.0).sqrt().unsqueeze(-1) * z)
