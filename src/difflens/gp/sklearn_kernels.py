"""Kernels with scikit-learn's names, parameters and conventions, computed in torch.

These are the kernels of :class:`~difflens.gp.GaussianProcessRegressor`. Each
is a plain object (not a ``torch.nn.Module``) whose hyperparameters are
constructor arguments with bounds, exactly as in ``sklearn.gaussian_process.kernels``:

- ``RBF(length_scale=1.0, length_scale_bounds=(1e-5, 1e5))`` (a (D,) ``length_scale`` is ARD),
- ``Matern(length_scale, length_scale_bounds, nu=1.5)`` for any ``nu > 0`` (``inf`` is the RBF),
- ``RationalQuadratic(length_scale, alpha, ...)``, ``ExpSineSquared(length_scale, periodicity, ...)``,
- ``DotProduct(sigma_0)``, ``WhiteKernel(noise_level)``, ``ConstantKernel(constant_value)``,
- ``PairwiseKernel(gamma, metric)``, ``CompoundKernel(kernels)``,
- ``k1 + k2`` (:class:`Sum`), ``k1 * k2`` (:class:`Product`), ``k ** p`` (:class:`Exponentiation`).

A bound is a ``(low, high)`` pair, one pair per element of a vector
hyperparameter, or ``"fixed"``. ``theta`` is the vector of the logs of the
free (non-fixed) hyperparameters, in alphabetical order of their names
(children's names prefixed ``k1__``, ``k2__``, ``kernel__``); ``bounds`` is the
``(n_dims, 2)`` array of their log-bounds. ``kernel(X, Y=None, eval_gradient=False)``
returns NumPy for NumPy input and a tensor for tensor input; with
``eval_gradient`` it also returns ``dK/dtheta`` of shape ``(N, N, n_dims)``,
computed by forward-mode automatic differentiation of the same torch code.

>>> import numpy as np
>>> k = 2.0 * RBF(length_scale=0.5)
>>> k.theta.round(4).tolist(), k.hyperparameters[1].name
([0.6931, -0.6931], 'k2__length_scale')
>>> K, dK = k(np.zeros((3, 1)), eval_gradient=True)
>>> K.shape, dK.shape
((3, 3), (3, 3, 2))
"""

from __future__ import annotations

import copy
import inspect
import math
import warnings
from collections import namedtuple
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .bessel import matern_profile
from .stationary import stationary_matrix

__all__ = [
    "RBF",
    "BoundsWarning",
    "CompoundKernel",
    "ConstantKernel",
    "DotProduct",
    "ExpSineSquared",
    "Exponentiation",
    "Hyperparameter",
    "Kernel",
    "KernelOperator",
    "Matern",
    "PairwiseKernel",
    "Product",
    "RationalQuadratic",
    "Sum",
    "WhiteKernel",
    "check_in_bounds",
]

_DEFAULT_BOUNDS = (1e-5, 1e5)


class Hyperparameter(namedtuple("Hyperparameter", ("name", "value_type", "bounds", "n_elements", "fixed"))):
    """One hyperparameter: ``name``, ``value_type`` ("numeric"), ``bounds`` ((n_elements, 2) array
    or "fixed"), ``n_elements`` and ``fixed``, as scikit-learn's ``Hyperparameter``."""

    __slots__ = ()

    def __new__(cls, name: str, value_type: str, bounds: Any, n_elements: int = 1, fixed: bool | None = None):
        if not isinstance(bounds, str) or bounds != "fixed":
            bounds = np.atleast_2d(np.asarray(bounds, dtype=float))
            if n_elements > 1 and bounds.shape[0] == 1:
                bounds = np.repeat(bounds, n_elements, 0)
            elif n_elements > 1 and bounds.shape[0] != n_elements:
                raise ValueError(f"bounds of {name} must have one (low, high) pair or {n_elements} pairs "
                                 f"(one per element), got {bounds.shape[0]}")
        if fixed is None:
            fixed = isinstance(bounds, str) and bounds == "fixed"
        return super().__new__(cls, name, value_type, bounds, n_elements, fixed)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Hyperparameter) and self.name == other.name
                and self.value_type == other.value_type and np.all(self.bounds == other.bounds)
                and self.n_elements == other.n_elements and self.fixed == other.fixed)

    __hash__ = None  # type: ignore[assignment]


