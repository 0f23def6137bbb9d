"""Covariance functions (kernels) as ``torch.nn.Module`` objects.

Every kernel maps inputs ``x1`` of shape ``(N, D)`` and ``x2`` of shape
``(M, D)`` to the covariance matrix ``(N, M)``; a 1-D input of shape ``(N,)``
is read as ``(N, 1)``. ``kernel(x)`` (no ``x2``) is the covariance of a set of
points with itself, the only call in which :class:`White` adds its variance.
``kernel.diag(x)`` is the diagonal of ``kernel(x)`` without the ``N x N`` matrix.

Hyperparameters are positive: each is stored as the parameter ``log_<name>``
(optimised in log space, as scikit-learn does) and read through a property,
``kernel.lengthscale``; assigning ``kernel.lengthscale = 2.0`` sets it. To keep
one fixed while fitting, ``kernel.log_lengthscale.requires_grad_(False)``.

The hyperparameterisations match scikit-learn's kernels exactly:

==========================================  =================================================
difflens                                    scikit-learn
==========================================  =================================================
``SquaredExponential(l, v)``                ``ConstantKernel(v) * RBF(l)``
``Matern(nu, l, v)``                        ``ConstantKernel(v) * Matern(l, nu=nu)``
``Periodic(l, p, v)`` (1-D)                ``ConstantKernel(v) * ExpSineSquared(l, p)``
``Linear(v)``                               ``ConstantKernel(v) * DotProduct(sigma_0=0)``
``Linear(v) + Constant(c)``                 ``ConstantKernel(v) * DotProduct(sqrt(c / v))``
``White(v)``                                ``WhiteKernel(v)``
``Constant(v)``                             ``ConstantKernel(v)``
==========================================  =================================================

``Brownian(v)`` is ``v * min(x, x')`` for ``x, x' >= 0`` (the seed's kernel),
extended to negative inputs as two independent Brownian motions leaving the
origin: ``v * min(|x|, |x'|)`` when ``x`` and ``x'`` have the same sign, else 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from .stationary import stationary_matrix

__all__ = [
    "RBF",
    "Brownian",
    "Constant",
    "Kernel",
    "Linear",
    "Matern",
    "Periodic",
    "Product",
    "SquaredExponential",
    "Sum",
    "White",
    "kernel_from_spec",
]

_DTYPE = torch.float64


def _as_inputs(x: Tensor, name: str = "x") -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (N, D) or (N,), got {type(x).__name__}")
    if x.ndim == 1:
        return x.unsqueeze(-1)
    if x.ndim != 2:
        raise ValueError(f"{name} must have shape (N, D) or (N,), got shape {tuple(x.shape)}")
    return x


def _positive_tensor(value: Any, name: str, vector_ok: bool = False) -> Tensor:
    t = torch.as_tensor(value, dtype=_DTYPE).detach().clone()
    if t.ndim > 1 or (t.ndim == 1 and not vector_ok):
        raise ValueError(f"{name} must be a positive scalar{' or 1-D tensor' if vector_ok else ''}, "
                         f"got shape {tuple(t.shape)}")
    if t.numel() == 0 or not torch.isfinite(t).all() or (t <= 0).any():
        raise ValueError(f"{name} must be finite and > 0, got {t.tolist()}")
    return t


class Kernel(nn.Module):
    """Base class: ``forward(x1, x2=None) -> (N, M)`` and ``diag(x) -> (N,)``.

    Subclasses implement :meth:`_matrix` and :meth:`_diag`; the base class
    checks shapes and input dimension and provides ``+`` and ``*``.
    ``input_dim`` is the number of input dimensions the kernel requires, or
    ``None`` when any will do.
    """

    input_dim: int | None = None
    #: True when the matrix is ``variance`` times a matrix that does not depend on it, so that
    #: a fit can maximise over the variance in closed form (``GaussianProcess(profile_scale=True)``).
    scales_linearly: bool = False

    def _register_positive(self, name: str, value: Any, vector_ok: bool = False) -> None:
        self.register_parameter(f"log_{name}", nn.Parameter(_positive_tensor(value, name, vector_ok).log()))

    def _set_positive(self, name: str, value: Any) -> None:
        raw = getattr(self, f"log_{name}")
        new = _positive_tensor(value, name, vector_ok=raw.ndim == 1)
        if new.shape != raw.shape:
            raise ValueError(f"{name} must have shape {tuple(raw.shape)}, got {tuple(new.shape)}")
        with torch.no_grad():
            raw.copy_(new.log())

    # -- evaluation ------------------------------------------------------------
    def forward(self, x1: Tensor, x2: Tensor | None = None) -> Tensor:
        """The covariance matrix ``(N, M)``; ``x2=None`` means ``x2 = x1`` (training covariance)."""
        x1 = self._check(_as_inputs(x1, "x1"))
        if x2 is not None:
            x2 = self._check(_as_inputs(x2, "x2"))
            if x2.shape[-1] != x1.shape[-1]:
                raise ValueError(f"x1 and x2 must have the same number of input dimensions, "
                                 f"got {x1.shape[-1]} and {x2.shape[-1]}")
        return self._matrix(x1, x2)

    def diag(self, x: Tensor) -> Tensor:
        """The diagonal of ``self(x)``, shape ``(N,)``, without building the matrix."""
        return self._diag(self._check(_as_inputs(x)))

    def _check(self, x: Tensor) -> Tensor:
        dim = self.input_dim
        if dim is not None and x.shape[-1] != dim:
            raise ValueError(f"{type(self).__name__} expects inputs with {dim} dimension(s) "
                             f"(one per lengthscale), got inputs of shape {tuple(x.shape)}")
        return x

    def _matrix(self, x1: Tensor, x2: Tensor | None) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _diag(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- algebra ---------------------------------------------------------------
    def __add__(self, other: Any) -> Sum:
        return Sum(self, _as_kernel(other))

    def __radd__(self, other: Any) -> Sum:
        return Sum(_as_kernel(other), self)

    def __mul__(self, other: Any) -> Product:
        return Product(self, _as_kernel(other))

    def __rmul__(self, other: Any) -> Product:
        return Product(_as_kernel(other), self)

    # -- introspection ---------------------------------------------------------
    def hyperparameters(self) -> dict[str, Tensor]:
        """``{"name": value}`` for every hyperparameter (positive values, not logs), detached."""
        out = {}
        for name, p in self.named_parameters():
            head, _, leaf = name.rpartition(".")
            key = (head + "." if head else "") + leaf.removeprefix("log_")
            out[key] = p.detach().exp()
        return out

    def spec(self) -> dict[str, Any]:
        """A plain description (class name and constructor arguments) to rebuild the kernel."""
        return {"type": type(self).__name__, "args": self._spec_args()}

    def _spec_args(self) -> dict[str, Any]:
        return {k: v.tolist() for k, v in self.hyperparameters().items()}

    def extra_repr(self) -> str:
        """The settings shown inside the module's ``repr``."""
        parts = []
        for k, v in self.hyperparameters().items():
            parts.append(f"{k}={v.item():.4g}" if v.numel() == 1 else f"{k}={[round(x, 4) for x in v.tolist()]}")
        return ", ".join(parts)


