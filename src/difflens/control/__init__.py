"""Control through a differentiable model: MPC, LQR, learned forward models, policies.

* environments: :class:`PointMass` (linear), :class:`Car` (obstacles), :class:`Pendulum`,
  :class:`Truck` (the truck backer-upper), :class:`ControlledLorenz`; batched over start states.
* :func:`dare`, :func:`lqr`, :func:`linearize`: linear-quadratic regulators.
* :class:`TrajectoryOptimizer`, :class:`MPC`: planning by backpropagation through a model on the
  engine, with bounds, warm starts and receding horizon; :class:`PlanBlowUpError`.
* :class:`ForwardModel`, :class:`Ensemble`, :class:`ModelFit`, :func:`random_transitions`:
  learned one-step models trained on random moves.
* :class:`Policy`, :class:`TruckTraining`, :func:`evaluate_truck`, :func:`with_target`,
  :class:`ClippedAdam`: a truck controller trained through the unrolled (learned) model, for one
  dock or (the dock's position as an input) for any dock on the wall.
"""

from typing import TYPE_CHECKING

from difflens.tools.lazy import lazy_exports

_EXPORTS = {
    "Environment": "environments", "PointMass": "environments", "Car": "environments", "Pendulum": "environments",
    "Truck": "environments", "ControlledLorenz": "environments", "unroll_truck": "environments",
    "check_finite": "environments",
    "dare": "riccati", "lqr": "riccati", "linearize": "riccati",
    "TrajectoryOptimizer": "mpc", "MPC": "mpc", "disagreement_cost": "mpc", "PlanBlowUpError": "mpc", "rollout": "mpc",
    "ForwardModel": "models", "Ensemble": "models", "ModelFit": "models", "random_transitions": "models",
    "TransitionSampler": "models",
    "Policy": "policy", "ClippedAdam": "policy", "TruckTraining": "policy", "StartSampler": "policy",
    "evaluate_truck": "policy", "with_target": "policy",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS, globals())

if TYPE_CHECKING:  # the lazy names, imported eagerly for type checkers and the API reference only
    from .environments import (
        Environment as Environment, PointMass as PointMass, Car as Car, Pendulum as Pendulum,
        Truck as Truck, ControlledLorenz as ControlledLorenz, unroll_truck as unroll_truck,
        check_finite as check_finite,
    )
    from .riccati import dare as dare, lqr as lqr, linearize as linearize
    from .mpc import (
        TrajectoryOptimizer as TrajectoryOptimizer, MPC as MPC,
        disagreement_cost as disagreement_cost, PlanBlowUpError as PlanBlowUpError,
        rollout as rollout,
    )
    from .models import (
        ForwardModel as ForwardModel, Ensemble as Ensemble, ModelFit as ModelFit,
        random_transitions as random_transitions, TransitionSampler as TransitionSampler,
    )
    from .policy import (
        Policy as Policy, TruckTraining as TruckTraining, StartSampler as StartSampler,
        evaluate_truck as evaluate_truck, ClippedAdam as ClippedAdam, with_target as with_target,
    )
