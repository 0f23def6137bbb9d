"""Dynamical systems, integrators, recurrent emulators and predictability metrics.

* systems: :class:`Lorenz63`, :class:`LorenzMonomial` (the seed's monomial form),
  :class:`Lorenz96`, :class:`Rossler` - ``nn.Module`` vector fields ``f(t, x)``.
* :func:`integrate` (RK4 / dopri5, fast batched paths), :class:`StateBlowUpError`.
* :func:`odeint`, :func:`odeint_event`, :func:`odeint_adjoint`: torchdiffeq's interface and
  conventions (tuple/0-d/complex states, 20 methods incl. implicit ones, events, adjoint gradients).
* data: :func:`make_dataset`, :class:`TrajectoryData`, :func:`ground_truth`.
* emulators: :class:`fcRNN` (the seed's), :class:`GRUNet`, :class:`LSTMNet`,
  :class:`Emulator`, :func:`make_emulator`; training on the engine:
  :class:`TrainConfig`, :func:`train_emulator` (builds, runs and returns the engine).
* predictability: :func:`lyapunov_spectrum`, :func:`emulator_lyapunov`,
  :func:`valid_prediction_time`, :func:`error_growth`, :func:`attractor_report`,
  :func:`finite_time_growth` (eigendistortions of the flow map).
* :func:`fit_greybox`: recover (sigma, rho, beta) by backpropagating through the integrator.
"""

from typing import TYPE_CHECKING

from difflens.tools.lazy import lazy_exports

_EXPORTS = {
    "Lorenz63": "systems", "LorenzMonomial": "systems", "Lorenz96": "systems", "Rossler": "systems",
    "LORENZ63_LYAPUNOV": "systems",
    "integrate": "integrators", "rk4_step": "integrators", "StateBlowUpError": "integrators",
    "check_finite_states": "integrators",
    "odeint": "odeint", "odeint_event": "odeint", "odeint_adjoint": "adjoint",
    "StiffnessWarning": "solvers",
    "make_dataset": "data", "TrajectoryData": "data", "ground_truth": "data",
    "attractor_initial_conditions": "data",
    "fcRNN": "emulators", "GRUNet": "emulators", "LSTMNet": "emulators", "Emulator": "emulators",
    "make_emulator": "emulators",
    "TrainConfig": "training", "WindowSampler": "training", "train_emulator": "training",
    "rollout_loss": "training", "validation_loss": "training",
    "lyapunov_spectrum": "lyapunov", "emulator_lyapunov": "lyapunov", "flow_step": "lyapunov",
    "LyapunovResult": "lyapunov",
    "nrmse": "metrics", "valid_prediction_time": "metrics", "error_growth": "metrics",
    "attractor_report": "metrics", "return_map": "metrics", "wasserstein_1d": "metrics",
    "marginal_histograms": "metrics",
    "fit_greybox": "greybox", "GreyboxResult": "greybox",
    "finite_time_growth": "predictability",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS, globals())

if TYPE_CHECKING:  # the lazy names, imported eagerly for type checkers and the API reference only
    from .systems import (
        Lorenz63 as Lorenz63, LorenzMonomial as LorenzMonomial, Lorenz96 as Lorenz96,
        Rossler as Rossler, LORENZ63_LYAPUNOV as LORENZ63_LYAPUNOV,
    )
    from .integrators import (
        integrate as integrate, rk4_step as rk4_step, StateBlowUpError as StateBlowUpError,
        check_finite_states as check_finite_states,
    )
    from .odeint import odeint as odeint, odeint_event as odeint_event
    from .adjoint import odeint_adjoint as odeint_adjoint
    from .solvers import StiffnessWarning as StiffnessWarning
    from .data import (
        make_dataset as make_dataset, TrajectoryData as TrajectoryData,
        ground_truth as ground_truth, attractor_initial_conditions as attractor_initial_conditions,
    )
    from .emulators import (
        fcRNN as fcRNN, GRUNet as GRUNet, LSTMNet as LSTMNet, Emulator as Emulator,
        make_emulator as make_emulator,
    )
    from .training import (
        TrainConfig as TrainConfig, WindowSampler as WindowSampler,
        train_emulator as train_emulator, rollout_loss as rollout_loss,
        validation_loss as validation_loss,
    )
    from .lyapunov import (
        lyapunov_spectrum as lyapunov_spectrum, emulator_lyapunov as emulator_lyapunov,
        flow_step as flow_step, LyapunovResult as LyapunovResult,
    )
    from .metrics import (
        nrmse as nrmse, valid_prediction_time as valid_prediction_time,
        error_growth as error_growth, attractor_report as attractor_report,
        return_map as return_map, wasserstein_1d as wasserstein_1d,
        marginal_histograms as marginal_histograms,
    )
    from .greybox import fit_greybox as fit_greybox, GreyboxResult as GreyboxResult
    from .predictability import finite_time_growth as finite_time_growth
