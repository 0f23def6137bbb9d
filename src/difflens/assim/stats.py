"""DAPPER's statistics: time-mean RMSE and spread after burn-in, and confidence intervals over seeds."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["AssimResult", "confidence_interval", "rmse_series"]


def rmse_series(estimate: Tensor, truth: Tensor) -> Tensor:
    """``sqrt(mean_i (estimate_i - truth_i)^2)`` over the last dimension: ``(..., d) -> (...)``."""
    if estimate.shape != truth.shape:
        raise ValueError(f"estimate {list(estimate.shape)} and truth {list(truth.shape)} differ in shape")
    return (estimate - truth).pow(2).mean(-1).sqrt()


def confidence_interval(values, level: float = 0.95) -> tuple[float, float]:
    """``(mean, half_width)`` of a Student-t confidence interval of the mean of ``values`` (half width 0 for one)."""
    from scipy.stats import t as student

    v = torch.as_tensor(values, dtype=torch.float64).reshape(-1)
    if v.numel() == 0:
        raise ValueError("no values")
    m = float(v.mean())
    if v.numel() < 2:
        return m, 0.0
    half = float(student.ppf(0.5 + level / 2, v.numel() - 1)) * float(v.std()) / math.sqrt(v.numel())
    return m, half


@dataclass
class AssimResult:
    """What a filter run returns, batched over ``X`` experiments and ``K`` cycles.

    Attributes
    ----------
    mean_f, mean_a: forecast and analysis means ``(X, K, d)`` (at the observation times 1..K).
    spread_f, spread_a: ensemble spread ``sqrt(mean_i var_i)`` ``(X, K)`` (DAPPER's ``spread``).
    truth: ``(X, K + 1, d)``; burn_in: cycles left out of the time means; seconds: wall time of the run.
    method: a label.
    """

    mean_f: Tensor
    mean_a: Tensor
    spread_f: Tensor
    spread_a: Tensor
    truth: Tensor
    burn_in: int
    seconds: float = 0.0
    method: str = ""

    @property
    def rmse_a_series(self) -> Tensor:
        """Analysis RMSE per cycle ``(X, K)``."""
        return rmse_series(self.mean_a, self.truth[:, 1:])

    @property
    def rmse_f_series(self) -> Tensor:
        """Forecast RMSE per cycle ``(X, K)``."""
        return rmse_series(self.mean_f, self.truth[:, 1:])

    def time_mean(self, series: Tensor) -> Tensor:
        """Time mean over the cycles after burn-in: ``(X, K) -> (X,)``."""
        return series[:, self.burn_in:].mean(1)

    @property
    def rmse_a(self) -> Tensor:
        """Time-mean analysis RMSE per experiment ``(X,)``."""
        return self.time_mean(self.rmse_a_series)

    @property
    def rmse_f(self) -> Tensor:
        return self.time_mean(self.rmse_f_series)

    @property
    def spread_a_mean(self) -> Tensor:
        return self.time_mean(self.spread_a)

    @property
    def spread_f_mean(self) -> Tensor:
        return self.time_mean(self.spread_f)

    def summary(self, level: float = 0.95) -> dict[str, float]:
        """Means over experiments with their confidence half widths: rmse_a, rmse_a_ci, rmse_f, spread_a, ..."""
        out: dict[str, float] = {}
        for key, v in (("rmse_a", self.rmse_a), ("rmse_f", self.rmse_f), ("spread_a", self.spread_a_mean),
                       ("spread_f", self.spread_f_mean)):
            m, h = confidence_interval(v, level)
            out[key], out[key + "_ci"] = m, h
        out["seconds"] = self.seconds
        return out
