"""Gaussian processes: kernels as modules, exact GP regression with fitted hyperparameters.

>>> import numpy as np
>>> from difflens.gp import GaussianProcess, SquaredExponential
>>> X = np.linspace(0, 5, 20)[:, None]
>>> y = np.sin(X[:, 0])
>>> gp = GaussianProcess(SquaredExponential(), noise_variance=1e-2).fit(X, y)
>>> mean, std = gp.predict(np.array([[2.5]]), return_std=True)
>>> bool(abs(mean[0] - np.sin(2.5)) < 0.1 and std[0] < 0.2)
True

See docs/gp.md.
"""

from .inputs import NotFittedError
from .exact import GaussianProcess
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

__all__ = [
    "RBF", "Brownian", "Constant", "GaussianProcess", "JitterWarning", "Kernel", "Linear", "Matern",
    "NotFittedError", "NotPositiveDefiniteError", "Periodic", "Product", "SquaredExponential", "Sum", "White",
    "cholesky_jittered", "kernel_from_spec", "log_marginal_likelihood",
]
