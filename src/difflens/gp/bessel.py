"""The Matérn correlation for any smoothness, differentiable in reverse and forward mode.

``matern_profile(z, nu) = 2^(1 - nu) / Gamma(nu) * z^nu * K_nu(z)`` (1 at ``z = 0``),
with ``K_nu`` the modified Bessel function of the second kind. torch has no
``K_nu`` of arbitrary order, so the values come from ``scipy.special.kv`` on
the CPU in float64 (tensors on other devices are copied there and back); the
derivative is exact, from ``d/dz [z^nu K_nu(z)] = -z^nu K_(nu-1)(z)``:

    d profile / dz = -2^(1 - nu) / Gamma(nu) * z^nu * K_(nu-1)(z)   (0 at z = 0).

>>> import torch
>>> z = torch.tensor([0.0, 0.5, 2.0], dtype=torch.float64)
>>> torch.allclose(matern_profile(z, 0.5), torch.exp(-z))
True
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

__all__ = ["matern_profile"]


def _numpy(z: Tensor) -> np.ndarray:
    return z.detach().to("cpu", torch.float64).numpy()


def _value(z: np.ndarray, nu: float) -> np.ndarray:
    from scipy.special import gamma, kv

    out = np.ones_like(z)
    pos = z > 0
    zp = z[pos]
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        v = (2.0 ** (1.0 - nu) / gamma(nu)) * zp ** nu * kv(nu, zp)
    out[pos] = np.where(np.isfinite(v), v, 0.0)  # z^nu overflows only where K_nu(z) underflowed to 0
    return out


def _slope(z: np.ndarray, nu: float) -> np.ndarray:
    from scipy.special import gamma, kv

    out = np.zeros_like(z)
    pos = z > 0
    zp = z[pos]
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):
        v = -(2.0 ** (1.0 - nu) / gamma(nu)) * zp ** nu * kv(nu - 1.0, zp)
    out[pos] = np.where(np.isfinite(v), v, 0.0)
    return out


class _MaternProfile(torch.autograd.Function):
    @staticmethod
    def forward(z: Tensor, nu: float) -> Tensor:  # type: ignore[override]
        return torch.from_numpy(_value(_numpy(z), nu)).to(z)

    @staticmethod
    def setup_context(ctx, inputs, output):  # type: ignore[override]
        z, nu = inputs
        ctx.nu = nu
        ctx.save_for_backward(z)
        ctx.save_for_forward(z)

    @staticmethod
    def _dz(ctx) -> Tensor:
        (z,) = ctx.saved_tensors
        return torch.from_numpy(_slope(_numpy(z), ctx.nu)).to(z)

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        return grad * _MaternProfile._dz(ctx), None

    @staticmethod
    def jvp(ctx, z_tangent: Tensor, nu_tangent):  # type: ignore[override]
        return z_tangent * _MaternProfile._dz(ctx)


def matern_profile(z: Tensor, nu: float) -> Tensor:
    """The Matérn correlation at scaled distances ``z = sqrt(2 nu) r / l >= 0``, same shape as ``z``.

    ``nu > 0`` is the smoothness (finite). Differentiable in ``z`` (backward
    and forward-mode automatic differentiation).
    """
    nu = float(nu)
    if not (nu > 0 and math.isfinite(nu)):
        raise ValueError(f"nu must be finite and > 0, got {nu!r}")
    return _MaternProfile.apply(z, nu)