def _as_kernel(value: Any) -> Kernel:
    if isinstance(value, Kernel):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return Constant(float(value))
    raise TypeError(f"can only combine a Kernel with another Kernel or a positive number, "
                    f"got {type(value).__name__}")


def _positive_property(name: str, doc: str) -> property:
    return property(lambda self: getattr(self, f"log_{name}").exp(),
                    lambda self, value: self._set_positive(name, value), doc=doc)


class _Stationary(Kernel):
    """Kernels of the scaled distance ``|x - x'| / lengthscale`` times ``variance``."""

    scales_linearly = True

    lengthscale = _positive_property("lengthscale", "Lengthscale(s): a scalar, or (D,) for ARD.")
    variance = _positive_property("variance", "Signal variance (the kernel's value at distance 0).")

    def __init__(self, lengthscale: float | Sequence[float] | Tensor = 1.0, variance: float = 1.0):
        super().__init__()
        self._register_positive("lengthscale", lengthscale, vector_ok=True)
        self._register_positive("variance", variance)
        self.input_dim = self.log_lengthscale.numel() if self.log_lengthscale.ndim == 1 else None

    def _fused(self, x1: Tensor, x2: Tensor | None, kind: str) -> Tensor:
        inv = torch.exp(-self.log_lengthscale).to(x1)
        return stationary_matrix(x1 * inv, None if x2 is None else x2 * inv, self.log_variance, kind)

    def _diag(self, x: Tensor) -> Tensor:
        return self.variance.to(x).expand(x.shape[0])


