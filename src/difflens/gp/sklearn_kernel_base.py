"""The base of difflens's scikit-learn-style kernels: hyperparameters, bounds, ``theta``, calls.

:class:`Kernel` holds what every kernel of :mod:`difflens.gp.sklearn_kernels` shares:
constructor-argument parameters (``get_params``/``set_params``/``clone``), the
:class:`Hyperparameter` list, ``theta`` (logs of the free hyperparameters) and ``bounds``,
NumPy-or-torch calls with an optional ``dK/dtheta`` by forward-mode autodiff, and the
algebra ``+``, ``*``, ``**`` (whose kernels live in
:mod:`~difflens.gp.sklearn_kernel_operators`).
"""

from __future__ import annotations

import copy
import inspect
import warnings
from collections import namedtuple
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

if TYPE_CHECKING:  # pragma: no cover
    from .sklearn_kernel_operators import Exponentiation, Product, Sum

__all__ = ["DEFAULT_BOUNDS", "BoundsWarning", "Hyperparameter", "Kernel", "check_in_bounds", "format_value", "sqdist"]

#: The bounds of every hyperparameter unless given: ``(1e-5, 1e5)``, as in scikit-learn.
DEFAULT_BOUNDS = (1e-5, 1e5)


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
    # the composite kernels are kernels themselves, so they are imported when first used
    def __add__(self, b: Any) -> Sum:
        from .sklearn_kernel_operators import Sum

        return Sum(self, _as_kernel(b))

    def __radd__(self, b: Any) -> Sum:
        from .sklearn_kernel_operators import Sum

        return Sum(_as_kernel(b), self)

    def __mul__(self, b: Any) -> Product:
        from .sklearn_kernel_operators import Product

        return Product(self, _as_kernel(b))

    def __rmul__(self, b: Any) -> Product:
        from .sklearn_kernel_operators import Product

        return Product(_as_kernel(b), self)

    def __pow__(self, b: Any) -> Exponentiation:
        from .sklearn_kernel_operators import Exponentiation

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
            parts.append(f"{h.name}={format_value(v)}")
        return f"{type(self).__name__}({', '.join(parts)})"



def _as_kernel(b: Any) -> Kernel:
    """``b`` itself if it is a kernel, else the constant kernel of value ``b``."""
    if isinstance(b, Kernel):
        return b
    from .sklearn_basic_kernels import ConstantKernel

    return ConstantKernel(b)


def format_value(v: np.ndarray) -> str:
    """A hyperparameter value for a ``repr``: ``0.5`` or ``[0.5, 2]`` (3 significant digits)."""
    if v.ndim == 0:
        return f"{float(v):.3g}"
    return "[" + ", ".join(f"{x:.3g}" for x in v.reshape(-1)) + "]"