def _values_equal(a: Any, b: Any) -> bool:
    if a is None or b is None or isinstance(a, dict) or isinstance(b, dict):
        return a == b
    if isinstance(a, Kernel) or isinstance(b, Kernel):
        return a == b
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    try:
        return bool(np.array_equal(np.asarray(a, dtype=float), np.asarray(b, dtype=float)))
    except (TypeError, ValueError):
        return a == b


def _to_tensor(X: Any, name: str = "X") -> Tensor:
    if isinstance(X, Tensor):
        t = X
    else:
        arr = np.asarray(X)
        if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
            raise TypeError(f"{name} must be a numeric array of shape (N, D), got dtype {arr.dtype} "
                            "(structured inputs such as strings are not supported)")
        t = torch.from_numpy(np.array(arr, dtype=np.float64))
    if not t.is_floating_point():
        t = t.to(torch.float64)
    if t.ndim == 1:  # one sample, as scikit-learn's kernels read a 1-D input
        t = t.unsqueeze(0)
    if t.ndim != 2:
        raise ValueError(f"{name} must have shape (N, D) (a 1-D input is one sample), got shape {tuple(t.shape)}")
    return t


def sqdist(a: Tensor, b: Tensor | None) -> Tensor:
    """Squared Euclidean distances ``(N, M)`` from exact differences (differentiable, forward-AD safe)."""
    b = a if b is None else b
    if a.shape[0] * b.shape[0] * a.shape[1] <= 2 ** 22:
        return (a.unsqueeze(1) - b.unsqueeze(0)).square().sum(-1)
    shift = a.mean(0, keepdim=True)
    a, b = a - shift, b - shift
    d2 = a.square().sum(-1, keepdim=True) + b.square().sum(-1).unsqueeze(0) - 2.0 * (a @ b.mT)
    return d2.clamp_min(0.0)


def _safe_sqrt(d2: Tensor) -> Tensor:
    """``sqrt(d2)`` with a zero (not NaN) derivative where ``d2 == 0``."""
    pos = d2 > 0
    return torch.where(pos, torch.where(pos, d2, torch.ones_like(d2)).sqrt(), torch.zeros_like(d2))


class BoundsWarning(UserWarning):
    """A hyperparameter's initial value lies outside its bounds (the optimiser will start from the bound)."""


def check_in_bounds(kernel: Kernel) -> None:
    """Warn (:class:`BoundsWarning`) for each hyperparameter of ``kernel`` whose value lies outside its bounds."""
    for h in kernel.hyperparameters:
        if h.fixed:
            continue
        value = np.ravel(np.asarray(kernel._get_hp(h.name), dtype=float))
        if h.bounds.shape != (h.n_elements, 2) or value.size not in (1, h.n_elements):
            continue  # malformed bounds are reported where they are used
        for dim, (v, (lo, hi)) in enumerate(zip(np.broadcast_to(value, (h.n_elements,)), h.bounds)):
            if not lo <= v <= hi:
                where = f" (element {dim})" if h.n_elements > 1 else ""
                warnings.warn(f"{type(kernel).__name__}: the initial value {v:g} of hyperparameter {h.name!r}{where} "
                              f"lies outside its bounds ({lo:g}, {hi:g}); fitting will start from the nearest bound",
                              BoundsWarning, stacklevel=3)


