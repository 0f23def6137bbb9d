"""scikit-learn's kernel compositions: ``k1 + k2`` (:class:`Sum`), ``k1 * k2`` (:class:`Product`),
``k ** p`` (:class:`Exponentiation`) and :class:`CompoundKernel` (several kernels side by side).

Their hyperparameters are their children's, prefixed ``k1__``/``k2__``/``kernel__``; a
constant times an RBF or Matérn kernel is evaluated in one fused pass.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from .sklearn_basic_kernels import RBF, ConstantKernel
from .sklearn_kernel_base import Hyperparameter, Kernel

__all__ = ["CompoundKernel", "Exponentiation", "KernelOperator", "Product", "Sum"]


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
