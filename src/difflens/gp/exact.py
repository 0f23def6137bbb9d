"""Exact Gaussian-process regression, scikit-learn style, on torch (float64 by default).

>>> import numpy as np
>>> from difflens.gp import GaussianProcess, SquaredExponential
>>> X = np.linspace(0, 5, 20)[:, None]
>>> y = np.sin(X[:, 0])
>>> gp = GaussianProcess(SquaredExponential(), noise_variance=1e-2).fit(X, y)
>>> mean, std = gp.predict(np.array([[2.5]]), return_std=True)
>>> bool(abs(mean[0] - np.sin(2.5)) < 0.1 and std[0] < 0.2)
True

``fit`` maximises the log marginal likelihood over the kernel's hyperparameters
and the noise variance with L-BFGS (strong Wolfe line search) through
:class:`difflens.engine.Optimization`; every evaluation costs one Cholesky of
the ``N x N`` kernel matrix and one Cholesky-inverse for the analytic gradient
(:mod:`difflens.gp.linalg`). Predictions are Cholesky solves, streamed in chunks
of test points. Inputs may be NumPy arrays or torch tensors; outputs follow the
type of ``X`` given to ``predict``/``sample_y``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from difflens.tools.io import load_file, save_file
from difflens.tools.rng import default_generator

from .inputs import NotFittedError, as_inputs, as_targets, is_numpy_like
from .kernels import Kernel, kernel_from_spec
from .linalg import JITTERS, cholesky_jittered, cholesky_solve, log_marginal_likelihood

__all__ = ["GaussianProcess", "NotFittedError"]

FORMAT = "difflens.gp.GaussianProcess"
VERSION = 3  # 2: adds config["copy_X_train"]; 3: config["profile_scale"] (older files: True)
_FITTED = ("X_train_", "y_train_", "y_mean_", "y_std_", "L_", "alpha_")


class GaussianProcess(nn.Module):
    """Exact GP regression with Gaussian noise.

    Args:
        kernel: the prior covariance (a :class:`~difflens.gp.kernels.Kernel`); it is
            moved to ``dtype``/``device`` and owned (fitted in place) by the model.
        noise_variance: variance of the observation noise added to the diagonal of
            the training covariance (scikit-learn's ``alpha``). ``0.0`` means an
            interpolating GP: the noise is then never learned and only jitter is added.
        optimize: whether ``fit`` maximises the log marginal likelihood over the
            trainable hyperparameters (default True).
        normalize_y: standardise ``y`` (mean 0, std 1) before fitting, as scikit-learn does;
            predictions are returned in the original units, the LML is that of the
            standardised targets.
        learn_noise: whether the noise variance is a fitted hyperparameter (when ``optimize``).
        noise_floor: a learned noise is ``noise_floor + exp(log_noise)`` (default 1e-6),
            so the optimiser cannot drive the matrix to singularity.
        profile_scale: when the kernel is ``variance`` times a matrix that does not depend on
            it (``kernel.scales_linearly``: the stationary kernels, Linear, Brownian) and both
            that variance and the noise are learned, ``fit`` maximises the profile likelihood:
            the variance in closed form for each value of the other hyperparameters and of the
            noise-to-signal ratio (default True). Same optimum, one dimension fewer, and none of
            the slow valley along the scale that L-BFGS otherwise crawls through.
        n_restarts: extra L-BFGS runs from random starting points (log-uniform within a
            factor ``exp(restart_range)`` of the initial values); the best LML wins.
        max_iter: L-BFGS iterations per run (default 200).
        tol: stop when the relative change of the negative LML in one iteration is
            below ``tol`` (default 1e-9, scikit-learn's L-BFGS-B ``factr`` is 2.2e-9).
        chunk_size: test points per prediction chunk; default ``max(1, 2**22 // N)``.
        jitters: relative jitters tried in turn when a Cholesky fails
            (default :data:`~difflens.gp.linalg.JITTERS`, up to 1e-6 x mean diagonal).
        copy_X_train: whether ``fit`` stores copies of ``X`` and ``y`` (default True, as
            scikit-learn). With ``False`` the model keeps a reference to the caller's ``X``
            when it already is a tensor or array of the model's dtype on its device (a
            float64 CPU array by default): changing that array afterwards then changes the
            predictions. ``y`` is always stored standardised, hence copied.
        dtype, device: where the model lives (default float64 on CPU).

    Attributes:
        optimization: the :class:`~difflens.engine.Optimization` that fitted the
            hyperparameters (of the best run when ``n_restarts > 0``), ``None`` before a
            fit or when nothing was optimised. Its ``history`` holds the negative LML per
            L-BFGS iteration and the run's wall time (``history.seconds``).
        fit_info_: ``{"lml", "evaluations", "runs", "seconds", "profiled"}`` of the last fit; ``seconds``
            is the engines' wall time summed over all runs.
    """

    def __init__(self, kernel: Kernel, noise_variance: float = 1e-2, optimize: bool = True,
                 normalize_y: bool = False, *, learn_noise: bool = True, noise_floor: float = 1e-6,
                 profile_scale: bool = True, n_restarts: int = 0, restart_range: float = 3.0, max_iter: int = 200, tol: float = 1e-9,
                 chunk_size: int | None = None, jitters: tuple[float, ...] = JITTERS,
                 copy_X_train: bool = True, dtype: torch.dtype = torch.float64,
                 device: torch.device | str | None = None):
        super().__init__()
        if not isinstance(kernel, Kernel):
            raise TypeError(f"kernel must be a difflens.gp.kernels.Kernel, got {type(kernel).__name__}")
        noise_variance = float(noise_variance)
        if not (math.isfinite(noise_variance) and noise_variance >= 0):
            raise ValueError(f"noise_variance must be finite and >= 0, got {noise_variance}")
        if int(n_restarts) < 0 or int(max_iter) < 1:
            raise ValueError(f"need n_restarts >= 0 and max_iter >= 1, got {n_restarts} and {max_iter}")
        if chunk_size is not None and int(chunk_size) < 1:
            raise ValueError(f"chunk_size must be a positive integer or None, got {chunk_size}")
        self.kernel = kernel
        self.optimize, self.normalize_y = bool(optimize), bool(normalize_y)
        self.n_restarts, self.restart_range = int(n_restarts), float(restart_range)
        self.max_iter, self.tol = int(max_iter), float(tol)
        self.chunk_size, self.jitters = chunk_size, tuple(jitters)
        self.copy_X_train = bool(copy_X_train)
        self.profile_scale = bool(profile_scale)
        self.learn_noise = bool(learn_noise) and self.optimize and noise_variance > 0
        floor = float(noise_floor) if self.learn_noise else 0.0
        if self.learn_noise and noise_variance <= floor:
            raise ValueError(f"a learned noise_variance must exceed noise_floor={floor:g}, got {noise_variance:g}")
        self.register_buffer("noise_floor", torch.tensor(floor, dtype=dtype))
        with np.errstate(divide="ignore"):
            raw = torch.tensor(float(np.log(noise_variance - floor)), dtype=dtype)
        self.log_noise = nn.Parameter(raw, requires_grad=self.learn_noise)
        for name in _FITTED:
            self.register_buffer(name, None)
        self.register_buffer("_factor_key", None, persistent=False)
        self.jitter_ = 0.0
        self.fit_info_: dict[str, Any] = {}
        self.optimization = None
        self.to(device=device or "cpu", dtype=dtype)

    # ----------------------------------------------------------------- properties
    @property
    def noise_variance(self) -> Tensor:
        """The observation-noise variance (in units of the normalised ``y`` when ``normalize_y``)."""
        return self.noise_floor + self.log_noise.exp()

    @property
    def device(self) -> torch.device:
        return self.log_noise.device

    @property
    def dtype(self) -> torch.dtype:
        return self.log_noise.dtype

    @property
    def fitted(self) -> bool:
        return self.L_ is not None

    def hyperparameters(self) -> dict[str, float | list[float]]:
        """Kernel hyperparameters and ``noise_variance`` as plain numbers."""
        out: dict[str, Any] = {k: v.tolist() for k, v in self.kernel.hyperparameters().items()}
        out["noise_variance"] = float(self.noise_variance.detach())
        return out

    # ------------------------------------------------------------------------ fit
    def fit(self, X: Any, y: Any, *, generator: torch.Generator | None = None) -> GaussianProcess:
        """Condition on ``X`` (N, D) or (N,) and ``y`` (N,) (NumPy or torch); returns ``self``.

        With ``optimize`` the hyperparameters are fitted first (``generator`` draws
        the restarts' starting points; default
        :func:`~difflens.tools.rng.default_generator`). ``N = 0`` is allowed and
        leaves the prior. With ``copy_X_train`` (default) the model stores copies,
        so changing ``X`` or ``y`` afterwards does not change its predictions.
        """
        X = as_inputs(X, "X", None, self.dtype, self.device)
        y = as_targets(y, X.shape[0], "y", self.dtype, self.device)
        if self.copy_X_train:
            X = X.clone()  # y is stored standardised below: a new tensor either way
        self.kernel._check(X)
        if self.normalize_y and X.shape[0] > 0:
            mean, std = y.mean(), y.std(unbiased=False)
            std = torch.where(std > 10 * torch.finfo(std.dtype).eps, std, torch.ones_like(std))
        else:
            mean, std = y.new_zeros(()), y.new_ones(())
        self.X_train_, self.y_train_ = X, (y - mean) / std
        self.y_mean_, self.y_std_ = mean, std
        self.L_ = self.alpha_ = None
        self.fit_info_ = {}
        self.optimization = None
        trainable = [p for p in self.parameters() if p.requires_grad]
        if self.optimize and trainable and X.shape[0] > 0:
            from .fitting import fit_hyperparameters

            self.fit_info_ = fit_hyperparameters(self, trainable, generator)
        self._factorize()
        return self

    def _params_key(self) -> Tensor:
        return torch.cat([p.detach().reshape(-1) for p in self.parameters()])

    def _factorize(self) -> None:
        X, y = self.X_train_, self.y_train_
        with torch.no_grad():
            if X.shape[0] == 0:  # no data: the prior
                self.L_, self.alpha_, self.jitter_ = X.new_zeros(0, 0), X.new_zeros(0), 0.0
                self._factor_key = self._params_key()
                return
            L, self.jitter_ = cholesky_jittered(self.kernel(X), self.jitters, what="training kernel matrix (+ noise)",
                                                shift=float(self.noise_variance))
            self.L_ = L
            self.alpha_ = cholesky_solve(y.unsqueeze(-1), L).squeeze(-1)
            self._factor_key = self._params_key()

    def _check_fitted(self) -> None:
        if self.X_train_ is None:
            raise NotFittedError("this GaussianProcess is not fitted yet: call fit(X, y) before predicting "
                                 "(or sample_y(X, prior=True) for prior draws)")
        key = self._params_key()
        if self.L_ is None or self._factor_key is None or self._factor_key.shape != key.shape \
                or not torch.equal(self._factor_key, key):
            self._factorize()  # hyperparameters were changed by hand since fit

    # --------------------------------------------------------------------- LML
    def log_marginal_likelihood(self) -> float:
        """``log p(y | X, hyperparameters)`` at the current hyperparameters (scikit-learn's value).

        With ``normalize_y`` it is the LML of the standardised targets, as in scikit-learn.
        """
        self._check_fitted()
        n = self.y_train_.shape[0]
        with torch.no_grad():
            return float(-0.5 * (self.y_train_ @ self.alpha_) - self.L_.diagonal().log().sum()
                         - 0.5 * n * math.log(2 * math.pi))

    def _lml_tensor(self, warn: bool = True) -> Tensor:
        """Differentiable LML at the current hyperparameters (one Cholesky; used by fitting)."""
        return log_marginal_likelihood(self.kernel(self.X_train_), self.noise_variance, self.y_train_,
                                       self.jitters, warn)

    # ----------------------------------------------------------------- predict
    def predict(self, X: Any, return_std: bool = False, return_cov: bool = False,
                include_noise: bool = False):
        """Posterior of the latent function at ``X`` (M, D) or (M,).

        Returns ``mean`` (M,), or ``(mean, std)`` with ``std`` (M,), or
        ``(mean, cov)`` with ``cov`` (M, M); ``include_noise`` adds the noise
        variance (the predictive distribution of new observations). NumPy input
        gives NumPy output, torch input gives tensors on the model's device.
        """
        if return_std and return_cov:
            raise ValueError("ask for at most one of return_std and return_cov")
        numpy_out = is_numpy_like(X)
        self._check_fitted()
        Xs = as_inputs(X, "X", self.X_train_.shape[1], self.dtype, self.device)
        self.kernel._check(Xs)
        scale2 = self.y_std_.square()
        noise = self.noise_variance.detach() if include_noise else None
        with torch.no_grad():
            if return_cov:
                Ks = self.kernel(Xs, self.X_train_)
                mean = Ks @ self.alpha_
                V = torch.linalg.solve_triangular(self.L_, Ks.mT, upper=False)
                cov = self.kernel(Xs) - V.mT @ V
                if noise is not None:
                    cov.diagonal().add_(noise)
                out = (mean * self.y_std_ + self.y_mean_, cov * scale2)
            else:
                means, stds = [], []
                n = max(self.X_train_.shape[0], 1)
                step = int(self.chunk_size or max(1, 2 ** 22 // n))
                for start in range(0, Xs.shape[0], step):
                    chunk = Xs[start:start + step]
                    Ks = self.kernel(chunk, self.X_train_)
                    means.append(Ks @ self.alpha_)
                    if return_std:
                        V = torch.linalg.solve_triangular(self.L_, Ks.mT, upper=False)
                        var = self.kernel.diag(chunk) - V.square().sum(0)
                        if noise is not None:
                            var = var + noise
                        stds.append(var.clamp_min(0.0).mul(scale2).sqrt())
                mean = torch.cat(means) * self.y_std_ + self.y_mean_ if means else Xs.new_zeros(0)
                out = (mean, torch.cat(stds) if stds else Xs.new_zeros(0)) if return_std else mean
        return _convert(out, numpy_out)

    def sample_y(self, X: Any, n: int = 1, prior: bool = False, *, generator: torch.Generator | None = None):
        """``n`` joint draws of the latent function at ``X``: shape ``(M, n)`` (as scikit-learn).

        ``prior=True`` draws from the prior (allowed before ``fit``). ``generator``
        is a ``torch.Generator`` on the model's device; default
        :func:`~difflens.tools.rng.default_generator` on that device.
        The covariance is factored by an eigendecomposition, so singular
        covariances (e.g. at training points without noise) are sampled exactly.
        """
        if int(n) < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        numpy_out = is_numpy_like(X)
        if prior:
            dim = None if self.X_train_ is None else self.X_train_.shape[1]
            Xs = as_inputs(X, "X", dim, self.dtype, self.device)
            with torch.no_grad():
                cov = self.kernel(Xs)
            if self.X_train_ is None:
                mean = Xs.new_zeros(Xs.shape[0])
            else:
                mean, cov = Xs.new_zeros(Xs.shape[0]) + self.y_mean_, cov * self.y_std_.square()
        else:
            Xs = as_inputs(X, "X", None, self.dtype, self.device)
            mean, cov = self.predict(Xs, return_cov=True)
        generator = default_generator(generator, self.device)
        with torch.no_grad():
            evals, evecs = torch.linalg.eigh(cov)
            z = torch.randn(Xs.shape[0], int(n), generator=generator, dtype=self.dtype,
                            device=generator.device).to(self.device)
            draws = mean.unsqueeze(-1) + evecs @ (evals.clamp_min(0.0).sqrt().unsqueeze(-1) * z)
        return _convert(draws, numpy_out)

    # --------------------------------------------------------------- save/load
    def _config(self) -> dict[str, Any]:
        return {"optimize": self.optimize, "normalize_y": self.normalize_y, "learn_noise": self.learn_noise,
                "noise_floor": float(self.noise_floor), "n_restarts": self.n_restarts,
                "restart_range": self.restart_range, "max_iter": self.max_iter, "tol": self.tol,
                "chunk_size": self.chunk_size, "jitters": list(self.jitters), "copy_X_train": self.copy_X_train,
                "profile_scale": self.profile_scale}

    def save(self, path: str | os.PathLike) -> Path:
        """Write the model (kernel, hyperparameters, training data, factorisation) to one file, atomically."""
        payload = {
            "kernel": self.kernel.spec(), "config": self._config(),
            "dtype": str(self.dtype).removeprefix("torch."),
            "state": {k: v.detach().cpu() for k, v in self.state_dict().items() if k not in _FITTED},
            "fitted": {k: (None if getattr(self, k) is None else getattr(self, k).cpu()) for k in _FITTED},
            "jitter": float(self.jitter_), "fit_info": self.fit_info_,
            "optimization": None if self.optimization is None else self.optimization.state_dict(),
        }
        return save_file(payload, path, format=FORMAT, version=VERSION)

    @classmethod
    def load(cls, path: str | os.PathLike, map_location: Any = None) -> GaussianProcess:
        """Read a :meth:`save` file; the model is placed on ``map_location`` (default CPU).

        Raises ``FileNotFoundError`` or :class:`~difflens.tools.io.CheckpointError`
        (a corrupt file, another format, a newer version). The loaded model has no
        ``optimization`` (the fit's engine state is in the file, under ``"optimization"``).
        """
        data = load_file(path, format=FORMAT, version=VERSION)
        cfg = dict(data["config"])
        floor = cfg.pop("noise_floor")
        learn = cfg.pop("learn_noise")
        cfg["jitters"] = tuple(cfg["jitters"])
        gp = cls(kernel_from_spec(data["kernel"]), noise_variance=1.0 if learn else 0.0, learn_noise=learn,
                 noise_floor=min(floor, 0.5) if learn else 1e-6, dtype=getattr(torch, data["dtype"]), **cfg)
        gp.load_state_dict(data["state"])
        for k, v in data["fitted"].items():
            setattr(gp, k, None if v is None else v.to(gp.dtype))
        gp.jitter_, gp.fit_info_ = data["jitter"], data["fit_info"]
        if gp.L_ is not None:
            gp._factor_key = gp._params_key()
        return gp.to(map_location or "cpu")

    def _apply(self, fn, recurse=True):  # keep the "factorisation is current" key valid across .to()
        current = self._factor_key is not None and torch.equal(self._factor_key, self._params_key())
        out = super()._apply(fn, recurse)
        if current:
            self._factor_key = self._params_key()
        return out


def _convert(out: Any, numpy_out: bool) -> Any:
    if not numpy_out:
        return out
    if isinstance(out, tuple):
        return tuple(o.detach().cpu().numpy() for o in out)
    return out.detach().cpu().numpy()
