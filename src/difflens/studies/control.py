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
                         "mpc_starts": 2, "mpc_horizon": 8, "mpc_steps": 30, "lorenz_starts": 4, "lorenz_time": 1.5,
                         "lorenz_fit_steps": 150, "lorenz_horizon": 5},
               "full": {"train_steps": 2000, "lorenz_starts": 100, "lorenz_time": 20.0}}

    fit_steps: int = setting(2000, "Adam steps training the truck emulator on random moves", minimum=1)
    transitions: int = setting(40000, "random truck moves for the emulator (10% held out)", minimum=100)
    train_steps: int = setting(1000, "Adam steps training the truck controller through the emulator", minimum=1)
    batch_size: int = setting(64, "start poses per controller step", minimum=1)
    ramp: int = setting(500, "controller steps over which the start region grows to the full one", minimum=0)
    eval_starts: int = setting(200, "random start poses the controller is scored on", minimum=1)
    mpc_starts: int = setting(8, "car start states planned for at once", minimum=1)
    mpc_horizon: int = setting(20, "MPC horizon (steps of 0.2 time units)", minimum=1)
    lqr_horizon: int = setting(60, "horizon of the MPC plan compared with LQR", minimum=1)
    mpc_steps: int = setting(60, "receding-horizon control steps of the car", minimum=1)
    lorenz_starts: int = setting(20, "Lorenz start states held on the lobe", minimum=1)
    lorenz_time: float = setting(5.0, "time units the Lorenz state must stay on the lobe", minimum=1.05)
    lorenz_horizon: int = setting(10, "Lorenz MPC horizon (steps of 0.05 time units)", minimum=1)
    lorenz_fit_steps: int = setting(1500, "Adam steps training the Lorenz emulator", minimum=1)


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


def train_truck(seed: int, fit_steps: int = 2000, train_steps: int = 800, n_eval: int = 200, transitions: int = 40000,
                batch_size: int = 64, ramp: int = 500, checkpoints=(None, None), resume: bool = False) -> dict:
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
                             decay_steps=train_steps, generator=g)
    training.train(train_steps, checkpoint_path=checkpoints[1], resume=resume)
    if training.optimization.stop_reason == "interrupted":
        raise KeyboardInterrupt("interrupted during controller training")
    after = evaluate_truck(env, policy, starts)
    out = evaluate_truck(env, policy, outside)
    return {"env": env, "fit": fit, "training": training, "starts": starts, "before": before, "after": after,
            "outside": out, "emulator_error": fit.held_out_error(),
            "success_train": float(after["success"].double().mean()),
            "success_outside": float(out["success"].double().mean())}


def lorenz_emulator(env, generator, n: int = 20000, steps: int = 1500):
    """A one-step model of the controlled Lorenz map, fitted on random controls around the attractor."""
    from difflens.control import ForwardModel, ModelFit, random_transitions

    s = env.sample_starts(n, generator) + 2.0 * torch.randn(n, 3, generator=generator, dtype=env.dtype)
    S, A, S2 = random_transitions(env.step, s, env.low, env.high, generator)
    model = ForwardModel(3, 3, hidden=64, layers=2, generator=generator)
    fit = ModelFit(model, S, A, S2, batch_size=512, lr=3e-3, decay_steps=steps, generator=generator)
    fit.fit(steps)
    return fit


def lorenz_hold(starts: int, seed: int, model: str = "true", time_units: float = 20.0, horizon: int = 10,
                iterations: int = 1, fit_steps: int = 1500, checkpoint_path=None, resume: bool = False) -> dict:
    """MPC keeping Lorenz-63 on the ``x > 0`` lobe from ``starts`` attractor points.

    Success: ``x > 0`` at every control step after the first time unit. Returns success rate,
    mean control energy ``mean_t |u|^2`` and the trajectories.
    """
    from difflens.control import MPC, ControlledLorenz
    from difflens.tools.rng import default_generator

    env = ControlledLorenz()
    g = default_generator(seed=seed)
    s0 = env.sample_starts(starts, g)
    planner = env.step
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
              iterations=2)
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
                        cfg.ramp, checkpoints=(ctx.checkpoint("truck_emulator"), ctx.checkpoint("truck_controller")),
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

    ctx.heading("Lorenz-63 held on one lobe")
    series = {}
    for model in ("true", "emulator"):
        with ctx.phase(f"Lorenz MPC with the {model} model"):
            lr = lorenz_hold(cfg.lorenz_starts, ctx.seed + 7, model=model, time_units=cfg.lorenz_time,
                             horizon=cfg.lorenz_horizon, fit_steps=cfg.lorenz_fit_steps,
                             checkpoint_path=ctx.checkpoint(f"lorenz_{model}"), resume=ctx.resume)
        ctx.metric(f"lorenz_control_success_rate_{model}", lr["success"])
        ctx.metric(f"lorenz_control_energy_{model}", lr["energy"])
        series[f"planning with the {model} model: {lr['success']:.0%} held"] = lr["states"]
    ctx.figure("lorenz_lobe", plots.lorenz_lobe(series, 0.05),
               "x(t) under MPC with an additive control (|u_i| <= 20) that keeps the state on the x > 0 lobe; "
               "planning with the true equations and with a learned one-step emulator, executing on the truth.")
