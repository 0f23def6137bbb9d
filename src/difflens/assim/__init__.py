"""Data assimilation: twin experiments, Kalman, ensemble, particle and variational filters.

* :class:`HMM` (a twin-experiment setup), :func:`simulate` (truth and observations),
  :func:`lorenz63_sakov2012`, :func:`lorenz96_sakov2008` (DAPPER's reference setups),
  :func:`climatology`.
* :func:`kalman_filter`, :func:`rts_smoother` (linear-Gaussian, batched).
* :class:`EnKF` (``"sqrt"``: the ETKF, or ``"pertobs"``), :class:`LETKF`, :class:`ExtKF`,
  :class:`Var3D`, :class:`ParticleFilter`, cycled by :func:`run_filter`;
  :class:`Var4D` (strong-constraint 4D-Var on the engine with L-BFGS); :class:`IEnKS` (iterative
  ensemble Kalman smoother, Gauss-Newton in ensemble space).
* :class:`EmulatorModel`: a trained difflens emulator as the forecast model (augmented window state).
* :class:`StateSpaceGP`: a Matérn GP over time solved by the Kalman filter and RTS smoother in O(N).
* :class:`AssimResult`, :func:`confidence_interval`: DAPPER's statistics (time-mean RMSE and spread).
"""

from difflens.tools.lazy import lazy_exports

_EXPORTS = {
    "HMM": "hmm", "TwinData": "hmm", "simulate": "hmm", "lorenz63_sakov2012": "hmm",
    "lorenz96_sakov2008": "hmm", "check_spd": "hmm", "climatology": "hmm",
    "AssimResult": "stats", "confidence_interval": "stats", "rmse_series": "stats",
    "kalman_filter": "kalman", "rts_smoother": "kalman", "KalmanResult": "kalman",
    "EnKF": "filters", "ETKF": "filters", "LETKF": "filters", "ExtKF": "filters", "Var3D": "filters",
    "ParticleFilter": "filters", "ParticleWeightsError": "filters", "FilterDivergenceError": "filters",
    "run_filter": "filters", "gaspari_cohn": "filters", "random_rotation": "filters",
    "tangent_linear": "filters",
    "Var4D": "var4d",
    "IEnKS": "ienks",
    "EmulatorModel": "emulated",
    "StateSpaceGP": "ssgp",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS, globals())
