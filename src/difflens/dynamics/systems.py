"""Chaotic systems as ``nn.Module`` vector fields ``forward(t, x) -> dx/dt``.

Every system follows torchdiffeq's calling convention, takes states of shape
``(..., dim)`` (any leading batch shape) and keeps its coefficients as learnable
0-dimensional ``nn.Parameter`` tensors. Coefficients are stored in float64 so
that a float64 integration uses the exact constants (8/3 is not rounded to
float32); they are cast to the state's dtype in ``forward``, so float32 states
stay float32.

Reference values (used by the tests and the study):

=============  ==========================  =====================================
system         defaults                    Lyapunov exponents (literature)
=============  ==========================  =====================================
Lorenz63       sigma=10, rho=28, beta=8/3  0.9056, 0, -14.5723 (sum -(sigma+1+beta))
Rossler        a=0.2, b=0.2, c=5.7         0.0714, 0, -5.3943
Lorenz96       N=40, F=8                   lambda_1 ~ 1.68
=============  ==========================  =====================================
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["LORENZ63_LYAPUNOV", "Lorenz63", "Lorenz96", "LorenzMonomial", "Rossler"]

#: Lyapunov spectrum of Lorenz-63 at the classic parameters (Sprott, "Chaos and Time-Series Analysis").
LORENZ63_LYAPUNOV = (0.9056, 0.0, -14.5723)
"""Reference Lyapunov spectrum of :class:`Lorenz63` at (10, 28, 8/3), per model time unit."""


def _param(value: float, dtype: torch.dtype, device) -> nn.Parameter:
    return nn.Parameter(torch.tensor(float(value), dtype=dtype, device=device))


def _as(p: Tensor, x: Tensor) -> Tensor:
    """A coefficient in the state's dtype (a no-op, and no extra operation, when they already agree)."""
    return p if p.dtype == x.dtype else p.to(x.dtype)


class Lorenz63(nn.Module):
    """The Lorenz (1963) system.

    ``dx/dt = sigma (y - x)``, ``dy/dt = x (rho - z) - y``, ``dz/dt = x y - beta z``.

    Parameters
    ----------
    sigma, rho, beta: the coefficients (learnable 0-d parameters).
    dtype, device: where the parameters live (default float64, CPU).

    Notes
    -----
    ``forward(t, x)``: ``t`` is ignored (autonomous system); ``x`` has shape
    ``(..., 3)``; returns dx/dt with the same shape. Time unit: the model's
    own (one Lyapunov time is 1/0.9056 = 1.104 time units).
    """

    dim: int = 3
    autonomous: bool = True  # forward ignores t (the compiled RK4 then skips the stage-time arithmetic)

    def __init__(self, sigma: float = 10.0, rho: float = 28.0, beta: float = 8.0 / 3.0,
                 dtype: torch.dtype = torch.float64, device: torch.device | str | None = None) -> None:
        super().__init__()
        self.sigma = _param(sigma, dtype, device)
        self.rho = _param(rho, dtype, device)
        self.beta = _param(beta, dtype, device)

    def forward(self, t: Tensor, x: Tensor) -> Tensor:
        """``dx/dt`` at states ``x`` ``(..., 3)``, same shape; ``t`` (0-d) is ignored (autonomous).
        """
        if x.shape[-1] != 3:
            raise ValueError(f"Lorenz63 expects states of shape (..., 3), got {list(x.shape)}")
        sigma, rho, beta = _as(self.sigma, x), _as(self.rho, x), _as(self.beta, x)
        X, Y, Z = x.unbind(-1)
        return torch.stack((sigma * (Y - X), X * (rho - Z) - Y, X * Y - beta * Z), -1)

    def forward_cm(self, t: Tensor, x: Tensor) -> Tensor:
        """The same field on component-major states ``(3, B)`` (2-D; used by the compiled solvers: each
        variable is then a contiguous block, which makes every operation cheaper)."""
        X, Y, Z = x.unbind(0)  # x is 2-D here, so the float64 0-d coefficients keep x's dtype
        return torch.stack((self.sigma * (Y - X), X * (self.rho - Z) - Y,
                            torch.addcmul(X * Y, Z, self.beta, value=-1.0)), 0)

    def fixed_points(self) -> Tensor:
        """The three equilibria ``(3, 3)``: the origin and C+/- = (+-q, +-q, rho - 1), q = sqrt(beta (rho - 1))."""
        with torch.no_grad():
            q = torch.sqrt(self.beta * (self.rho - 1))
            z = self.rho - 1
            zero = torch.zeros_like(q)
            return torch.stack([torch.stack([zero, zero, zero]), torch.stack([q, q, z]), torch.stack([-q, -q, z])])

    def extra_repr(self) -> str:
        """The settings shown inside the module's ``repr``."""
        return f"sigma={self.sigma.item():.6g}, rho={self.rho.item():.6g}, beta={self.beta.item():.6g}"


