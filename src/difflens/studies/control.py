"""Study ``control``: optimal control through a differentiable model (seed 002, lines 3784-4010).

LQR against SciPy's Riccati solution, model-predictive control of a car around an obstacle, the
truck backer-upper trained through a learned emulator, and Lorenz-63 held on one lobe by MPC with
the true model and with a learned emulator.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .registry import study
from .settings import StudySettings, setting


@dataclass(frozen=True)
class ControlSettings(StudySettings):
    """Settings of the ``control`` study."""

    PRESETS = {"quick": {"fit_steps": 150, "transitions": 5000, "train_steps": 40, "ramp": 40, "eval_starts": 50,
                         "target_train_steps": 30, "mpc_starts": 2, "mpc_horizon": 8, "mpc_steps": 30,
                         "lorenz_starts": 4, "lorenz_time": 1.5, "lorenz_fit_steps": 150, "lorenz_horizon": 5,
                         "ensemble_fit_steps": 60, "ensemble_transitions": 1500},
               "full": {"train_steps": 2000, "lorenz_starts": 100, "lorenz_time": 20.0, "lorenz_plan_substeps": 5,
                        "mpc_iterations": 2, "planning_iterations": 30}}

    fit_steps: int = setting(2000, "Adam steps training the truck emulator on random moves", minimum=1)
    transitions: int = setting(40000, "random truck moves for the emulator (10% held out)", minimum=100)
    train_steps: int = setting(600, "Adam steps training the truck controller through the emulator", minimum=1)
    clip_grad: float = setting(1.0, "gradient-norm clip of the truck controller's steps", minimum=1e-9)
    batch_size: int = setting(64, "start poses per controller step", minimum=1)
    ramp: int = setting(500, "controller steps over which the start region grows to the full one", minimum=0)
    eval_starts: int = setting(200, "random start poses the controller is scored on", minimum=1)
    target_train_steps: int = setting(600, "Adam steps training the controller that takes the dock's position as input",
                                      minimum=1)
    target_range: float = setting(1.0, "docks anywhere on the wall with |y| <= this (trailer lengths)", minimum=0.0)
    mpc_starts: int = setting(8, "car start states planned for at once", minimum=1)
    mpc_horizon: int = setting(20, "MPC horizon (steps of 0.2 time units)", minimum=1)
    lqr_horizon: int = setting(60, "horizon of the MPC plan compared with LQR", minimum=1)
    mpc_steps: int = setting(60, "receding-horizon control steps of the car", minimum=1)
    mpc_iterations: int = setting(1, "L-BFGS steps (each up to 20 inner iterations) per car plan", minimum=1)
    lorenz_starts: int = setting(20, "Lorenz start states held on the lobe", minimum=1)
    lorenz_time: float = setting(5.0, "time units the Lorenz state must stay on the lobe", minimum=1.05)
    lorenz_horizon: int = setting(20, "Lorenz MPC horizon (steps of 0.05 time units; 20 = one time unit)", minimum=1)
    lorenz_fit_steps: int = setting(1500, "Adam steps training the Lorenz emulator", minimum=1)
    lorenz_plan_substeps: int = setting(1, "RK4 substeps per control step (0.05 time units) of the true Lorenz "
                                           "equations when they are the planning model (execution: 5)", minimum=1)
    ensemble_members: int = setting(5, "forward models in the ensemble of the uncertainty-in-planning demo", minimum=2)
    ensemble_fit_steps: int = setting(300, "Adam steps training each ensemble member", minimum=1)
    ensemble_transitions: int = setting(4000, "random point-mass moves the ensemble is trained on", minimum=100)
    planning_iterations: int = setting(15, "L-BFGS steps (each up to 20 inner iterations) of each ensemble plan",
                                       minimum=1)
    disagreement_weight: float = setting(1e5, "weight of the ensemble-disagreement penalty in the plan's cost",
                                         minimum=0.0)


def truck_emulator(env, transitions: int, fit_steps: int, generator, checkpoint_path=None, resume=False):
    """Fit a :class:`~difflens.control.ForwardModel` of the truck on random moves; returns the ModelFit."""
    from difflens.control import ForwardModel, ModelFit, random_transitions

    n = transitions
    s = env.uniform(n, [-0.5, -3.5, -2.2, -2.0], [5.0, 3.5, 2.2, 2.0], generator)
    s[:, 2] = s[:, 3] + env.uniform(n, [-1.6], [1.6], generator)[:, 0]
    S, A, S2 = random_transitions(env.step, s, env.low, env.high, generator)
    model = ForwardModel(4, 1, hidden=64, layers=2, generator=generator)
    fit = ModelFit(model, S, A, S2, batch_size=512, lr=3e-3, decay_steps=fit_steps, generator=generator)
    fit.fit(fit_steps, checkpoint_path=checkpoint_path, resume=resume)
    if fit.optimization.stop_reason == "interrupted":
        raise KeyboardInterrupt("interrupted during emulator training")
    return fit


def train_truck(seed: int, fit_steps: int = 2000, train_steps: int = 600, n_eval: int = 200, transitions: int = 40000,
                batch_size: int = 64, ramp: int = 500, clip_grad: float = 1.0, checkpoints=(None, None),
                resume: bool = False) -> dict:
    """The truck pipeline: emulator on random moves, controller trained through it, scored on the truth."""
    from difflens.control import Policy, Truck, TruckTraining, evaluate_truck
    from difflens.tools.rng import default_generator

    env = Truck()
    g = default_generator(seed=seed)
    fit = truck_emulator(env, transitions, fit_steps, g, checkpoints[0], resume)
    policy = Policy(4, env.low, env.high, hidden=64, scale=torch.tensor([4.0, 2.0, 1.0, 1.0], dtype=torch.float64),
                    generator=g)
    eval_g = default_generator(seed=seed + 1000)
    starts = env.sample_starts(n_eval, eval_g)
    outside = env.sample_starts(n_eval, eval_g, region="outside")
    before = evaluate_truck(env, policy, starts)
    training = TruckTraining(env, policy, fit.model, batch_size=batch_size, lr=1e-2, max_steps=100, ramp=ramp,
                             decay_steps=train_steps, root=True, clip_grad=clip_grad, generator=g)
    training.train(train_steps, checkpoint_path=checkpoints[1], resume=resume)
    if training.optimization.stop_reason == "interrupted":
        raise KeyboardInterrupt("interrupted during controller training")
    after = evaluate_truck(env, policy, starts)
    out = evaluate_truck(env, policy, outside)
    return {"env": env, "fit": fit, "training": training, "starts": starts, "before": before, "after": after,
            "outside": out, "emulator_error": fit.held_out_error(),
            "success_train": float(after["success"].double().mean()),
            "success_outside": float(out["success"].double().mean())}


def train_target_truck(seed: int, model, train_steps: int = 600, target_range: float = 1.0, n_eval: int = 200,
                       batch_size: int = 64, ramp: int = 500, clip_grad: float = 1.0, checkpoint_path=None,
                       resume: bool = False) -> dict:
    """One controller for docks anywhere on the wall: the dock's ``y`` is part of its input.

    Trained through ``model`` (the truck emulator) with docks uniform in ``|y| <= target_range``,
    each start pose drawn relative to its dock; scored on the true kinematics at ``n_eval`` random
    docks and at the origin.
    """
    from difflens.control import Policy, Truck, TruckTraining, evaluate_truck
    from difflens.tools.rng import default_generator

    env = Truck()
    g = default_generator(seed=seed + 500)
    policy = Policy(5, env.low, env.high, hidden=64, generator=g,
                    scale=torch.tensor([4.0, 2.0, 1.0, 1.0, 1.0], dtype=torch.float64))
    eval_g = default_generator(seed=seed + 1500)
    starts = env.sample_starts(n_eval, eval_g)
    ty = env.uniform(n_eval, [-target_range], [target_range], eval_g)[:, 0]
    starts[:, 1] += ty
    origin = env.sample_starts(n_eval, eval_g)
    training = TruckTraining(env, policy, model, batch_size=batch_size, lr=1e-2, max_steps=100, ramp=ramp,
                             decay_steps=train_steps, root=True, clip_grad=clip_grad,
                             target_range=(-target_range, target_range), generator=g)
    training.train(train_steps, checkpoint_path=checkpoint_path, resume=resume)
    if training.optimization.stop_reason == "interrupted":
        raise KeyboardInterrupt("interrupted during target-conditioned controller training")
    anywhere = evaluate_truck(env, policy, starts, target_y=ty)
    at_origin = evaluate_truck(env, policy, origin, target_y=torch.zeros(n_eval, dtype=torch.float64))
    return {"training": training, "target_y": ty, "anywhere": anywhere, "at_origin": at_origin,
            "success_anywhere": float(anywhere["success"].double().mean()),
            "success_at_origin": float(at_origin["success"].double().mean())}


def uncertainty_planning(seed: int, members: int = 5, fit_steps: int = 300, transitions: int = 4000,
                         weight: float = 1e5, starts: int = 16, horizon: int = 30, iterations: int = 30,
                         checkpoint_path=None, resume: bool = False) -> dict:
    """Plans through an ensemble with and without a penalty on its disagreement (issue item 5).

    The ensemble learns a point mass (``PointMass``, dt 0.1) from random moves whose states have
    positions in [-3, 3] and speeds in [-0.5, 0.5] (the training region); plans of ``horizon`` steps take
    it from ``x = -2.5`` to the origin, once by the ensemble's mean alone and once with
    ``weight * sum_t disagreement`` added (:func:`~difflens.control.disagreement_cost`). Each plan's
    model-predicted states are compared with what the true system does under the same actions.
    """
    from difflens.control import (Ensemble, ForwardModel, ModelFit, PointMass, TrajectoryOptimizer,
                                  disagreement_cost, random_transitions, rollout)
    from difflens.tools.rng import default_generator

    env = PointMass(dt=0.1, a_max=1.0)
    g = default_generator(seed=seed + 300)
    hi = torch.tensor([3.0, 3.0, 0.5, 0.5], dtype=torch.float64)
    lo = -hi
    S = env.uniform(transitions, lo.tolist(), hi.tolist(), g)
    S, A, S2 = random_transitions(env.step, S, env.low, env.high, g)
    ens = Ensemble([ForwardModel(4, 2, hidden=32, generator=g) for _ in range(members)])
    fit = ModelFit(ens, S, A, S2, batch_size=256, lr=3e-3, decay_steps=fit_steps, generator=g)
    fit.fit(fit_steps, checkpoint_path=checkpoint_path, resume=resume)
    if fit.optimization.stop_reason == "interrupted":
        raise KeyboardInterrupt("interrupted during ensemble training")
    s0 = torch.zeros(starts, 4, dtype=torch.float64)
    s0[:, 0] = -2.5
    s0[:, 1] = torch.linspace(-1.0, 1.0, starts, dtype=torch.float64)
    out = {"box": (lo, hi), "held_out_error": fit.held_out_error()}
    for label, w in (("plain", 0.0), ("penalised", weight)):
        plan = TrajectoryOptimizer(ens, env.cost, s0, horizon, env.low, env.high,
                                   extra_cost=disagreement_cost(ens, w) if w > 0 else None)
        plan.solve(iterations)
        a = plan.actions
        with torch.no_grad():
            model_states, true_states = rollout(ens, s0, a), rollout(env.step, s0, a)
            model_cost = env.cost(model_states[:, :-1], a).sum(1)
            true_cost = env.cost(true_states[:, :-1], a).sum(1)
        inside = lambda st: float(((st >= lo) & (st <= hi)).all(-1).double().mean())
        out[label] = {"model": model_states, "true": true_states, "inside": inside(model_states[:, 1:]),
                      "inside_true": inside(true_states[:, 1:]),
                      "model_error": float((model_states - true_states).norm(dim=-1).mean()),
                      "cost_gap": float(((model_cost - true_cost).abs() / true_cost).mean()),
                      "true_cost": float(true_cost.mean())}
    return out


def lorenz_emulator(env, generator, n: int = 20000, steps: int = 1500):
    """A one-step model of the controlled Lorenz map, fitted on random controls around the attractor."""
    from difflens.control import ForwardModel, ModelFit, random_transitions

    s = env.sample_starts(n, generator) + 2.0 * torch.randn(n, 3, generator=generator, dtype=env.dtype)
    S, A, S2 = random_transitions(env.step, s, env.low, env.high, generator)
    model = ForwardModel(3, 3, hidden=64, layers=2, generator=generator)
    fit = ModelFit(model, S, A, S2, batch_size=512, lr=3e-3, decay_steps=steps, generator=generator)
    fit.fit(steps)
    return fit


def lorenz_hold(starts: int, seed: int, model: str = "true", time_units: float = 20.0, horizon: int = 20,
                iterations: int = 1, fit_steps: int = 1500, margin: float = 3.0, plan_substeps: int | None = None,
                checkpoint_path=None, resume: bool = False) -> dict:
    """MPC keeping Lorenz-63 on the ``x > 0`` lobe from ``starts`` attractor points.

    Success: ``x > 0`` at every control step after the first time unit. Returns success rate,
    mean control energy ``mean_t |u|^2`` and the trajectories. The horizon of 20 steps (one time
    unit) matters: with 10, starts on the other lobe were still crossing at ``t = 1`` with every
    action at its bound. ``plan_substeps``: RK4 substeps per control step of the true equations
    when they are the planning model (default the environment's 5; the execution always uses 5).
    """
    from difflens.control import MPC, ControlledLorenz
    from difflens.tools.rng import default_generator

    env = ControlledLorenz(margin=margin)
    g = default_generator(seed=seed)
    s0 = env.sample_starts(starts, g)
    planner = env.step if plan_substeps is None else ControlledLorenz(margin=margin, substeps=plan_substeps).step
    fit = None
    if model == "emulator":
        fit = lorenz_emulator(env, g, steps=fit_steps)
        planner = fit.model
    mpc = MPC(planner, env.cost, horizon, env.low, env.high, iterations=iterations)
    n = int(round(time_units / env.dt))
    out = mpc.run(s0, n, true_step=env.step, checkpoint_path=checkpoint_path, resume=resume)
    settle = int(round(1.0 / env.dt))
    ok = env.on_lobe(out["states"][:, settle:]).all(1)
    return {"success": float(ok.double().mean()), "energy": float((out["actions"] ** 2).sum(-1).mean()),
            "states": out["states"], "dt": env.dt, "fit": fit}


@study("control", title="Control through a differentiable model: LQR, MPC, the truck backer-upper, Lorenz",
       settings=ControlSettings,
       headline=(("truck_docking_success_rate", "truck docking success (200 starts)"),
                 ("mpc_vs_reference_cost_ratio", "MPC cost / exact LQR cost"),
                 ("lqr_gain_error", "LQR gain error vs SciPy")),
       figure="truck_dockings", order=45,
       description="Optimal control as optimisation through a forward model: the summed cost over a horizon "
                   "minimised by backpropagation (the Kelley-Bryson adjoint), model-predictive control, and the "
                   "truck backer-upper of Nguyen & Widrow trained through a learned emulator.")
def run(ctx) -> None:
    """Run the study into ``ctx`` (a :class:`~difflens.studies.context.StudyContext`: settings,
    seed, device, output folder and report).
    """
    import numpy as np
    import scipy.linalg

    from difflens.control import MPC, Car, PointMass, TrajectoryOptimizer, lqr
    from difflens.plot import control as plots

    cfg = ctx.settings

    ctx.heading("LQR against SciPy's Riccati solution")
    pm = PointMass(a_max=1e3)
    K, P = lqr(pm.A, pm.B, pm.Q, pm.R)
    Ps = scipy.linalg.solve_discrete_are(*(M.numpy() for M in (pm.A, pm.B, pm.Q, pm.R)))
    Ks = np.linalg.solve(pm.R.numpy() + pm.B.numpy().T @ Ps @ pm.B.numpy(), pm.B.numpy().T @ Ps @ pm.A.numpy())
    ctx.metric("lqr_gain_error", float(np.abs(K.numpy() - Ks).max() / np.abs(Ks).max()))
    s0 = pm.sample_starts(8, ctx.generator(1)) * 0.2
    with ctx.phase("MPC on the linear system"):
        tr = TrajectoryOptimizer(pm.step, pm.cost, s0, cfg.lqr_horizon, pm.low, pm.high, terminal=lambda s: ((s @ P) * s).sum(-1))
        tr.solve(40)
    exact = (s0 @ P * s0).sum(-1)
    ctx.metric("mpc_vs_reference_cost_ratio", float((tr.cost_of_plan() / exact).max()))
    ctx.metric("mpc_vs_lqr_first_action_error", float((tr.actions[:, 0] + s0 @ K.T).abs().max()))
    ctx.text(f"The cost of the {cfg.lqr_horizon}-step plan found by L-BFGS through the model (with the Riccati cost-to-go "
             "as terminal cost) over the exact infinite-horizon LQR cost s'Ps: a ratio of 1 is optimal. "
             "`benchmarks/control.py mpc` compares the nonlinear car problem with SciPy's SLSQP.")

    ctx.heading("Model-predictive control around an obstacle")
    car = Car()
    starts = car.sample_starts(cfg.mpc_starts, ctx.generator(2))
    mpc = MPC(car.step, car.cost, cfg.mpc_horizon, car.low, car.high, terminal=lambda s: 10 * car.terminal_cost(s),
              iterations=cfg.mpc_iterations)
    with ctx.phase("receding-horizon MPC of the car"):
        out = mpc.run(starts, cfg.mpc_steps, checkpoint_path=ctx.checkpoint("car_mpc"), resume=ctx.resume)
    ctx.figure("car_mpc", plots.car_trajectories(out["states"], car.obstacles, car.target),
               "Receding-horizon MPC: each step plans the next actions by backpropagating the summed cost "
               "through the car's kinematics, applies the first and warm-starts the next plan from the rest.")
    ctx.metric("car_min_obstacle_clearance", float(-car.obstacle_depth(out["states"]).max()))
    ctx.metric("car_final_distance", float((out["states"][:, -1, :2] - car.target).norm(dim=-1).mean()))

    ctx.heading("The truck backer-upper, trained through a learned emulator")
    with ctx.phase("truck emulator and controller"):
        r = train_truck(ctx.seed, cfg.fit_steps, cfg.train_steps, cfg.eval_starts, cfg.transitions, cfg.batch_size,
                        cfg.ramp, cfg.clip_grad, checkpoints=(ctx.checkpoint("truck_emulator"), ctx.checkpoint("truck_controller")),
                        resume=ctx.resume)
    after, before = r["after"], r["before"]
    ctx.metric("truck_emulator_held_out_error", r["emulator_error"])
    ctx.metric("truck_docking_success_rate", r["success_train"])
    ctx.metric("truck_docking_success_rate_before_training", float(before["success"].double().mean()))
    ctx.metric("truck_docking_success_rate_outside_region", r["success_outside"])
    ctx.metric("truck_final_position_error", float(after["position_error"].median()))
    ctx.metric("truck_final_angle_error_deg", float(after["angle_error_deg"].median()))
    ctx.metric("truck_jackknife_rate", float(after["jackknifed"].double().mean()))
    ctx.metric("truck_training_seconds", r["training"].optimization.history.seconds)
    ctx.figure("truck_dockings", plots.truck_dockings(before["states"], after["states"], before["success"].numpy(),
                                                       after["success"].numpy()),
               "Paths of the trailer's rear from random start poses, before and after training the controller "
               "by backpropagating the final docking error through the unrolled emulator and controller. "
               "Green: docked (within 0.1 trailer lengths and 10 degrees, no jack-knife).")
    dist = r["starts"][:, :2].norm(dim=-1)
    ctx.figure("truck_success_vs_distance", plots.success_vs_distance(dist, after["success"].double()),
               "Success rate against the start's distance from the dock, inside the training region.")
    best = int(torch.argmax(after["success"].double() * dist))
    steps = int(after["steps"][best]) + 1
    ctx.animation("truck_docking", plots.animate_docking(after["states"][best, :steps]),
                  "One docking by the trained controller (the farthest successful start).")

    ctx.heading("One controller for any dock: the target as part of the state")
    with ctx.phase("target-conditioned truck controller"):
        rt = train_target_truck(ctx.seed, r["fit"].model, cfg.target_train_steps, cfg.target_range, cfg.eval_starts,
                                cfg.batch_size, cfg.ramp, cfg.clip_grad, checkpoint_path=ctx.checkpoint("truck_target"),
                                resume=ctx.resume)
    ctx.metric("truck_target_docking_success_rate", rt["success_anywhere"])
    ctx.metric("truck_target_docking_success_rate_at_origin", rt["success_at_origin"])
    ctx.metric("truck_target_final_position_error", float(rt["anywhere"]["position_error"].median()))
    ctx.figure("truck_target_dockings", plots.target_dockings(rt["anywhere"]["states"][:60], rt["target_y"][:60],
                                                              rt["anywhere"]["success"][:60].numpy()),
               f"One controller whose input includes the dock's position y (uniform in |y| <= {cfg.target_range}), "
               "trained through the same emulator; each start is drawn relative to its own dock (dots on the wall).")

    ctx.heading("Uncertainty in planning: an ensemble and a disagreement penalty")
    with ctx.phase("ensemble planning with and without the disagreement penalty"):
        u = uncertainty_planning(ctx.seed, cfg.ensemble_members, cfg.ensemble_fit_steps, cfg.ensemble_transitions,
                                 cfg.disagreement_weight, iterations=cfg.planning_iterations,
                                 checkpoint_path=ctx.checkpoint("ensemble"), resume=ctx.resume)
    for label in ("plain", "penalised"):
        ctx.metric(f"planning_inside_region_{label}", u[label]["inside"])
        ctx.metric(f"planning_model_error_{label}", u[label]["model_error"])
        ctx.metric(f"planning_cost_gap_{label}", u[label]["cost_gap"])
    ctx.figure("planning_uncertainty",
               plots.planning_uncertainty({f"{k}: {u[k]['inside']:.0%} of planned states in the grey region":
                                           (u[k]["model"], u[k]["true"]) for k in ("plain", "penalised")}, u["box"]),
               "Plans through a 5-member ensemble of point-mass models trained on random moves inside the grey box "
               "(speeds |v| <= 0.5). Dashed: the states the ensemble predicts for the plan; solid: what the true "
               "system does under the same actions. Without the penalty the plan leaves the box and the model's "
               "prediction drifts from the truth; penalising the members' disagreement keeps it where the model "
               "was trained and its prediction honest.")

    ctx.heading("Lorenz-63 held on one lobe")
    series = {}
    for model in ("true", "emulator"):
        with ctx.phase(f"Lorenz MPC with the {model} model"):
            lr = lorenz_hold(cfg.lorenz_starts, ctx.seed + 7, model=model, time_units=cfg.lorenz_time,
                             horizon=cfg.lorenz_horizon, fit_steps=cfg.lorenz_fit_steps,
                             plan_substeps=cfg.lorenz_plan_substeps if model == "true" else None,
                             checkpoint_path=ctx.checkpoint(f"lorenz_{model}"), resume=ctx.resume)
        ctx.metric(f"lorenz_control_success_rate_{model}", lr["success"])
        ctx.metric(f"lorenz_control_energy_{model}", lr["energy"])
        series[f"planning with the {model} model: {lr['success']:.0%} held"] = lr["states"]
    ctx.figure("lorenz_lobe", plots.lorenz_lobe(series, 0.05),
               "x(t) under MPC with an additive control (|u_i| <= 20) that keeps the state on the x > 0 lobe; "
               "planning with the true equations and with a learned one-step emulator, executing on the truth.")