class Kernel:
    """Base class: hyperparameters, ``theta``/``bounds``, parameters, algebra and NumPy/torch calls.

    A subclass declares ``_hyper = (("name", vector_ok), ...)`` and implements
    ``_eval(X, Y, p)``: the kernel matrix as a torch expression of ``X`` (N, D),
    ``Y`` (M, D) or None (then ``Y = X`` and noise terms count), and ``p``, a
    dict of hyperparameter values as tensors (differentiable in ``theta``).
    """

    _hyper: tuple[tuple[str, bool], ...] = ()

    # -- parameters ---------------------------------------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p.name for p in sig.parameters.values() if p.name != "self" and p.kind != p.VAR_KEYWORD]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Constructor arguments (and, with ``deep``, those of child kernels as ``child__name``)."""
        out = {name: getattr(self, name) for name in self._param_names()}
        if deep:
            for name, value in list(out.items()):
                if isinstance(value, Kernel):
                    out.update({f"{name}__{k}": v for k, v in value.get_params(True).items()})
        return out

    def set_params(self, **params: Any) -> Kernel:
        """Set constructor arguments (``child__name`` reaches into a child kernel); returns ``self``."""
        if not params:
            return self
        valid = self.get_params(deep=True)
        for key, value in params.items():
            name, sep, sub = key.partition("__")
            if name not in valid:
                raise ValueError(f"invalid parameter {name!r} for kernel {self}; valid: {sorted(valid)}")
            if sep:
                valid[name].set_params(**{sub: value})
            else:
                setattr(self, key, value)
        return self

    def clone(self) -> Kernel:
        """A copy with copied hyperparameter values (children cloned too)."""
        params = {k: (v.clone() if isinstance(v, Kernel) else copy.deepcopy(v))
                  for k, v in self.get_params(deep=False).items()}
        with warnings.catch_warnings():  # the original already warned about its bounds
            warnings.simplefilter("ignore", BoundsWarning)
            return type(self)(**params)

    def clone_with_theta(self, theta: Any) -> Kernel:
        """A clone whose free hyperparameters are ``exp(theta)``."""
        k = self.clone()
        k.theta = theta
        return k

    # -- hyperparameters ------------------------------------------------------------
    def _hp(self, name: str, vector_ok: bool) -> Hyperparameter:
        value = getattr(self, name)
        n = len(value) if vector_ok and np.iterable(value) and len(value) > 1 else 1
        return Hyperparameter(name, "numeric", getattr(self, f"{name}_bounds"), n)

    @property
    def hyperparameters(self) -> list[Hyperparameter]:
        """All hyperparameters (fixed ones included), in alphabetical order of their names."""
        return sorted((self._hp(n, v) for n, v in self._hyper), key=lambda h: h.name)

    @property
    def theta(self) -> np.ndarray:
        """Logs of the free hyperparameters, shape ``(n_dims,)``."""
        vals = [np.ravel(np.asarray(self._get_hp(h.name), dtype=float))
                for h in self.hyperparameters if not h.fixed]
        return np.log(np.hstack(vals)) if vals else np.array([])

    @theta.setter
    def theta(self, theta: Any) -> None:
        theta = np.asarray(theta, dtype=float).reshape(-1)
        i = 0
        for h in self.hyperparameters:
            if h.fixed:
                continue
            if i + h.n_elements > theta.shape[0]:
                raise ValueError(f"theta has {theta.shape[0]} entries but kernel {self} has {self.n_dims} "
                                 "free hyperparameter values")
            value = np.exp(theta[i:i + h.n_elements]) if h.n_elements > 1 else np.exp(theta[i])
            self._set_hp(h.name, value)
            i += h.n_elements
        if i != theta.shape[0]:
            raise ValueError(f"theta has {theta.shape[0]} entries but kernel {self} has {i} free "
                             "hyperparameter values")

    def _get_hp(self, name: str) -> Any:
        return getattr(self, name)

    def _set_hp(self, name: str, value: Any) -> None:
        setattr(self, name, value)

    @property
    def bounds(self) -> np.ndarray:
        """Log-bounds of ``theta``, shape ``(n_dims, 2)``."""
        rows = [h.bounds for h in self.hyperparameters if not h.fixed]
        if not rows:
            return np.array([])
        with np.errstate(divide="ignore"):
            return np.log(np.vstack(rows))

    @property
    def n_dims(self) -> int:
        """Number of entries of ``theta``."""
        return int(self.theta.shape[0])

    def is_stationary(self) -> bool:
        """Whether ``k(x, y)`` depends on ``x - y`` only."""
        return True

    @property
    def requires_vector_input(self) -> bool:
        """Whether the kernel needs (N, D) numeric inputs (True for all but the constant and white ones)."""
        return True

    # -- evaluation -----------------------------------------------------------------
    def _theta_dict(self, theta: Tensor) -> dict[str, Tensor]:
        """Hyperparameter values as tensors: free ones ``exp(theta[...])``, fixed ones constants."""
        out, i = {}, 0
        for h in self.hyperparameters:
            if h.fixed:
                out[h.name] = torch.as_tensor(np.asarray(self._get_hp(h.name), dtype=float),
                                              dtype=theta.dtype, device=theta.device)
            else:
                out[h.name] = theta[i:i + h.n_elements].exp()
                if h.n_elements == 1 and np.ndim(self._get_hp(h.name)) == 0:
                    out[h.name] = out[h.name][0]
                i += h.n_elements
        return out

    def evaluate(self, X: Tensor, Y: Tensor | None = None, theta: Tensor | None = None,
                 fused: bool = True) -> Tensor:
        """The kernel matrix as a torch expression of ``theta`` (default: the current ``self.theta``).

        ``X`` (N, D), ``Y`` (M, D) or None (``Y = X``, noise terms included).
        ``fused`` allows the fused squared-exponential/Matérn operator (reverse-mode only).
        """
        if theta is None:
            theta = torch.as_tensor(self.theta, dtype=X.dtype, device=X.device)
        self._check_dims(X)
        if Y is not None and Y.shape[1] != X.shape[1]:
            raise ValueError(f"X and Y must have the same number of input dimensions, got {X.shape[1]} "
                             f"and {Y.shape[1]}")
        return self._eval(X, Y, theta, fused)

    def _eval(self, X: Tensor, Y: Tensor | None, theta: Tensor, fused: bool) -> Tensor:
        return self._matrix(X, Y, self._theta_dict(theta), fused)

    def evaluate_split(self, X: Tensor, theta: Tensor) -> tuple[Tensor | None, Tensor | None]:
        """``k(X)`` as ``(K, noise)`` with ``K + noise * I == k(X)``: white-noise terms of sums come back as
        the scalar ``noise`` (None if there are none) instead of a dense diagonal; ``K`` is None when
        nothing else remains. Used by the likelihood, where a scalar shift costs nothing."""
        self._check_dims(X)
        return self._eval_split(X, theta)

    def _eval_split(self, X: Tensor, theta: Tensor) -> tuple[Tensor | None, Tensor | None]:
        return self._eval(X, None, theta, True), None

    def _matrix(self, X: Tensor, Y: Tensor | None, p: dict[str, Tensor], fused: bool) -> Tensor:
        raise NotImplementedError  # pragma: no cover - abstract

    def _check_dims(self, X: Tensor) -> None:
        """Raise if ``X`` has the wrong number of input dimensions for a vector hyperparameter."""

    def __call__(self, X: Any, Y: Any = None, eval_gradient: bool = False):
        """``K(X, Y)`` (N, M); with ``eval_gradient`` (only for ``Y=None``) also ``dK/dtheta`` (N, N, n_dims).

        A 1-D ``X`` is one sample; two 1-D points ``X``, ``Y`` give the scalar ``k(X, Y)``.
        NumPy in, NumPy out; tensor in, tensor out (float64 unless ``X`` is another float type).
        """
        numpy_out = not isinstance(X, Tensor)
        if Y is not None and np.ndim(X) == 1 and np.ndim(Y) == 1 and not eval_gradient:
            k = self(np.atleast_2d(X) if numpy_out else X[None], np.atleast_2d(Y) if numpy_out else Y[None])
            return k[0, 0]  # two single points: a scalar, as metric callables return
        Xt = _to_tensor(X, "X")
        Yt = None if Y is None else _to_tensor(Y, "Y").to(Xt)
        if eval_gradient and Y is not None:
            raise ValueError("Gradient can only be evaluated when Y is None.")
        theta = torch.as_tensor(self.theta, dtype=Xt.dtype, device=Xt.device)
        with torch.no_grad():
            if not eval_gradient:
                K = self.evaluate(Xt, Yt, theta)
                return K.cpu().numpy() if numpy_out else K
            K, dK = self._forward_jacobian(Xt, theta)
        return (K.cpu().numpy(), dK.cpu().numpy()) if numpy_out else (K, dK)

    def _forward_jacobian(self, X: Tensor, theta: Tensor) -> tuple[Tensor, Tensor]:
        import torch.autograd.forward_ad as fwAD

        P = theta.shape[0]
        cols = []
        K = None
        for j in range(max(P, 1)):
            if P == 0:
                K = self.evaluate(X, None, theta, fused=False)
                break
            tangent = torch.zeros_like(theta)
            tangent[j] = 1.0
            with fwAD.dual_level():
                dual = fwAD.make_dual(theta, tangent)
                out = fwAD.unpack_dual(self.evaluate(X, None, dual, fused=False))
                K = out.primal.clone()
                cols.append(torch.zeros_like(K) if out.tangent is None else out.tangent.clone())
        dK = torch.stack(cols, -1) if cols else K.new_zeros(K.shape + (0,))
        return K, dK

    def diag(self, X: Any):
        """The diagonal of ``self(X)``, shape (N,), without the matrix where possible."""
        numpy_out = not isinstance(X, Tensor)
        Xt = _to_tensor(X, "X")
        with torch.no_grad():
            d = self._diag(Xt)
        return d.cpu().numpy() if numpy_out else d

    def _diag(self, X: Tensor) -> Tensor:
        theta = torch.as_tensor(self.theta, dtype=X.dtype, device=X.device)
        self._check_dims(X)
        p = self._theta_dict(theta)
        return self._diag_t(X, p)

    def _diag_t(self, X: Tensor, p: dict[str, Tensor]) -> Tensor:
        return torch.ones(X.shape[0], dtype=X.dtype, device=X.device)

    # -- algebra --------------------------------------------------------------------
    def __add__(self, b: Any) -> Sum:
        return Sum(self, b if isinstance(b, Kernel) else ConstantKernel(b))

    def __radd__(self, b: Any) -> Sum:
        return Sum(b if isinstance(b, Kernel) else ConstantKernel(b), self)

    def __mul__(self, b: Any) -> Product:
        return Product(self, b if isinstance(b, Kernel) else ConstantKernel(b))

    def __rmul__(self, b: Any) -> Product:
        return Product(b if isinstance(b, Kernel) else ConstantKernel(b), self)

    def __pow__(self, b: Any) -> Exponentiation:
        return Exponentiation(self, b)

    def __eq__(self, other: object) -> bool:
        if type(self) is not type(other):
            return False
        a, b = self.get_params(deep=False), other.get_params(deep=False)
        return a.keys() == b.keys() and all(_values_equal(a[k], b[k]) for k in a)

    def __hash__(self) -> int:  # equal kernels have equal reprs (the converse need not hold)
        return hash((type(self).__name__, repr(self)))

    def __repr__(self) -> str:
        parts = []
        for h in self.hyperparameters:
            v = np.asarray(self._get_hp(h.name), dtype=float)
            parts.append(f"{h.name}={_fmt(v)}")
        return f"{type(self).__name__}({', '.join(parts)})"


