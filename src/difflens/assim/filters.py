"""Sequential filters batched over experiments and members, and the cycling driver :func:`run_filter`.

Every method is a small object with the same contract (``X`` experiments,
``N`` members, state dimension ``D`` of the forecast model)::

    state = method.init(model, X, generator)        # the first ensemble / mean and covariance
    state = method.forecast(model, state)           # one cycle of the forecast model
    state = method.assimilate(model, state, y, generator)   # y: (X, p) observations of this cycle
    mean, spread = method.moments(model, state)     # (X, d), (X,) in physical state units

``model`` is an :class:`~difflens.assim.HMM` (the true equations) or any object
with the same ``dim``, ``H``, ``R``, ``forecast``, ``sample_initial`` and
``physical`` (e.g. :class:`~difflens.assim.EmulatorModel`, a trained emulator).
Ensembles are ``(X, N, D)`` tensors: one batched operation updates every
member of every experiment.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass

import torch
from torch import Tensor

from .stats import AssimResult

__all__ = ["ETKF", "EnKF", "ExtKF", "FilterDivergenceError", "LETKF", "ParticleFilter", "Var3D",
           "gaspari_cohn", "random_rotation", "run_filter"]


class FilterDivergenceError(FloatingPointError):
    """A filter diverged (non-finite or huge states) or its ensemble collapsed; ``cycle`` and ``experiments`` say where."""

    def __init__(self, message: str, cycle: int, experiments: list[int]) -> None:
        super().__init__(message)
        self.cycle, self.experiments = cycle, experiments


def ensemble_moments(model, E: Tensor) -> tuple[Tensor, Tensor]:
    """Mean ``(X, d)`` and spread ``sqrt(mean_i var_i)`` ``(X,)`` of an ensemble ``(X, N, D)`` in physical units."""
    P = model.physical(E)
    return P.mean(-2), P.var(-2).mean(-1).sqrt()


def random_rotation(X: int, N: int, generator: torch.Generator, dtype=torch.float64) -> Tensor:
    """``(X, N, N)`` random orthogonal matrices with the vector of ones as an eigenvector (DAPPER's ``genOG_1``),
    so rotating an ensemble's anomalies keeps its mean and covariance."""
    basis, _ = torch.linalg.qr(torch.cat((torch.ones(N, 1, dtype=dtype), torch.eye(N, dtype=dtype)[:, :N - 1]), 1))
    Q, Rq = torch.linalg.qr(torch.randn(X, N - 1, N - 1, generator=generator, dtype=dtype))
    Q = Q * torch.sign(torch.diagonal(Rq, dim1=-2, dim2=-1)).unsqueeze(-2)  # Haar-distributed
    full = torch.zeros(X, N, N, dtype=dtype)
    full[:, 0, 0] = 1.0
    full[:, 1:, 1:] = Q
    return basis @ full @ basis.T


def post_process(E: Tensor, infl: float, rot: bool, generator: torch.Generator) -> Tensor:
    """DAPPER's ``post_process``: multiplicative inflation of the anomalies, then an optional random rotation."""
    if infl == 1.0 and not rot:
        return E
    mu = E.mean(-2, keepdim=True)
    A = (E - mu) * infl
    if rot:
        A = random_rotation(E.shape[0], E.shape[1], generator) @ A
    return mu + A


def check_ensemble_size(N: int, minimum: int = 2) -> int:
    """``N`` as an int, or a ``ValueError`` if it is below ``minimum``."""
    if int(N) < minimum:
        raise ValueError(f"the ensemble needs N >= {minimum} members, got {N}")
    return int(N)


def check_inflation(infl: float) -> float:
    """``infl`` as a float, or a ``ValueError`` unless it is finite and >= 1."""
    infl = float(infl)
    if not (math.isfinite(infl) and infl >= 1.0):
        raise ValueError(f"inflation must be finite and >= 1, got {infl}")
    return infl


class _Ensemble:
    """What the ensemble filters share: ``N`` members drawn from the initial distribution, each
    forecast by the model, summarised by their mean and spread. Subclasses add ``assimilate``."""

    N: int

    def init(self, model, X: int, generator: torch.Generator) -> Tensor:
        return model.sample_initial((X, self.N), generator)

    def forecast(self, model, E: Tensor) -> Tensor:
        return model.forecast(E)

    def moments(self, model, E: Tensor) -> tuple[Tensor, Tensor]:
        return ensemble_moments(model, E)


class EnKF(_Ensemble):
    """The ensemble Kalman filter: ``kind="sqrt"`` (the ETKF, symmetric square root) or ``"pertobs"``.

    Parameters
    ----------
    kind: ``"sqrt"`` (deterministic square-root ETKF) or ``"pertobs"`` (stochastic, perturbed
        observations: ``N`` draws of ``N(0, R)`` centred on their mean and rescaled by ``sqrt(N / (N - 1))``
        so that centring does not shrink their variance, as DAPPER's ``mean0``).
    N: members. infl: multiplicative inflation of the analysis anomalies (>= 1).
    rot: apply a random mean-preserving rotation to the analysis anomalies (DAPPER's ``rot=True``).
    """

    def __init__(self, kind: str = "sqrt", N: int = 10, infl: float = 1.0, rot: bool = False) -> None:
        if kind not in ("sqrt", "pertobs"):
            raise ValueError(f"kind must be 'sqrt' or 'pertobs', got {kind!r}")
        self.kind, self.N, self.infl, self.rot = kind, check_ensemble_size(N), check_inflation(infl), bool(rot)
        self.name = f"EnKF {kind} N={self.N}"


    def assimilate(self, model, E: Tensor, y: Tensor, generator: torch.Generator) -> Tensor:
        """Analysis ensemble ``(X, N, D)`` from the forecast ensemble ``E`` ``(X, N, D)`` and
        observations ``y`` ``(X, p)``; ``generator`` draws the perturbed observations and rotations.
        """
        H, R = model.H.to(E), model.R.to(E)
        N = E.shape[-2]
        mu = E.mean(-2, keepdim=True)
        A = E - mu
        Eo = E @ H.T
        xo = Eo.mean(-2, keepdim=True)
        Y = Eo - xo
        if self.kind == "pertobs":
            LR = torch.linalg.cholesky(R)
            D = torch.randn(*Eo.shape, generator=generator, dtype=E.dtype) @ LR.T
            D = (D - D.mean(-2, keepdim=True)) * math.sqrt(N / (N - 1))          # centred, variance kept
            C = Y.transpose(-1, -2) @ Y + (N - 1) * R                       # (X, p, p)
            KT = torch.linalg.solve(C, Y.transpose(-1, -2) @ A)              # (X, p, D) = K^T
            E = E + (y.unsqueeze(-2) + D - Eo) @ KT
        else:
            Ri = torch.cholesky_inverse(torch.linalg.cholesky(R))
            dy = y.unsqueeze(-2) - xo                                        # (X, 1, p)
            YRi = Y @ Ri
            lam, V = torch.linalg.eigh(YRi @ Y.transpose(-1, -2)
                                       + (N - 1) * torch.eye(N, dtype=E.dtype))
            Pw = (V / lam.unsqueeze(-2)) @ V.transpose(-1, -2)
            T = (V * torch.sqrt((N - 1) / lam).unsqueeze(-2)) @ V.transpose(-1, -2)
            w = dy @ YRi.transpose(-1, -2) @ Pw                              # (X, 1, N)
            E = mu + w @ A + T @ A
        return post_process(E, self.infl, self.rot, generator)


def ETKF(N: int = 10, infl: float = 1.0, rot: bool = False) -> EnKF:
    """The ensemble transform Kalman filter: ``EnKF("sqrt", N, infl, rot)``."""
    return EnKF("sqrt", N, infl, rot)


def gaspari_cohn(dist: Tensor, radius: float) -> Tensor:
    """Gaspari-Cohn (1999) taper, scaled as DAPPER's: ``exp(-1/2)`` at ``dist = radius``, 0 beyond ``3.64 radius``."""
    Rr = radius * 1.82
    r = dist / Rr
    c1 = 1 + r**2 * (-r**3 / 4 + r**2 / 2) + r**3 * (5 / 8) - r**2 * (5 / 3)
    rs = torch.where(r > 0, r, torch.ones_like(r))
    c2 = r**2 * (r**3 / 12 - r**2 / 2) + r**3 * (5 / 8) + r**2 * (5 / 3) - r * 5 + 4 - (2 / 3) / rs
    return torch.where(r <= 1, c1, torch.where(r <= 2, c2, torch.zeros_like(r)))


class LETKF(_Ensemble):
    """The local ETKF on a periodic 1-D grid (Lorenz-96): one ETKF per grid point, batched over all of them.

    Each state variable ``i`` is analysed with every observation, the
    observation precision tapered by ``gaspari_cohn(dist(i, j), radius)``
    (periodic grid distance between the site ``i`` and the observed site ``j``;
    observations of sites beyond ``3.64 radius`` get weight 0). Needs an ``H``
    that selects grid sites (rows of the identity) and a diagonal ``R``.

    Parameters: ``N`` members, ``radius`` (grid units), ``infl``, ``rot`` (as :class:`EnKF`).
    """

    def __init__(self, N: int = 7, radius: float = 4.0, infl: float = 1.0, rot: bool = False) -> None:
        if not (math.isfinite(radius) and radius > 0):
            raise ValueError(f"radius must be finite and > 0, got {radius}")
        self.N, self.radius, self.infl, self.rot = check_ensemble_size(N), float(radius), check_inflation(infl), rot
        self.name = f"LETKF N={self.N} r={radius:g}"
        self._taper = None

    def init(self, model, X: int, generator: torch.Generator) -> Tensor:
        """Check ``H`` (rows select grid sites) and ``R`` (diagonal), build the localisation taper,
        and draw the initial ensemble ``(X, N, D)`` for ``X`` experiments.
        """
        H = model.H
        rows_ok = bool(((H == 0) | (H == 1)).all()) and bool((H.sum(1) == 1).all())
        if not rows_ok:
            raise ValueError("LETKF needs an observation operator H whose rows select grid sites (0/1 rows)")
        if bool((model.R - torch.diag(torch.diagonal(model.R))).abs().max() > 0):
            raise ValueError("LETKF needs a diagonal observation-noise covariance R")
        d = H.shape[1]
        sites = torch.arange(d, dtype=torch.float64)
        obs_sites = H.argmax(1).to(torch.float64)
        diff = (sites[:, None] - obs_sites[None, :]).abs()
        dist = torch.minimum(diff, d - diff)                                  # (d, p) periodic
        self._taper = gaspari_cohn(dist, self.radius)
        return super().init(model, X, generator)


    def assimilate(self, model, E: Tensor, y: Tensor, generator: torch.Generator) -> Tensor:
        """Analysis ensemble ``(X, N, D)``: one tapered ETKF update per grid site, from the forecast
        ensemble ``E`` ``(X, N, D)`` and observations ``y`` ``(X, p)``.
        """
        H = model.H.to(E)
        r = torch.diagonal(model.R).to(E)
        N = E.shape[-2]
        mu = E.mean(-2, keepdim=True)
        A = E - mu                                                            # (X, N, d)
        Eo = E @ H.T
        xo = Eo.mean(-2, keepdim=True)
        Y = (Eo - xo) / r.sqrt()                                              # (X, N, p), unit noise
        dy = (y.unsqueeze(-2) - xo) / r.sqrt()                                # (X, 1, p)
        c = self._taper.to(E)                                                 # (d, p)
        Yc = Y.unsqueeze(1) * c.sqrt()[None, :, None, :]                      # (X, d, N, p)
        dyc = dy.unsqueeze(1) * c.sqrt()[None, :, None, :]                    # (X, d, 1, p)
        lam, V = torch.linalg.eigh(Yc @ Yc.transpose(-1, -2) + (N - 1) * torch.eye(N, dtype=E.dtype))
        Pw = (V / lam.unsqueeze(-2)) @ V.transpose(-1, -2)                    # (X, d, N, N)
        T = (V * torch.sqrt((N - 1) / lam).unsqueeze(-2)) @ V.transpose(-1, -2)
        w = dyc @ Yc.transpose(-1, -2) @ Pw                                   # (X, d, 1, N)
        G = w + T                                                             # (X, d, N, N): rows new members
        Ai = A.transpose(-1, -2).unsqueeze(-1)                                # (X, d, N, 1): site i's anomalies
        E = mu + (G @ Ai).squeeze(-1).transpose(-1, -2)
        return post_process(E, self.infl, self.rot, generator)


@dataclass
class _Gaussian:
    mean: Tensor  # (X, D)
    cov: Tensor   # (X, D, D)


def tangent_linear(model, x: Tensor) -> tuple[Tensor, Tensor]:
    """``(forecast(x), dforecast/dx)``: ``(X, D)`` and the Jacobian ``(X, D, D)`` by reverse-mode autograd.

    The ``D`` rows come from one forward and one backward pass over ``D`` copies of the batch
    (copy ``i`` back-propagates output component ``i``).
    """
    X, D = x.shape
    with torch.enable_grad():
        xr = x.detach().unsqueeze(0).expand(D, X, D).clone().requires_grad_(True)
        out = model.forecast(xr)                                              # (D, X, D)
        sel = torch.eye(D, dtype=x.dtype).unsqueeze(1)                        # (D, 1, D)
        (g,) = torch.autograd.grad((out * sel).sum(), xr)
    return out[0].detach(), g.transpose(0, 1)                                 # J[x, i, j] = d out_i / d x_j


class ExtKF:
    """The extended Kalman filter: the mean by the forecast model, the covariance by its tangent linear model.

    The tangent linear model of one cycle comes from forward-mode autograd
    through the forecast (the RK4 steps of the true equations, or the
    emulator's network). The forecast covariance is inflated by
    ``infl ** dt_obs`` per cycle (DAPPER's ``infl ** dt`` per model step).
    ``P0`` defaults to the model's initial covariance.
    """

    def __init__(self, infl: float = 1.0) -> None:
        self.infl = check_inflation(infl)
        self.name = "ExtKF"

    def init(self, model, X: int, generator: torch.Generator) -> _Gaussian:
        """The initial Gaussian (mean ``(X, D)``, covariance ``(X, D, D)``) for ``X`` experiments.
        """
        return _Gaussian(model.initial_mean().expand(X, -1).clone(), model.initial_cov().expand(X, -1, -1).clone())

    def forecast(self, model, s: _Gaussian) -> _Gaussian:
        """Advance the Gaussian one observation interval with ``model``."""
        m, J = tangent_linear(model, s.mean)
        factor = self.infl ** model.dt_obs
        P = factor * (J @ s.cov @ J.transpose(-1, -2))
        return _Gaussian(m.detach(), 0.5 * (P + P.transpose(-1, -2)))

    def moments(self, model, s: _Gaussian) -> tuple[Tensor, Tensor]:
        """``(mean (X, d), spread (X,))`` in physical units: the estimate and its RMS spread."""
        return model.physical(s.mean), model.physical_variance(s.cov).mean(-1).sqrt()

    def assimilate(self, model, s: _Gaussian, y: Tensor, generator: torch.Generator) -> _Gaussian:
        """Update the Gaussian with observations ``y`` ``(X, p)``."""
        H, R = model.H.to(s.mean), model.R.to(s.mean)
        P = s.cov
        S = H @ P @ H.T + R
        K = torch.linalg.solve(S, H @ P).transpose(-1, -2)                   # (X, D, p)
        mean = s.mean + (K @ (y - s.mean @ H.T).unsqueeze(-1)).squeeze(-1)
        P = P - K @ H @ P
        return _Gaussian(mean, 0.5 * (P + P.transpose(-1, -2)))


class Var3D:
    """3D-Var with a static background covariance ``B`` (times ``xB``): the minimiser of
    ``J(x) = |x - x_f|^2_{B^-1} + |y - H x|^2_{R^-1}``, i.e. ``x_a = x_f + K (y - H x_f)`` with the constant
    gain ``K = B H^T (H B H^T + R)^-1`` (for a linear ``H`` the quadratic cost has this closed-form minimiser;
    DAPPER's Var3D is the same update). ``B`` is ``(D, D)`` SPD, e.g. :func:`~difflens.assim.climatology`.
    The reported spread is that of the constant analysis covariance ``(I - K H) B``.
    """

    def __init__(self, B: Tensor, xB: float = 1.0) -> None:
        from .hmm import check_spd

        if not (math.isfinite(xB) and xB > 0):
            raise ValueError(f"xB must be finite and > 0, got {xB}")
        self.B = check_spd(B, "background covariance B") * float(xB)
        self.name = "3D-Var"

    def init(self, model, X: int, generator: torch.Generator) -> Tensor:
        """The initial state ``(X, D)`` for ``X`` experiments."""
        if self.B.shape[0] != model.dim:
            raise ValueError(f"B is {list(self.B.shape)} but the model's state has dimension {model.dim}")
        H, R = model.H, model.R
        self.K = torch.linalg.solve(H @ self.B @ H.T + R, H @ self.B).T
        Pa = self.B - self.K @ H @ self.B
        self._spread = float(model.physical_variance(Pa).mean().sqrt())
        return model.initial_mean().expand(X, -1).clone()

    def forecast(self, model, x: Tensor) -> Tensor:
        """Advance the state ``(X, D)`` one observation interval with ``model``."""
        return model.forecast(x)

    def moments(self, model, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(mean (X, d), spread (X,))`` in physical units: the estimate and its RMS spread."""
        return model.physical(x), x.new_full((x.shape[0],), self._spread)

    def assimilate(self, model, x: Tensor, y: Tensor, generator: torch.Generator) -> Tensor:
        """Update the state ``(X, D)`` with observations ``y`` ``(X, p)``."""
        return x + (y - x @ model.H.T) @ self.K.T


@dataclass
class _Particles:
    E: Tensor     # (X, N, D)
    logw: Tensor  # (X, N), normalised: logsumexp = 0
    analysis: tuple[Tensor, Tensor] | None = None  # (mean, spread) of the weighted ensemble before resampling


class ParticleWeightsError(FloatingPointError):
    """Every particle weight of an experiment underflowed or is NaN; ``cycle`` and ``experiments`` say where."""

    def __init__(self, message: str, cycle: int | None, experiments: list[int]) -> None:
        super().__init__(message)
        self.cycle, self.experiments = cycle, experiments


def _weighted_moments(P: Tensor, w: Tensor) -> tuple[Tensor, Tensor]:
    """Weighted mean ``(X, d)`` and spread ``(X,)`` of particles ``(X, N, d)`` with weights ``(X, N)``; the
    variance is unbiased by ``1 / (1 - sum w^2)`` (reliability weights), kept finite for one heavy particle."""
    wu = w.unsqueeze(-1)
    mu = (wu * P).sum(-2)
    unbias = (1 - w.pow(2).sum(-1, keepdim=True)).clamp_min(1.0 / w.shape[-1])
    var = (wu * (P - mu.unsqueeze(-2)) ** 2).sum(-2) / unbias
    return mu, var.mean(-1).sqrt()


class ParticleFilter:
    """The bootstrap particle filter (DAPPER's ``PartFilt``), with systematic resampling and regularisation.

    Weights are kept as logarithms (normalised by log-sum-exp), so they do not
    underflow however far the particles are from the observation; only when
    every log-weight of an experiment is ``-inf`` or NaN is a
    :class:`ParticleWeightsError` raised. The analysis (mean and spread) is the
    weighted ensemble right after Bayes' rule, before any resampling (DAPPER's
    ``rmse.a``). When the effective sample size ``1 / sum w^2`` is at or below
    ``NER * N`` the experiment is resampled (systematic) and the particles that
    were drawn more than once (``jitter="duplicates"``, DAPPER's ``nuj=True``;
    ``"all"``: every particle) are jittered by ``reg * h * z``, ``z ~ N(0, C)``:
    ``C`` the weighted ensemble covariance (unbiased; the equally weighted one
    if a single particle holds all the weight), ``h = N^(-1 / (D + 4))`` (Scott's
    rule, DAPPER's ``auto_bandw``).

    Without model noise a bootstrap particle filter cannot come back once its
    cloud has missed the truth: every particle then sits where the observation
    is implausible, the weights fall on one of them, and resampling and jitter
    only move the cloud around that wrong particle (on Lorenz-63 with N = 800,
    about one 1,000-cycle run in ten does this and stays on the wrong wing).
    ``rescue_tail`` (off by default, i.e. DAPPER's ``PartFilt``) detects it: an
    experiment whose *best* particle has a whitened innovation
    ``|R^(-1/2) (y - H x_i)|^2`` beyond the ``1 - rescue_tail`` quantile of the
    chi-square law with ``p`` degrees of freedom is declared lost
    (``self.rescued`` lists ``(cycle, experiment)``), and its particles are
    replaced by a perturbed-observation EnKF analysis of the forecast cloud,
    with the cloud's anomalies inflated so that its spread covers the mean
    innovation (``alpha = max(1, (|dy|^2 - p) / tr(Y Y^T / (N - 1)))`` in whitened
    units); the weights are then equal and the analysis is that cloud's mean.

    Parameters
    ----------
    N: particles. reg: jitter scale (>= 0; DAPPER's suggested 2.4 for N = 100, 0.9 for N = 800).
    NER: resampling threshold as a fraction of ``N``, in (0, 1]. jitter: ``"duplicates"`` or ``"all"``.
    rescue_tail: ``None`` (default, off) or a probability in (0, 1), e.g. ``1e-6``: the lost-track test above.
    """

    def __init__(self, N: int = 100, reg: float = 1.0, NER: float = 0.5, jitter: str = "duplicates",
                 rescue_tail: float | None = None) -> None:
        if rescue_tail is not None and not 0 < float(rescue_tail) < 1:
            raise ValueError(f"rescue_tail must be None or in (0, 1), got {rescue_tail}")
        self.rescue_tail = None if rescue_tail is None else float(rescue_tail)
        self.rescued: list[tuple[int | None, int]] = []
        if not 0 < float(NER) <= 1:
            raise ValueError(f"NER must be in (0, 1], got {NER}")
        if not (math.isfinite(reg) and reg >= 0):
            raise ValueError(f"reg must be finite and >= 0, got {reg}")
        if jitter not in ("duplicates", "all"):
            raise ValueError(f"jitter must be 'duplicates' or 'all', got {jitter!r}")
        self.N, self.reg, self.NER, self.jitter = check_ensemble_size(N), float(reg), float(NER), jitter
        self.name = f"PF N={self.N}" + ("" if rescue_tail is None else " rescue")
        self.cycle: int | None = None
        self.resampled = 0

    def init(self, model, X: int, generator: torch.Generator) -> _Particles:
        """The initial particles (``(X, N, D)`` and log-weights ``(X, N)``) for ``X`` experiments.
        """
        E = model.sample_initial((X, self.N), generator)
        return _Particles(E, torch.full((X, self.N), -math.log(self.N), dtype=E.dtype))

    def forecast(self, model, s: _Particles) -> _Particles:
        """Advance the particles one observation interval with ``model``."""
        return _Particles(model.forecast(s.E), s.logw)

    def moments(self, model, s: _Particles) -> tuple[Tensor, Tensor]:
        """``(mean (X, d), spread (X,))`` in physical units: the estimate and its RMS spread
        (the analysis taken before resampling, when one was stored)."""
        if s.analysis is not None:
            return s.analysis
        return _weighted_moments(model.physical(s.E), s.logw.exp())

    def assimilate(self, model, s: _Particles, y: Tensor, generator: torch.Generator) -> _Particles:
        """Reweight the particles by observations ``y`` ``(X, p)``; resample and jitter where the
        effective sample size is below ``NER * N``."""
        H, R = model.H.to(s.E), model.R.to(s.E)
        LR = torch.linalg.cholesky(R)
        innov = torch.linalg.solve_triangular(LR, (y.unsqueeze(-2) - s.E @ H.T).transpose(-1, -2),
                                              upper=False)                    # (X, p, N)
        logw = s.logw - 0.5 * innov.pow(2).sum(-2)
        norm = torch.logsumexp(logw, -1, keepdim=True)
        bad = ~torch.isfinite(norm.squeeze(-1))
        if bool(bad.any()):
            ex = bad.nonzero()[:, 0].tolist()
            raise ParticleWeightsError(f"every particle weight is zero or NaN in experiment(s) {ex[:10]}"
                                       f"{'' if self.cycle is None else f' at cycle {self.cycle}'}; the "
                                       "particles are far from the observations (more particles or "
                                       "stronger regularisation)", self.cycle, ex)
        logw = logw - norm
        if self.rescue_tail is not None:
            lost = innov.pow(2).sum(-2).amin(-1) > chi2_quantile(1 - self.rescue_tail, H.shape[0])  # (X,)
            if bool(lost.any()):
                s = self._rescue(model, s, y, lost, generator)
                logw = torch.where(lost[:, None], s.logw, logw)
        w = logw.exp()
        analysis = _weighted_moments(model.physical(s.E), w)
        X, N, D = s.E.shape
        n_eff = 1.0 / w.pow(2).sum(-1)
        need = n_eff <= self.NER * N                                           # (X,)
        if not bool(need.any()):
            return _Particles(s.E, logw, analysis)
        self.resampled += int(need.sum())
        # the jitter covariance: weighted (or, for one particle holding all the weight, equal) weights
        degenerate = (1 - w.amax(-1, keepdim=True)) < 1e-10
        wc = torch.where(degenerate, torch.full_like(w, 1.0 / N), w)
        mu = (wc.unsqueeze(-1) * s.E).sum(-2, keepdim=True)
        A = s.E - mu
        unbias = 1.0 / (1 - wc.pow(2).sum(-1))                                # N_eff / (N_eff - 1)
        C = (wc.unsqueeze(-1) * A).transpose(-1, -2) @ A * unbias[:, None, None]   # (X, D, D)
        lam, V = torch.linalg.eigh(0.5 * (C + C.transpose(-1, -2)))
        C12 = V * lam.clamp_min(0).sqrt().unsqueeze(-2)                       # C = C12 C12^T
        h = N ** (-1.0 / (D + 4))
        # systematic resampling, all experiments at once (indices come out sorted)
        u = (torch.rand(X, 1, generator=generator, dtype=w.dtype) + torch.arange(N, dtype=w.dtype)) / N
        cw = torch.cumsum(w, -1)
        cw[:, -1] = 1.0
        idx = torch.searchsorted(cw, u).clamp_max(N - 1)
        z = torch.randn(X, N, D, generator=generator, dtype=w.dtype) @ C12.transpose(-1, -2)
        if self.jitter == "duplicates":
            dup = (idx == idx.roll(1, -1)) | (idx == idx.roll(-1, -1))
            z = z * dup.unsqueeze(-1)
        E_new = torch.gather(s.E, 1, idx.unsqueeze(-1).expand(X, N, D)) + self.reg * h * z
        E = torch.where(need[:, None, None], E_new, s.E)
        logw = torch.where(need[:, None], torch.full_like(logw, -math.log(N)), logw)
        return _Particles(E, logw, analysis)

    def _rescue(self, model, s: _Particles, y: Tensor, lost: Tensor, generator: torch.Generator) -> _Particles:
        """The lost experiments' particles replaced by an inflated perturbed-observation EnKF analysis, equal weights."""
        ex = lost.nonzero()[:, 0]
        self.rescued += [(self.cycle, int(e)) for e in ex]
        H, R = model.H.to(s.E), model.R.to(s.E)
        LR = torch.linalg.cholesky(R)
        E = s.E[ex]                                                            # (L, N, D), equal weights
        N, p = E.shape[-2], H.shape[0]
        mu = E.mean(-2, keepdim=True)
        A = E - mu
        Yw = torch.linalg.solve_triangular(LR, (A @ H.T).transpose(-1, -2), upper=False)        # (L, p, N)
        dyw = torch.linalg.solve_triangular(LR, (y[ex].unsqueeze(-2) - mu @ H.T).transpose(-1, -2), upper=False)
        spread = Yw.pow(2).sum((-1, -2)) / (N - 1)
        alpha = ((dyw.pow(2).sum((-1, -2)) - p) / spread.clamp_min(1e-300)).clamp_min(1.0)           # (L,)
        A = A * alpha.sqrt()[:, None, None]
        Y = A @ H.T
        Dn = torch.randn(E.shape[0], N, p, generator=generator, dtype=E.dtype) @ LR.T
        Dn = (Dn - Dn.mean(-2, keepdim=True)) * math.sqrt(N / (N - 1))
        KT = torch.linalg.solve(Y.transpose(-1, -2) @ Y + (N - 1) * R, Y.transpose(-1, -2) @ A)   # (L, p, D)
        Ea = mu + A + (y[ex].unsqueeze(-2) + Dn - mu @ H.T - Y) @ KT
        E_all = s.E.clone()
        E_all[ex] = Ea
        logw = s.logw.clone()
        logw[ex] = -math.log(N)
        return _Particles(E_all, logw)


@functools.lru_cache(maxsize=256)
def chi2_quantile(q: float, dof: int) -> float:
    """The ``q`` quantile of the chi-square law with ``dof`` degrees of freedom (bisection on the regularised
    incomplete gamma function; ``chi2_quantile(0.95, 3)`` is 7.8147). Memoised: the filters ask for the
    same few thresholds every cycle."""
    a = torch.tensor(dof / 2.0, dtype=torch.float64)
    lo, hi = 0.0, float(dof) + 20.0 * math.sqrt(2.0 * dof) + 100.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if float(torch.special.gammainc(a, torch.tensor(mid / 2.0, dtype=torch.float64))) < q:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def check_observations(model, obs: Tensor) -> Tensor:
    """``obs`` as float64 ``(X, K, p)``; a ``ValueError`` names a wrong shape or the first NaN/inf (experiment, cycle)."""
    obs = torch.as_tensor(obs, dtype=torch.float64)
    if obs.ndim != 3 or obs.shape[-1] != model.H.shape[0]:
        raise ValueError(f"observations must be (X, K, {model.H.shape[0]}), got {list(obs.shape)}")
    finite = torch.isfinite(obs).all(-1)
    if not bool(finite.all()):
        ex, k = (~finite).nonzero()[0].tolist()
        raise ValueError(f"observations contain NaN or inf (first at experiment {ex}, cycle {k}); the filters "
                         "reject them (drop the cycle, or use kalman_filter, which skips NaN observations)")
    return obs


def run_filter(method, hmm, truth: Tensor, obs: Tensor, generator: torch.Generator, *, model=None,
               max_abs: float = 1e4, min_spread: float = 0.0) -> AssimResult:
    """Cycle ``method`` through the observations: forecast, assimilate, record, for every experiment at once.

    Parameters
    ----------
    method: an :class:`EnKF`, :class:`LETKF`, :class:`ExtKF`, :class:`Var3D`, :class:`ParticleFilter`
        (or any object with the same four methods).
    hmm: the setup (burn-in, and the forecast model unless ``model`` is given).
    truth, obs: ``(X, K + 1, d)`` and ``(X, K, p)`` from :func:`~difflens.assim.simulate`; NaN or inf
        observations are rejected with a ``ValueError`` naming the experiment and cycle.
    generator: every random draw of the filter (initial ensemble, perturbations, rotations, resampling).
    model: the forecast model, default ``hmm`` (the true equations); e.g. an :class:`EmulatorModel`.
    max_abs: a filter whose mean leaves ``|x| <= max_abs`` or turns NaN raises :class:`FilterDivergenceError`
        naming the cycle and experiments; ``min_spread``: one whose analysis spread falls below it
        (a collapsed ensemble) too (default 0: off).

    Returns
    -------
    AssimResult
        The run's statistics (:class:`~difflens.assim.AssimResult`; wall time in ``seconds``).
    """
    model = hmm if model is None else model
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    obs = check_observations(model, obs)
    X, K = obs.shape[:2]
    t0 = time.perf_counter()
    with torch.no_grad():
        state = method.init(model, X, generator)
        mf, ma, sf, sa = [], [], [], []
        for k in range(K):
            if hasattr(method, "cycle"):
                method.cycle = k
            with torch.enable_grad() if isinstance(method, ExtKF) else torch.no_grad():
                state = method.forecast(model, state)
            m, s = method.moments(model, state)
            mf.append(m)
            sf.append(s)
            state = method.assimilate(model, state, obs[:, k], generator)
            m, s = method.moments(model, state)
            ma.append(m)
            sa.append(s)
            bad = ~(torch.isfinite(m).all(-1) & (m.abs().amax(-1) <= max_abs) & torch.isfinite(s))
            if bool(bad.any()):
                ex = bad.nonzero()[:, 0].tolist()
                raise FilterDivergenceError(f"{getattr(method, 'name', 'filter')} diverged at cycle {k}: "
                                            f"non-finite or |x| > {max_abs:g} in experiment(s) {ex[:10]}", k, ex)
            if min_spread > 0 and bool((s < min_spread).any()):
                ex = (s < min_spread).nonzero()[:, 0].tolist()
                raise FilterDivergenceError(f"{getattr(method, 'name', 'filter')}: the ensemble collapsed at "
                                            f"cycle {k} (spread < {min_spread:g}) in experiment(s) {ex[:10]}", k, ex)
    seconds = time.perf_counter() - t0
    return AssimResult(torch.stack(mf, 1), torch.stack(ma, 1), torch.stack(sf, 1), torch.stack(sa, 1),
                       torch.as_tensor(truth, dtype=torch.float64), hmm.burn_in, seconds,
                       getattr(method, "name", type(method).__name__))
