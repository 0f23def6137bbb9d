"""Gaussian processes: kernels as modules, exact GP regression with fitted hyperparameters.

>>> import numpy as np
>>> from difflens.gp import GaussianProcess, SquaredExponential
>>> X = np.linspace(0, 5, 20)[:, None]
>>> y = np.sin(X[:, 0])
>>> gp = GaussianProcess(SquaredExponential(), noise_variance=1e-2).fit(X, y)
>>> mean, std = gp.predict(np.array([[2.5]]), return_std=True)
>>> bool(abs(mean[0] - np.sin(2.5)) < 0.1 and std[0] < 0.2)
True

Two front ends share the linear algebra: :class:`GaussianProcess` (a
``torch.nn.Module`` owning and fitting its kernel, with the kernels above) and
:class:`GaussianProcessRegressor` (scikit-learn's estimator conventions, with the
kernels of :mod:`difflens.gp.sklearn_kernels`, whose ``RBF``/``Matern``/``Sum``/
``Product`` take scikit-learn's arguments and so live in that module).

See docs/gp.md.
"""

from .exact import GaussianProcess
from .inputs import NotFittedError
from .kernels import (
    RBF,
    Brownian,
    Constant,
    Kernel,
    Linear,
    Matern,
    Periodic,
    Product,
    SquaredExponential,
    Sum,
    White,
    kernel_from_spec,
)
from .linalg import (
    JitterWarning,
    NotPositiveDefiniteError,
    cholesky_jittered,
    log_marginal_likelihood,
)
from .regressor import ConvergenceWarning, GaussianProcessRegressor, KernelNotPositiveDefiniteError
from .sklearn_kernels import (
    CompoundKernel,
    ConstantKernel,
    DotProduct,
    Exponentiation,
    ExpSineSquared,
    Hyperparameter,
    PairwiseKernel,
    RationalQuadratic,
    WhiteKernel,
)

__all__ = [
    "RBF",
    "Brownian",
    "CompoundKernel",
    "Constant",
    "ConstantKernel",
    "ConvergenceWarning",
    "DotProduct",
    "ExpSineSquared",
    "Exponentiation",
    "GaussianProcess",
    "GaussianProcessRegressor",
    "Hyperparameter",
    "JitterWarning",
    "Kernel",
    "KernelNotPositiveDefiniteError",
    "Linear",
    "Matern",
    "NotFittedError",
    "NotPositiveDefiniteError",
    "PairwiseKernel",
    "Periodic",
    "Product",
    "RationalQuadratic",
    "SquaredExponential",
    "Sum",
    "White",
    "WhiteKernel",
    "cholesky_jittered",
    "kernel_from_spec",
    "log_marginal_likelihood",
]