def _fmt(v: np.ndarray) -> str:
    if v.ndim == 0:
        return f"{float(v):.3g}"
    return "[" + ", ".join(f"{x:.3g}" for x in v.reshape(-1)) + "]"


def _check_bounds_type(name: str, bounds: Any) -> None:
    if isinstance(bounds, str) and bounds != "fixed":
        raise ValueError(f"{name}_bounds must be a (low, high) pair or 'fixed', got {bounds!r}")


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

    def __init__(self, constant_value: float = 1.0, constant_value_bounds: Any = _DEFAULT_BOUNDS):
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

    def __init__(self, noise_level: float = 1.0, noise_level_bounds: Any = _DEFAULT_BOUNDS):
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

    def __init__(self, length_scale: Any = 1.0, length_scale_bounds: Any = _DEFAULT_BOUNDS):
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
        return f"RBF(length_scale={_fmt(np.asarray(self.length_scale, dtype=float))})"


class Matern(RBF):
    """Matérn kernel of smoothness ``nu > 0``: ``2^(1-nu)/Gamma(nu) z^nu K_nu(z)``, ``z = sqrt(2 nu) r / l``.

    ``nu`` in {0.5, 1.5, 2.5} uses the closed forms, ``nu = inf`` is the RBF;
    any other ``nu`` evaluates the modified Bessel function ``K_nu``
    (:func:`difflens.gp.bessel.matern_profile`, float64 CPU through SciPy).
    """

    def __init__(self, length_scale: Any = 1.0, length_scale_bounds: Any = _DEFAULT_BOUNDS, nu: float = 1.5):
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
        return f"Matern(length_scale={_fmt(np.asarray(self.length_scale, dtype=float))}, nu={float(self.nu):.3g})"