class LorenzMonomial(nn.Module):
    """Lorenz-63 written as the seed's linear map on monomials: ``dx/dt = W [x, y, z, xz, xy]``.

    ``weight`` is a learnable ``(3, 5)`` matrix (``nn.Linear(5, 3, bias=False)``
    in the seed); at the classic values it is
    ``[[-sigma, sigma, 0, 0, 0], [rho, -1, 0, -1, 0], [0, 0, -beta, 0, 1]]``.
    The grey-box identification (:mod:`difflens.dynamics.greybox`) fits all 15
    entries and reads (sigma, rho, beta) back with :meth:`sigma_rho_beta`.
    Unlike the seed, ``forward`` is batched: ``x`` of shape ``(..., 3)``.
    """

    dim: int = 3
    autonomous: bool = True

    def __init__(self, sigma: float = 10.0, rho: float = 28.0, beta: float = 8.0 / 3.0,
                 weight: Tensor | None = None, dtype: torch.dtype = torch.float64,
                 device: torch.device | str | None = None) -> None:
        super().__init__()
        if weight is None:
            weight = torch.tensor([[-sigma, sigma, 0.0, 0.0, 0.0],
                                   [rho, -1.0, 0.0, -1.0, 0.0],
                                   [0.0, 0.0, -beta, 0.0, 1.0]], dtype=dtype, device=device)
        weight = torch.as_tensor(weight, dtype=dtype, device=device)
        if weight.shape != (3, 5):
            raise ValueError(f"weight must have shape (3, 5), got {list(weight.shape)}")
        self.weight = nn.Parameter(weight.clone())

    @staticmethod
    def monomials(x: Tensor) -> Tensor:
        """``[x, y, z, xz, xy]`` of shape ``(..., 5)`` for states ``(..., 3)``."""
        X = x[..., 0:1]
        return torch.cat((x, X * x[..., 2:3], X * x[..., 1:2]), -1)

    def forward(self, t: Tensor, x: Tensor) -> Tensor:
        """``dx/dt`` at states ``x`` ``(..., 3)``, same shape; ``t`` (0-d) is ignored (autonomous).
        """
        if x.shape[-1] != 3:
            raise ValueError(f"LorenzMonomial expects states of shape (..., 3), got {list(x.shape)}")
        return self.monomials(x) @ self.weight.t().to(x.dtype)

    def sigma_rho_beta(self) -> tuple[float, float, float]:
        """(sigma, rho, beta) read from the weights: sigma = (W01 - W00)/2, rho = W10, beta = -W22."""
        W = self.weight.detach()
        return (float((W[0, 1] - W[0, 0]) / 2), float(W[1, 0]), float(-W[2, 2]))


class Lorenz96(nn.Module):
    """The Lorenz (1996) ring ``dx_i/dt = (x_{i+1} - x_{i-2}) x_{i-1} - x_i + F``, i mod N.

    Parameters: ``N`` (>= 4) the number of sites, ``F`` the forcing (learnable).
    ``forward(t, x)`` takes ``(..., N)``. Chaotic for F >= ~6; N=40, F=8 has
    lambda_1 ~ 1.68.
    """

    autonomous: bool = True

    def __init__(self, N: int = 40, F: float = 8.0, dtype: torch.dtype = torch.float64,
                 device: torch.device | str | None = None) -> None:
        super().__init__()
        if int(N) < 4:
            raise ValueError(f"Lorenz96 needs N >= 4 sites, got {N}")
        self.N = int(N)
        self.dim = self.N
        self.F = _param(F, dtype, device)

    def forward(self, t: Tensor, x: Tensor) -> Tensor:
        """``dx/dt`` at states ``x`` ``(..., N)``, same shape; ``t`` (0-d) is ignored (autonomous).
        """
        if x.shape[-1] != self.N:
            raise ValueError(f"Lorenz96(N={self.N}) expects states of shape (..., {self.N}), got {list(x.shape)}")
        return (torch.roll(x, -1, -1) - torch.roll(x, 2, -1)) * torch.roll(x, 1, -1) - x + _as(self.F, x)

    def forward_cm(self, t: Tensor, x: Tensor) -> Tensor:
        """The same field on component-major states ``(N, B)``."""
        return (torch.roll(x, -1, 0) - torch.roll(x, 2, 0)) * torch.roll(x, 1, 0) - x + self.F

    def extra_repr(self) -> str:
        """The settings shown inside the module's ``repr``."""
        return f"N={self.N}, F={self.F.item():.6g}"


class Rossler(nn.Module):
    """The Rossler (1976) system ``dx = -y - z``, ``dy = x + a y``, ``dz = b + z (x - c)``; states ``(..., 3)``."""

    dim: int = 3
    autonomous: bool = True

    def __init__(self, a: float = 0.2, b: float = 0.2, c: float = 5.7, dtype: torch.dtype = torch.float64,
                 device: torch.device | str | None = None) -> None:
        super().__init__()
        self.a = _param(a, dtype, device)
        self.b = _param(b, dtype, device)
        self.c = _param(c, dtype, device)

    def forward(self, t: Tensor, x: Tensor) -> Tensor:
        """``dx/dt`` at states ``x`` ``(..., 3)``, same shape; ``t`` (0-d) is ignored (autonomous).
        """
        if x.shape[-1] != 3:
            raise ValueError(f"Rossler expects states of shape (..., 3), got {list(x.shape)}")
        a, b, c = _as(self.a, x), _as(self.b, x), _as(self.c, x)
        X, Y, Z = x.unbind(-1)
        return torch.stack((-Y - Z, X + a * Y, b + Z * (X - c)), -1)

    def forward_cm(self, t: Tensor, x: Tensor) -> Tensor:
        """The same field on component-major states ``(3, B)``."""
        X, Y, Z = x.unbind(0)
        return torch.stack((-Y - Z, X + self.a * Y, self.b + Z * (X - self.c)), 0)

    def extra_repr(self) -> str:
        """The settings shown inside the module's ``repr``."""
        return f"a={self.a.item():.6g}, b={self.b.item():.6g}, c={self.c.item():.6g}"
