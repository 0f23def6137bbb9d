"""scikit-learn's elementary kernels in torch: constant, white noise, RBF, Matérn (any ``nu``),
rational quadratic, exp-sine-squared, dot product and the pairwise-metric kernels.

The RBF and the Matérn kernels with ``nu`` in {1/2, 3/2, 5/2, inf} evaluate through the fused
operator of :mod:`difflens.gp.stationary` when differentiated in reverse mode (fitting);
the others are plain torch expressions of their hyperparameters.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .bessel import matern_profile
from .sklearn_kernel_base import DEFAULT_BOUNDS, Kernel, check_in_bounds, format_value, sqdist
from .stationary import stationary_matrix

__all__ = ["RBF", "ConstantKernel", "DotProduct", "ExpSineSquared", "Matern", "PairwiseKernel", "RationalQuadratic",
           "WhiteKernel"]


def _safe_sqrt(d2: Tensor) -> Tensor:
    """``sqrt(d2)`` with a zero (not NaN) derivative where ``d2 == 0``."""
    pos = d2 > 0
    return torch.where(pos, torch.where(pos, d2, torch.ones_like(d2)).sqrt(), torch.zeros_like(d2))



class _LengthScaleMixin:
    """Helpers for kernels with a ``length_scale`` that may be a (D,) vector (ARD)."""

    @property
    def anisotropic(self) -> bool:
        ls = self.length_scale
        return bool(np.iterable(ls) and len(ls) > 1)

    def _check_dims(self, X: Tensor) -> None:
        if self.anisotropic and X.shape[1] != len(self.length_scale):
            raise ValueError(f"{type(self).__name__} has {len(self.length_scale)} length scales (one per input "
                             f"dimension) but X has {X.shape[1]} input dimension(s)")



# ------------------------------------------------------------------------- basic kernels
class ConstantKernel(Kernel):
    """``k(x, y) = constant_value`` (a random offset shared by all points); ``c * k`` builds a product."""

    _hyper = (("constant_value", False),)

    def __init__(self, constant_value: float = 1.0, constant_value_bounds: Any = DEFAULT_BOUNDS):
        self.constant_value = constant_value
        self.constant_value_bounds = constant_value_bounds
        check_in_bounds(self)

    @property
    def requires_vector_input(self) -> bool:
        return False

    def _matrix(self, X, Y, p, fused):
        m = X.shape[0] if Y is None else Y.shape[0]
        return p["constant_value"].to(X) * torch.ones(X.shape[0], m, dtype=X.dtype, device=X.device)

    def _diag_t(self, X, p):
        return p["constant_value"].to(X) * torch.ones(X.shape[0], dtype=X.dtype, device=X.device)

    def __repr__(self) -> str:
        return f"{math.sqrt(float(self.constant_value)):.3g}**2"


class WhiteKernel(Kernel):
    """``noise_level * I`` on ``k(X)``, zero between two different sets (``k(X, Y)``)."""

    _hyper = (("noise_level", False),)

    def __init__(self, noise_level: float = 1.0, noise_level_bounds: Any = DEFAULT_BOUNDS):
        self.noise_level = noise_level
        self.noise_level_bounds = noise_level_bounds
        check_in_bounds(self)

    @property
    def requires_vector_input(self) -> bool:
        return False

    def _matrix(self, X, Y, p, fused):
        if Y is not None:
            return torch.zeros(X.shape[0], Y.shape[0], dtype=X.dtype, device=X.device)
        return p["noise_level"].to(X) * torch.eye(X.shape[0], dtype=X.dtype, device=X.device)

    def _diag_t(self, X, p):
        return p["noise_level"].to(X) * torch.ones(X.shape[0], dtype=X.dtype, device=X.device)

    def _eval_split(self, X, theta):
        return None, self._theta_dict(theta)["noise_level"].to(X).reshape(())


class RBF(_LengthScaleMixin, Kernel):
    """Squared exponential ``exp(-|x - y|^2 / (2 length_scale^2))`` (no variance: multiply by a constant)."""

    _hyper = (("length_scale", True),)

    def __init__(self, length_scale: Any = 1.0, length_scale_bounds: Any = DEFAULT_BOUNDS):
        self.length_scale = length_scale
        self.length_scale_bounds = length_scale_bounds
        if type(self) is RBF:
            check_in_bounds(self)

    _kind = "se"

    def _scaled(self, X, Y, p):
        inv = 1.0 / p["length_scale"].to(X)
        return X * inv, (None if Y is None else Y * inv)

    def _profile(self, d2: Tensor) -> Tensor:
        return torch.exp(-0.5 * d2)

    def _matrix(self, X, Y, p, fused):
        a, b = self._scaled(X, Y, p)
        if fused and self._kind is not None:
            return stationary_matrix(a, b, torch.zeros((), dtype=X.dtype, device=X.device), self._kind)
        return self._profile(sqdist(a, b))

    def _eval_times(self, X, Y, theta, fused, log_scale: Tensor) -> Tensor:
        """``exp(log_scale) * k(X, Y)`` in one pass (the fused operator takes the scale)."""
        if fused and self._kind is not None:
            a, b = self._scaled(X, Y, self._theta_dict(theta))
            return stationary_matrix(a, b, log_scale, self._kind)
        return log_scale.exp() * self._eval(X, Y, theta, fused)

    def __repr__(self) -> str:
        return f"RBF(length_scale={format_value(np.asarray(self.length_scale, dtype=float))})"


class Matern(RBF):
    """Matérn kernel of smoothness ``nu > 0``: ``2^(1-nu)/Gamma(nu) z^nu K_nu(z)``, ``z = sqrt(2 nu) r / l``.

    ``nu`` in {0.5, 1.5, 2.5} uses the closed forms, ``nu = inf`` is the RBF;
    any other ``nu`` evaluates the modified Bessel function ``K_nu``
    (:func:`difflens.gp.bessel.matern_profile`, float64 CPU through SciPy).
    """

    def __init__(self, length_scale: Any = 1.0, length_scale_bounds: Any = DEFAULT_BOUNDS, nu: float = 1.5):
        super().__init__(length_scale, length_scale_bounds)
        self.nu = nu
        check_in_bounds(self)

    @property
    def _kind(self) -> str | None:
        nu = float(self.nu)
        if not nu > 0:
            raise ValueError(f"Matern needs nu > 0 (or inf), got {self.nu!r}")
        return {0.5: "m12", 1.5: "m32", 2.5: "m52", math.inf: "se"}.get(nu)

    def _profile(self, d2: Tensor) -> Tensor:
        kind = self._kind
        if kind == "se":
            return torch.exp(-0.5 * d2)
        d = _safe_sqrt(d2)
        if kind == "m12":
            return torch.exp(-d)
        if kind == "m32":
            s = math.sqrt(3.0) * d
            return (1.0 + s) * torch.exp(-s)
        if kind == "m52":
            s = math.sqrt(5.0) * d
            return (1.0 + s + s.square() / 3.0) * torch.exp(-s)
        return matern_profile(math.sqrt(2.0 * float(self.nu)) * d, float(self.nu))

    def __repr__(self) -> str:
        return f"Matern(length_scale={format_value(np.asarray(self.length_scale, dtype=float))}, nu={float(self.nu):.3g})"


class RationalQuadratic(Kernel):
    """``(1 + |x - y|^2 / (2 alpha length_scale^2))^(-alpha)`` (isotropic only)."""

    _hyper = (("alpha", False), ("length_scale", False))

    def __init__(self, length_scale: float = 1.0, alpha: float = 1.0, length_scale_bounds: Any = DEFAULT_BOUNDS,
                 alpha_bounds: Any = DEFAULT_BOUNDS):
        self.length_scale = length_scale
        self.alpha = alpha
        self.length_scale_bounds = length_scale_bounds
        self.alpha_bounds = alpha_bounds
        check_in_bounds(self)

    def _check_dims(self, X: Tensor) -> None:
        if np.iterable(self.length_scale) and len(self.length_scale) > 1:
            raise AttributeError("RationalQuadratic kernel only supports isotropic version, "
                                 "please use a single scalar for length_scale")

    def _matrix(self, X, Y, p, fused):
        a, ls = p["alpha"].to(X), p["length_scale"].to(X).reshape(())
        return (1.0 + sqdist(X, Y) / (2.0 * a * ls.square())).pow(-a)


class ExpSineSquared(Kernel):
    """``exp(-2 sin^2(pi |x - y| / periodicity) / length_scale^2)`` (scikit-learn's; Euclidean distance)."""

    _hyper = (("length_scale", False), ("periodicity", False))

    def __init__(self, length_scale: float = 1.0, periodicity: float = 1.0,
                 length_scale_bounds: Any = DEFAULT_BOUNDS, periodicity_bounds: Any = DEFAULT_BOUNDS):
        self.length_scale = length_scale
        self.periodicity = periodicity
        self.length_scale_bounds = length_scale_bounds
        self.periodicity_bounds = periodicity_bounds
        check_in_bounds(self)

    def _matrix(self, X, Y, p, fused):
        ls, per = p["length_scale"].to(X).reshape(()), p["periodicity"].to(X).reshape(())
        d = _safe_sqrt(sqdist(X, Y))
        return torch.exp(-2.0 * torch.sin(math.pi * d / per).square() / ls.square())


class DotProduct(Kernel):
    """``sigma_0^2 + x . y`` (not stationary)."""

    _hyper = (("sigma_0", False),)

    def __init__(self, sigma_0: float = 1.0, sigma_0_bounds: Any = DEFAULT_BOUNDS):
        self.sigma_0 = sigma_0
        self.sigma_0_bounds = sigma_0_bounds
        check_in_bounds(self)

    def is_stationary(self) -> bool:
        return False

    def _matrix(self, X, Y, p, fused):
        return X @ (X if Y is None else Y).mT + p["sigma_0"].to(X).square()

    def _diag_t(self, X, p):
        return X.square().sum(-1) + p["sigma_0"].to(X).square()


class PairwiseKernel(Kernel):
    """``k(x, y) = f_metric(x, y; gamma)`` for scikit-learn's pairwise kernel metrics.

    metric: "linear", "rbf", "laplacian", "polynomial"/"poly", "sigmoid", "cosine",
    each with scikit-learn's default extra arguments (``degree=3``, ``coef0=1``),
    overridable through ``pairwise_kernels_kwargs``.
    """

    _hyper = (("gamma", False),)
    METRICS = ("linear", "rbf", "laplacian", "polynomial", "poly", "sigmoid", "cosine")

    def __init__(self, gamma: float = 1.0, gamma_bounds: Any = DEFAULT_BOUNDS, metric: str = "linear",
                 pairwise_kernels_kwargs: dict | None = None):
        self.gamma = gamma
        self.gamma_bounds = gamma_bounds
        self.metric = metric
        self.pairwise_kernels_kwargs = pairwise_kernels_kwargs
        check_in_bounds(self)

    def is_stationary(self) -> bool:
        return self.metric in ("rbf", "laplacian")

    def _matrix(self, X, Y, p, fused):
        if self.metric not in self.METRICS:
            raise ValueError(f"PairwiseKernel metric must be one of {self.METRICS}, got {self.metric!r}")
        kw = dict(self.pairwise_kernels_kwargs or {})
        g = p["gamma"].to(X)
        Y = X if Y is None else Y
        if self.metric == "linear":
            return X @ Y.mT
        if self.metric == "rbf":
            return torch.exp(-g * sqdist(X, Y))
        if self.metric == "laplacian":
            return torch.exp(-g * (X.unsqueeze(1) - Y.unsqueeze(0)).abs().sum(-1))
        if self.metric in ("polynomial", "poly"):
            return (g * (X @ Y.mT) + kw.get("coef0", 1.0)) ** kw.get("degree", 3)
        if self.metric == "sigmoid":
            return torch.tanh(g * (X @ Y.mT) + kw.get("coef0", 1.0))
        nx = X / X.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(X.dtype).tiny)
        ny = Y / Y.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(Y.dtype).tiny)
        return nx @ ny.mT

    def _diag_t(self, X, p):
        return torch.stack([self._matrix(x[None], None, p, False)[0, 0] for x in X]) if len(X) else X.new_zeros(0)

    def __repr__(self) -> str:
        return f"PairwiseKernel(gamma={float(self.gamma):.3g}, metric={self.metric})"