class SquaredExponential(_Stationary):
    """``variance * exp(-|x - x'|^2 / (2 lengthscale^2))`` (RBF); a (D,) lengthscale is ARD.

    Args:
        lengthscale: positive scalar, or a (D,) tensor/sequence, one per input dimension.
        variance: positive signal variance (default 1).
    """

    def _matrix(self, x1: Tensor, x2: Tensor | None) -> Tensor:
        return self._fused(x1, x2, "se")


RBF = SquaredExponential
"""scikit-learn's name for :class:`SquaredExponential` (the same class)."""


class Matern(_Stationary):
    """Matérn kernel with smoothness ``nu`` in {0.5, 1.5, 2.5}; ``nu=0.5`` is the exponential kernel.

    With ``r = |x - x'| / lengthscale``: ``nu=0.5``: ``v exp(-r)``; ``nu=1.5``:
    ``v (1 + sqrt3 r) exp(-sqrt3 r)``; ``nu=2.5``: ``v (1 + sqrt5 r + 5 r^2 / 3) exp(-sqrt5 r)``.
    """

    def __init__(self, nu: float = 1.5, lengthscale: float | Sequence[float] | Tensor = 1.0,
                 variance: float = 1.0):
        if nu not in (0.5, 1.5, 2.5):
            raise ValueError(f"Matern supports nu in (0.5, 1.5, 2.5), got {nu!r}")
        super().__init__(lengthscale, variance)
        self.nu = float(nu)

    def _matrix(self, x1: Tensor, x2: Tensor | None) -> Tensor:
        return self._fused(x1, x2, {0.5: "m12", 1.5: "m32", 2.5: "m52"}[self.nu])

    def _spec_args(self) -> dict[str, Any]:
        return {"nu": self.nu, **super()._spec_args()}

    def extra_repr(self) -> str:
        """The settings shown inside the module's ``repr``."""
        return f"nu={self.nu}, " + super().extra_repr()


class Periodic(_Stationary):
    """``variance * exp(-2 sum_d sin^2(pi (x_d - x'_d) / period) / lengthscale^2)``.

    In 1-D this is scikit-learn's ExpSineSquared. In D > 1 it is the product of
    1-D periodic kernels (one sine per dimension, as in GPflow), which is
    positive semi-definite; scikit-learn's ExpSineSquared takes the sine of the
    Euclidean distance instead, which is not PSD in general.
    """

    period = _positive_property("period", "Period, in input units.")

    def __init__(self, lengthscale: float = 1.0, period: float = 1.0, variance: float = 1.0):
        super().__init__(_positive_tensor(lengthscale, "lengthscale"), variance)
        self._register_positive("period", period)

    def _sin2(self, x1: Tensor, x2: Tensor | None) -> Tensor:
        # sum_d sin^2(w (a - b) / 2) = D/2 - (cos wa . cos wb + sin wa . sin wb) / 2,  w = 2 pi / period
        w = 2 * math.pi / self.period.to(x1)
        f1 = torch.cat([torch.cos(w * x1), torch.sin(w * x1)], -1)
        f2 = f1 if x2 is None else torch.cat([torch.cos(w * x2), torch.sin(w * x2)], -1)
        s2 = (0.5 * x1.shape[-1] - 0.5 * (f1 @ f2.mT)).clamp_min(0.0)
        if x2 is None:
            s2.diagonal().zero_()
        return s2

    def _matrix(self, x1: Tensor, x2: Tensor | None) -> Tensor:
        s2 = self._sin2(x1, x2)
        return self.variance.to(x1) * torch.exp(-2.0 * s2 / self.lengthscale.to(x1).square())


class Linear(Kernel):
    """``variance * x . x'`` (scikit-learn's DotProduct with ``sigma_0=0``; add a :class:`Constant` for a bias)."""

    scales_linearly = True

    variance = _positive_property("variance", "Scale of the dot product.")

    def __init__(self, variance: float = 1.0):
        super().__init__()
        self._register_positive("variance", variance)

    def _matrix(self, x1: Tensor, x2: Tensor | None) -> Tensor:
        return self.variance.to(x1) * (x1 @ (x1 if x2 is None else x2).mT)

    def _diag(self, x: Tensor) -> Tensor:
        return self.variance.to(x) * x.square().sum(-1)


