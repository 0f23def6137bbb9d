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


def _log_kv_upward(nu: float, z: np.ndarray) -> np.ndarray:
    """``log K_nu(z)`` by the stable upward recurrence ``K_(m+1) = K_(m-1) + (2m / z) K_m`` from the
    fractional order, rescaled as it goes: for large orders, where ``K_nu`` overflows a double."""
    from scipy.special import kve

    mu = nu - math.floor(nu)
    steps = round(nu - mu)
    k0, k1 = kve(mu, z), kve(mu + 1.0, z)  # e^z K: the common factor e^z leaves the recurrence unchanged
    log_scale = np.zeros_like(z)
    if steps == 0:
        return np.log(k0) - z
    for j in range(1, steps):
        k0, k1 = k1, k0 + (2.0 * (mu + j) / z) * k1
        big = k1 > 1e200
        if big.any():
            log_scale[big] += np.log(k1[big])
            k0[big] /= k1[big]
            k1[big] = 1.0
    return np.log(k1) + log_scale - z


def _log_kv(nu: float, z: np.ndarray) -> np.ndarray:
    """``log K_nu(z)`` for ``z > 0`` (``K_-nu = K_nu``)."""
    from scipy.special import kve

    nu = abs(nu)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        out = np.log(kve(nu, z)) - z
    bad = ~np.isfinite(out)
    if bad.any():
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            out[bad] = _log_kv_upward(nu, z[bad])
    return out


def _scaled(z: np.ndarray, nu: float, order: float, empty: float) -> np.ndarray:
    """``2^(1 - nu) / Gamma(nu) * z^nu * K_order(z)`` in log space (no overflow), ``empty`` at ``z = 0``."""
    from scipy.special import gammaln

    out = np.full_like(z, empty)
    pos = z > 0
    zp = z[pos]
    with np.errstate(over="ignore", under="ignore"):
        out[pos] = np.exp((1.0 - nu) * math.log(2.0) - gammaln(nu) + nu * np.log(zp) + _log_kv(order, zp))
    return out


def _value(z: np.ndarray, nu: float) -> np.ndarray:
    return _scaled(z, nu, nu, 1.0)


def _slope(z: np.ndarray, nu: float) -> np.ndarray:
    return -_scaled(z, nu, nu - 1.0, 0.0)


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
