"""Mapping layer for the scikit-learn test ports: difflens classes under scikit-learn's names.

The ported test files import from here instead of ``sklearn.gaussian_process``;
everything that is scikit-learn's own test machinery (``clone``, the numerical
``_approx_fprime``, the pairwise metrics, ``MiniSeqKernel``) is read from the
installed scikit-learn, so the tests check difflens against scikit-learn's tools.
"""

from sklearn.base import clone  # scikit-learn's clone must work on difflens objects
from sklearn.gaussian_process.kernels import _approx_fprime  # the tests' numerical derivative
from sklearn.gaussian_process.tests._mini_sequence_kernel import (
    MiniSeqKernel,  # string inputs: out of scope
)

from difflens.gp import ConvergenceWarning, GaussianProcessRegressor
from difflens.gp.sklearn_kernels import (
    RBF,
    CompoundKernel,
    ConstantKernel,
    DotProduct,
    Exponentiation,
    ExpSineSquared,
    KernelOperator,
    Matern,
    PairwiseKernel,
    RationalQuadratic,
    WhiteKernel,
)

C = ConstantKernel

__all__ = [
    "RBF", "C", "CompoundKernel", "ConstantKernel", "ConvergenceWarning", "DotProduct", "ExpSineSquared",
    "Exponentiation", "GaussianProcessRegressor", "KernelOperator", "Matern", "MiniSeqKernel", "PairwiseKernel",
    "RationalQuadratic", "WhiteKernel", "_approx_fprime", "clone",
]
