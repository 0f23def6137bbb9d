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

from typing import TYPE_CHECKING

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

if TYPE_CHECKING:  # the lazy names, imported eagerly for type checkers and the API reference only
    from .hmm import (
        HMM as HMM, TwinData as TwinData, simulate as simulate,
        lorenz63_sakov2012 as lorenz63_sakov2012, lorenz96_sakov2008 as lorenz96_sakov2008,
        check_spd as check_spd, climatology as climatology,
    )
    from .stats import (
        AssimResult as AssimResult, confidence_interval as confidence_interval,
        rmse_series as rmse_series,
    )
    from .kalman import (
        kalman_filter as kalman_filter, rts_smoother as rts_smoother, KalmanResult as KalmanResult,
    )
    from .filters import (
        EnKF as EnKF, ETKF as ETKF, LETKF as LETKF, ExtKF as ExtKF, Var3D as Var3D,
        ParticleFilter as ParticleFilter, ParticleWeightsError as ParticleWeightsError,
        FilterDivergenceError as FilterDivergenceError, run_filter as run_filter,
        gaspari_cohn as gaspari_cohn, random_rotation as random_rotation,
        tangent_linear as tangent_linear,
    )
    from .var4d import Var4D as Var4D
    from .ienks import IEnKS as IEnKS
    from .emulated import EmulatorModel as EmulatorModel
    from .ssgp import StateSpaceGP as StateSpaceGP
