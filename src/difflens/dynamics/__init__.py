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