class RationalQuadratic(Kernel):
    """``(1 + |x - y|^2 / (2 alpha length_scale^2))^(-alpha)`` (isotropic only)."""

    _hyper = (("alpha", False), ("length_scale", False))

    def __init__(self, length_scale: float = 1.0, alpha: float = 1.0, length_scale_bounds: Any = _DEFAULT_BOUNDS,
                 alpha_bounds: Any = _DEFAULT_BOUNDS):
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
                 length_scale_bounds: Any = _DEFAULT_BOUNDS, periodicity_bounds: Any = _DEFAULT_BOUNDS):
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

    def __init__(self, sigma_0: float = 1.0, sigma_0_bounds: Any = _DEFAULT_BOUNDS):
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

    def __init__(self, gamma: float = 1.0, gamma_bounds: Any = _DEFAULT_BOUNDS, metric: str = "linear",
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


# --------------------------------------------------------------------------- composites
class KernelOperator(Kernel):
    """Base of :class:`Sum` and :class:`Product`: hyperparameters of ``k1`` then ``k2`` (prefixed)."""

    def __init__(self, k1: Kernel, k2: Kernel):
        self.k1 = k1
        self.k2 = k2

    @property
    def hyperparameters(self) -> list[Hyperparameter]:
        out = []
        for prefix, k in (("k1__", self.k1), ("k2__", self.k2)):
            out += [Hyperparameter(prefix + h.name, h.value_type, h.bounds, h.n_elements, h.fixed)
                    for h in k.hyperparameters]
        return out

    @property
    def theta(self) -> np.ndarray:
        return np.append(self.k1.theta, self.k2.theta)

    @theta.setter
    def theta(self, theta: Any) -> None:
        theta = np.asarray(theta, dtype=float).reshape(-1)
        n1 = self.k1.n_dims
        if theta.shape[0] != n1 + self.k2.n_dims:
            raise ValueError(f"theta has {theta.shape[0]} entries but kernel {self} has "
                             f"{n1 + self.k2.n_dims} free hyperparameter values")
        self.k1.theta, self.k2.theta = theta[:n1], theta[n1:]

    @property
    def bounds(self) -> np.ndarray:
        b = [x for x in (self.k1.bounds, self.k2.bounds) if x.size]
        return np.vstack(b) if b else np.array([])

    def is_stationary(self) -> bool:
        return self.k1.is_stationary() and self.k2.is_stationary()

    @property
    def requires_vector_input(self) -> bool:
        return self.k1.requires_vector_input or self.k2.requires_vector_input

    def _check_dims(self, X: Tensor) -> None:
        self.k1._check_dims(X)
        self.k2._check_dims(X)

    def _parts(self, X, Y, theta, fused):
        n1 = self.k1.n_dims
        return self.k1._eval(X, Y, theta[:n1], fused), self.k2._eval(X, Y, theta[n1:], fused)

    def _diag(self, X: Tensor) -> Tensor:
        return self._combine(self.k1._diag(X), self.k2._diag(X))


class Sum(KernelOperator):
    """``k1(x, y) + k2(x, y)``."""

    @staticmethod
    def _combine(a: Tensor, b: Tensor) -> Tensor:
        return a + b

    def _eval(self, X, Y, theta, fused):
        return self._combine(*self._parts(X, Y, theta, fused))

    def _eval_split(self, X, theta):
        n1 = self.k1.n_dims
        (K1, n1_), (K2, n2_) = self.k1._eval_split(X, theta[:n1]), self.k2._eval_split(X, theta[n1:])
        K = K2 if K1 is None else (K1 if K2 is None else K1 + K2)
        noise = n2_ if n1_ is None else (n1_ if n2_ is None else n1_ + n2_)
        return K, noise

    def __repr__(self) -> str:
        return f"{self.k1!r} + {self.k2!r}"


class Product(KernelOperator):
    """``k1(x, y) * k2(x, y)``."""

    @staticmethod
    def _combine(a: Tensor, b: Tensor) -> Tensor:
        return a * b

    def _eval(self, X, Y, theta, fused):
        n1 = self.k1.n_dims
        for c, other, th_c, th_o in ((self.k1, self.k2, theta[:n1], theta[n1:]),
                                     (self.k2, self.k1, theta[n1:], theta[:n1])):
            # constant * kernel: one scaled pass (none at all for the fused stationary kernels)
            if isinstance(c, ConstantKernel) and type(c)._matrix is ConstantKernel._matrix:
                log_c = c._theta_dict(th_c)["constant_value"].to(X).reshape(()).log()
                if isinstance(other, RBF):
                    return other._eval_times(X, Y, th_o, fused, log_c)
                return log_c.exp() * other._eval(X, Y, th_o, fused)
        return self._combine(*self._parts(X, Y, theta, fused))

    def __repr__(self) -> str:
        return f"{self.k1!r} * {self.k2!r}"


class Exponentiation(Kernel):
    """``kernel(x, y) ** exponent`` (``exponent`` is not a hyperparameter)."""

    def __init__(self, kernel: Kernel, exponent: float):
        self.kernel = kernel
        self.exponent = exponent

    @property
    def hyperparameters(self) -> list[Hyperparameter]:
        return [Hyperparameter("kernel__" + h.name, h.value_type, h.bounds, h.n_elements, h.fixed)
                for h in self.kernel.hyperparameters]

    @property
    def theta(self) -> np.ndarray:
        return self.kernel.theta

    @theta.setter
    def theta(self, theta: Any) -> None:
        self.kernel.theta = theta

    @property
    def bounds(self) -> np.ndarray:
        return self.kernel.bounds

    def is_stationary(self) -> bool:
        return self.kernel.is_stationary()

    @property
    def requires_vector_input(self) -> bool:
        return self.kernel.requires_vector_input

    def _check_dims(self, X: Tensor) -> None:
        self.kernel._check_dims(X)

    def _eval(self, X, Y, theta, fused):
        return self.kernel._eval(X, Y, theta, fused) ** self.exponent

    def _diag(self, X: Tensor) -> Tensor:
        return self.kernel._diag(X) ** self.exponent

    def __repr__(self) -> str:
        return f"{self.kernel!r} ** {self.exponent}"


class CompoundKernel(Kernel):
    """Several kernels side by side: ``k(X)`` has shape ``(N, N, n_kernels)``; ``theta`` concatenates theirs."""

    def __init__(self, kernels: list[Kernel]):
        self.kernels = kernels

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {"kernels": self.kernels}

    @property
    def hyperparameters(self) -> list[Hyperparameter]:
        return [h for k in self.kernels for h in k.hyperparameters]

    @property
    def theta(self) -> np.ndarray:
        return np.hstack([k.theta for k in self.kernels])

    @theta.setter
    def theta(self, theta: Any) -> None:
        theta, i = np.asarray(theta, dtype=float).reshape(-1), 0
        for k in self.kernels:
            n = k.n_dims
            k.theta = theta[i:i + n]
            i += n

    @property
    def bounds(self) -> np.ndarray:
        b = [k.bounds for k in self.kernels if k.bounds.size]
        return np.vstack(b) if b else np.array([])

    def is_stationary(self) -> bool:
        return all(k.is_stationary() for k in self.kernels)

    @property
    def requires_vector_input(self) -> bool:
        return any(k.requires_vector_input for k in self.kernels)

    def clone(self) -> CompoundKernel:
        return CompoundKernel([k.clone() for k in self.kernels])

    def _eval(self, X, Y, theta, fused):
        out, i = [], 0
        for k in self.kernels:
            n = k.n_dims
            out.append(k._eval(X, Y, theta[i:i + n], fused))
            i += n
        return torch.stack(out, -1)

    def _diag(self, X: Tensor) -> Tensor:
        return torch.stack([k._diag(X) for k in self.kernels], -1)

    def _forward_jacobian(self, X, theta):
        parts = [k._forward_jacobian(X, torch.as_tensor(k.theta, dtype=X.dtype)) for k in self.kernels]
        K = torch.stack([p[0] for p in parts], -1)
        dK = K.new_zeros(K.shape + (sum(p[1].shape[-1] for p in parts),))
        i = 0
        for j, (_, g) in enumerate(parts):
            dK[:, :, j, i:i + g.shape[-1]] = g
            i += g.shape[-1]
        return K, dK

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and len(self.kernels) == len(other.kernels) and all(
            a == b for a, b in zip(self.kernels, other.kernels))

    def __repr__(self) -> str:
        return f"CompoundKernel([{', '.join(map(repr, self.kernels))}])"
