"""A trained difflens emulator as the filters' forecast model.

A difflens :class:`~difflens.dynamics.Emulator` maps the last ``L`` states
(its context window, ``L = emulator.context``) to the next one; its recurrent
net is re-run over the window at every step, so the window is *all* of its
state (no hidden state survives between steps). :class:`EmulatorModel` makes
that window the filter's state: an **augmented state** ``z = (x_{n-L+1}, ...,
x_n)`` of dimension ``L d``, observed through ``H_aug = [0 ... 0 H]`` (only
its newest state). An ensemble filter then updates every state of the window
through the ensemble's cross-covariances between the window and the observed
newest state (so the history the emulator reads next is consistent with the
analysis), the extended Kalman filter linearises the emulator over the whole
window by autograd, and one forecast cycle runs ``obs_every`` emulator steps,
shifting the window.

The first windows come from the setup's initial distribution: a draw from
``N(x0_mean, x0_cov)`` run ``L - 1`` RK4 steps of the true equations (the
only use of them; the filter then forgets this start within the burn-in).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .hmm import HMM

__all__ = ["EmulatorModel"]


class EmulatorModel:
    """An emulator in the loop: the forecast model of :func:`~difflens.assim.run_filter` on window states.

    Parameters
    ----------
    emulator: a trained :class:`~difflens.dynamics.Emulator` whose step is the setup's ``dt``
        (not checked: the emulator does not record its step) and whose ``dim`` is the setup's.
    hmm: the twin-experiment setup (observations, noise, initial distribution, ``obs_every``).
    """

    def __init__(self, emulator, hmm: HMM) -> None:
        if int(emulator.dim) != hmm.dim:
            raise ValueError(f"the emulator's states have dimension {emulator.dim}, the setup's {hmm.dim}")
        self.emulator, self.hmm = emulator, hmm
        self.context, self.state_dim = int(emulator.context), hmm.dim
        self.dim = self.context * hmm.dim
        self.H = torch.cat((torch.zeros(hmm.n_obs, self.dim - hmm.dim, dtype=torch.float64), hmm.H), 1)
        self.R = hmm.R
        self.dt_obs = hmm.dt_obs
        self.obs_every = hmm.obs_every
        self._dtype = self.emulator.mean.dtype

    def forecast(self, z: Tensor) -> Tensor:
        """Windows ``(..., L d)`` after one cycle (``obs_every`` emulator steps); differentiable."""
        shape = z.shape
        w = z.reshape(-1, self.context, self.state_dim).to(self._dtype)
        for _ in range(self.obs_every):
            nxt = self.emulator.step(w)
            w = torch.cat((w[:, 1:], nxt.unsqueeze(1)), 1)
        return w.to(z.dtype).reshape(shape)

    def _windows(self, x: Tensor) -> Tensor:
        states = [x]
        with torch.no_grad():
            for _ in range(self.context - 1):
                x = _rk4_steps(self.hmm, x, 1)
                states.append(x)
        return torch.stack(states, -2).reshape(*x.shape[:-1], self.dim)

    def sample_initial(self, shape: tuple[int, ...], generator: torch.Generator) -> Tensor:
        """``shape + (L d,)`` initial windows (see the module notes)."""
        return self._windows(self.hmm.sample_initial(shape, generator))

    def initial_mean(self) -> Tensor:
        """The window ``(L d,)`` of the initial mean's trajectory."""
        return self._windows(self.hmm.x0_mean.unsqueeze(0))[0]

    def initial_cov(self, n: int = 2000) -> Tensor:
        """The covariance ``(L d, L d)`` of the initial windows (a sample of ``n``, fixed seed), plus a 1e-6 jitter."""
        Z = self.sample_initial((n,), torch.Generator().manual_seed(0))
        return torch.cov(Z.T) + 1e-6 * torch.eye(self.dim, dtype=torch.float64)

    def physical(self, z: Tensor) -> Tensor:
        """The newest state ``(..., d)`` of windows ``(..., L d)``."""
        return z[..., -self.state_dim:]

    def physical_variance(self, P: Tensor) -> Tensor:
        """Variances ``(..., d)`` of the newest state from window covariances ``(..., L d, L d)``."""
        return torch.diagonal(P, dim1=-2, dim2=-1)[..., -self.state_dim:]


def _rk4_steps(hmm: HMM, x: Tensor, n: int) -> Tensor:
    from difflens.dynamics.integrators import rk4_step

    t = x.new_zeros(())
    for _ in range(n):
        x = rk4_step(hmm.model, t, x, hmm.dt)
    return x
