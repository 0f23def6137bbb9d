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

The kernels are defined in three modules and all importable from here:
:mod:`~difflens.gp.sklearn_kernel_base` (``Kernel``, ``Hyperparameter``, bounds),
:mod:`~difflens.gp.sklearn_basic_kernels` (the elementary kernels) and
:mod:`~difflens.gp.sklearn_kernel_operators` (``Sum``, ``Product``, ``Exponentiation``,
``CompoundKernel``).
"""

from .sklearn_basic_kernels import (
    RBF,
    ConstantKernel,
    DotProduct,
    ExpSineSquared,
    Matern,
    PairwiseKernel,
    RationalQuadratic,
    WhiteKernel,
)
from .sklearn_kernel_base import BoundsWarning, Hyperparameter, Kernel, check_in_bounds
from .sklearn_kernel_operators import CompoundKernel, Exponentiation, KernelOperator, Product, Sum

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