class Brownian(Kernel):
    """Brownian motion from the origin: ``variance * min(x, x')`` for ``x, x' >= 0`` (1-D inputs only).

    For negative inputs it is ``variance * min(|x|, |x'|)`` when both have the same
    sign and 0 otherwise (two independent motions leaving 0), which keeps it
    positive semi-definite on the whole line. Its variance at ``x = 0`` is 0.
    """

    input_dim = 1
    variance = _positive_property("variance", "Variance growth per unit of input.")
    scales_linearly = True

    def __init__(self, variance: float = 1.0):
        super().__init__()
        self._register_positive("variance", variance)

    def _matrix(self, x1: Tensor, x2: Tensor | None) -> Tensor:
        a = x1.reshape(-1, 1)
        b = a.reshape(1, -1) if x2 is None else x2.reshape(1, -1)
        same_side = (torch.sign(a) * torch.sign(b)) > 0
        k = torch.where(same_side, torch.minimum(a.abs(), b.abs()), torch.zeros((), dtype=a.dtype, device=a.device))
        return self.variance.to(x1) * k

    def _diag(self, x: Tensor) -> Tensor:
        return self.variance.to(x) * x.reshape(-1).abs()


class White(Kernel):
    """Independent noise: ``variance * I`` for ``kernel(x)``, zeros between two different sets.

    ``diag(x)`` is ``variance``, so predictive variances include it, as in
    scikit-learn's WhiteKernel.
    """

    variance = _positive_property("variance", "Noise variance.")

    def __init__(self, variance: float = 1.0):
        super().__init__()
        self._register_positive("variance", variance)

    def _matrix(self, x1: Tensor, x2: Tensor | None) -> Tensor:
        if x2 is not None:
            return x1.new_zeros(x1.shape[0], x2.shape[0])
        return torch.diag_embed(self.variance.to(x1).expand(x1.shape[0]))

    def _diag(self, x: Tensor) -> Tensor:
        return self.variance.to(x).expand(x.shape[0])


class Constant(Kernel):
    """``variance`` everywhere (a random offset shared by all points)."""

    variance = _positive_property("variance", "The constant covariance.")

    def __init__(self, variance: float = 1.0):
        super().__init__()
        self._register_positive("variance", variance)

    def _matrix(self, x1: Tensor, x2: Tensor | None) -> Tensor:
        m = x1.shape[0] if x2 is None else x2.shape[0]
        return self.variance.to(x1).expand(x1.shape[0], m).clone()

    def _diag(self, x: Tensor) -> Tensor:
        return self.variance.to(x).expand(x.shape[0])


class _Combination(Kernel):
    def __init__(self, k1: Kernel, k2: Kernel):
        super().__init__()
        self.k1, self.k2 = _as_kernel(k1), _as_kernel(k2)
        d1, d2 = k1.input_dim, k2.input_dim
        if d1 is not None and d2 is not None and d1 != d2:
            raise ValueError(f"cannot combine kernels for {d1}-D and {d2}-D inputs")
        self.input_dim = d1 if d1 is not None else d2

    def _check(self, x: Tensor) -> Tensor:
        self.k1._check(x)
        self.k2._check(x)
        return x

    def spec(self) -> dict[str, Any]:
        return {"type": type(self).__name__, "args": {}, "children": [self.k1.spec(), self.k2.spec()]}

    def extra_repr(self) -> str:
        return ""


class Sum(_Combination):
    """``k1 + k2`` (also written ``k1 + k2``)."""

    def _matrix(self, x1: Tensor, x2: Tensor | None) -> Tensor:
        return self.k1._matrix(x1, x2) + self.k2._matrix(x1, x2)

    def _diag(self, x: Tensor) -> Tensor:
        return self.k1._diag(x) + self.k2._diag(x)


class Product(_Combination):
    """``k1 * k2`` elementwise (also written ``k1 * k2``)."""

    def _matrix(self, x1: Tensor, x2: Tensor | None) -> Tensor:
        return self.k1._matrix(x1, x2) * self.k2._matrix(x1, x2)

    def _diag(self, x: Tensor) -> Tensor:
        return self.k1._diag(x) * self.k2._diag(x)


_KERNELS = {c.__name__: c for c in (SquaredExponential, Matern, Periodic, Linear, Brownian, White,
                                      Constant, Sum, Product)}


def kernel_from_spec(spec: dict[str, Any]) -> Kernel:
    """Rebuild a kernel from :meth:`Kernel.spec` (hyperparameter values included)."""
    try:
        cls = _KERNELS[spec["type"]]
    except (KeyError, TypeError):
        raise ValueError(f"not a kernel spec: {spec!r}; known types: {sorted(_KERNELS)}") from None
    if "children" in spec:
        return cls(*(kernel_from_spec(c) for c in spec["children"]))
    return cls(**spec["args"])
