"""Study ``lorenz``: learn Lorenz-63 with a recurrent emulator and measure how long it stays right.

The seed's workflow (a recurrent net fed 15 true states, asked to continue the
trajectory; the seed used a ReLU ``nn.RNN``, the default here is an LSTM of the
same layout, which reaches the VPT target in the time budget) made quantitative: a tight-tolerance float64 ground truth,
held-out initial conditions, valid prediction time in Lyapunov times, the
Lyapunov spectra of the system and of the emulator, attractor statistics of
long free runs, finite-time growth from eigendistortions, and grey-box
recovery of (sigma, rho, beta) by backpropagation through the integrator.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from .context import limit_threads
from .registry import study
from .settings import StudySettings, setting

LAMBDA1 = 0.9056  # Lorenz-63's largest Lyapunov exponent (literature), for Lyapunov-time units


@dataclass(frozen=True)
class LorenzSettings(StudySettings):
    """Settings of the ``lorenz`` study: quick (the tour, about a minute), default (<= 5 min on 2 cores),
    full (the seed's scale)."""

    PRESETS = {
        "quick": dict(n_train=16, n_val=4, n_test=32, train_samples=1000, test_lt=8.0, iterations=1200,
                      snapshots=5, lyap_traj=16, lyap_steps=300, emu_lyap_steps=200, free_steps=2000,
                      greybox_noise=(0.0, 0.1), greybox_traj=2, greybox_samples=201, ftle_ics=2,
                      ftle_horizons=(0.5, 1.0)),
        "full": dict(n_train=128, train_samples=4000, iterations=40000, batch=256, lyap_steps=10000,
                     emu_lyap_steps=5000, ftle_ics=8, ftle_horizons=(0.5, 1.0, 2.0, 4.0),
                     greybox_noise=(0.0, 0.01, 0.1, 0.3, 1.0)),
    }

    n_train: int = setting(64, "training trajectories", minimum=1)
    n_val: int = setting(16, "validation trajectories", minimum=1)
    n_test: int = setting(128, "held-out test trajectories (initial conditions for VPT)", minimum=1)
    train_samples: int = setting(2000, "samples per training trajectory, dt = 0.01 apart", minimum=20)
    test_lt: float = setting(15.0, "forecast horizon of the test trajectories", unit="Lyapunov times",
                             minimum=0.5)
    kind: str = setting("lstm", "emulator cell (rnn is the seed's ReLU fcRNN)", choices=("lstm", "gru", "rnn"))
    hidden: int = setting(64, "hidden units per layer", minimum=1)
    layers: int = setting(1, "recurrent layers", minimum=1, maximum=8)
    iterations: int = setting(15000, "Adam steps of emulator training", minimum=1)
    batch: int = setting(128, "windows per training batch", minimum=1)
    rollout: int = setting(1, "steps of the rollout loss", minimum=1)
    rollout_from: float = setting(0.0, "fraction of training after which the rollout loss starts",
                                  minimum=0.0, maximum=1.0)
    noise: float = setting(0.0, "input noise std during training (normalised units)", minimum=0.0)
    recurrent_init: float = setting(0.0, "scale of the recurrent weights at initialisation (0: default init)",
                                    minimum=0.0)
    lr: float = setting(2e-2, "peak Adam learning rate (cosine decay)", minimum=1e-8, maximum=1.0)
    snapshots: int = setting(12, "emulator snapshots kept for the training animations", minimum=1)
    lyap_traj: int = setting(32, "trajectories averaged for the system's Lyapunov spectrum", minimum=1)
    lyap_steps: int = setting(2500, "steps of the system's Lyapunov spectrum", minimum=10)
    emu_lyap_steps: int = setting(1500, "steps of the emulator's Lyapunov spectrum", minimum=10)
    free_steps: int = setting(10000, "steps of the emulator's long free run", minimum=100)
    greybox_noise: tuple[float, ...] = setting((0.0, 0.1, 1.0), "observation noise levels of the grey-box fits",
                                               unit="state units", minimum=0.0)
    greybox_traj: int = setting(4, "trajectories observed by the grey-box fit", minimum=1)
    greybox_samples: int = setting(401, "samples per grey-box trajectory", minimum=21)
    ftle_ics: int = setting(4, "initial conditions averaged for finite-time growth", minimum=1)
    ftle_horizons: tuple[float, ...] = setting((0.5, 1.0, 2.0), "horizons of the finite-time growth",
                                               unit="model time", minimum=0.01)


def _ground_truth(ctx, s):
    from difflens.dynamics import Lorenz63, integrate, make_dataset
    from difflens.dynamics.metrics import valid_prediction_time

    dt, context = 0.01, 15
    test_samples = context + math.ceil(s["test_lt"] / LAMBDA1 / dt) + 1
    t0 = time.perf_counter()
    data = make_dataset(ctx.generator(0), n_train=s["n_train"], n_val=s["n_val"], n_test=s["n_test"],
                        train_samples=s["train_samples"], test_samples=test_samples, dt=dt)
    ctx.log(f"ground truth: {s['n_train']}+{s['n_val']}+{s['n_test']} trajectories, dopri5 rtol=atol=1e-10 "
            f"float64 ({time.perf_counter() - t0:.1f} s)")
    # the RK4 ceiling: a dt = 0.01 RK4 integration against the tight reference, from the same states
    test = data.test[:, context - 1:]
    with torch.no_grad():
        rk4 = integrate(Lorenz63(), test[:, 0], torch.arange(test.shape[1], dtype=torch.float64) * dt)
    rk4 = rk4.transpose(0, 1)[:, 1:]
    ceil = valid_prediction_time(rk4, test[:, 1:], data.std, dt, LAMBDA1)
    ceil03 = valid_prediction_time(rk4, test[:, 1:], data.std, dt, LAMBDA1, threshold=0.3)
    return data, context, ceil, ceil03, rk4


def _train(ctx, s, data, context):
    from difflens.dynamics import TrainConfig, make_emulator, train_emulator

    em = make_emulator(s["kind"], s["hidden"], s["layers"], context, data, inputs="state", target="increment",
                       recurrent_init=s["recurrent_init"], generator=ctx.generator(1), device=ctx.device)
    cfg = TrainConfig(iterations=s["iterations"], batch_size=s["batch"], rollout_steps=s["rollout"],
                      rollout_from=s["rollout_from"], noise=s["noise"], lr=s["lr"])
    with ctx.phase("training the emulator"):
        opt = train_emulator(em, data.train, cfg, ctx.generator(2), val=data.val,
                             val_every=max(1, s["iterations"] // 20),
                             snapshot_every=max(1, s["iterations"] // s["snapshots"]),
                             progress=ctx.progress_label("training emulator"),
                             checkpoint_path=ctx.checkpoint("emulator"), resume=ctx.resume)
    if not opt.finished:  # returned interrupted outside a study's signal handling (e.g. a library call)
        raise KeyboardInterrupt(f"emulator training interrupted at iteration {opt.iteration}")
    return em, opt, cfg, opt.history.seconds


def _forecasts(em, data, context):
    """Free-running forecasts ``(n_test, T - context, 3)`` from the first ``context`` states of each test run."""
    test = data.test.to(em.mean)
    horizon = test.shape[1] - context
    with torch.no_grad():
        pred = em.rollout(test[:, :context], horizon, max_abs=None)
    return pred.to("cpu", torch.float64), data.test[:, context:]


@study("lorenz", title="Learning a chaotic system: Lorenz-63, recurrent emulators and how long they stay right",
       settings=LorenzSettings,
       headline=(("vpt_median_lyapunov_times", "median VPT (Lyapunov times)"),
                 ("vpt_ceiling_rk4_lyapunov_times", "RK4 dt=0.01 ceiling (LT)"),
                 ("lambda1_true", "lambda1 of Lorenz-63"), ("lambda1_emulator", "lambda1 of the emulator"),
                 ("free_run_on_attractor", "free run on the attractor")),
       figure="error_growth", order=20,
       description="Ground truth from a tight-tolerance float64 integration; a recurrent emulator (an LSTM by "
                   "default, the seed's ReLU RNN with --set kind=rnn) trained on context windows of 15 states; "
                   "valid prediction time on held-out initial conditions; "
                   "Lyapunov spectra of the system and of the emulator; attractor statistics of free runs; "
                   "finite-time growth by eigendistortions; grey-box recovery of sigma, rho and beta.")
def run(ctx) -> None:
    """Run the study into ``ctx`` (a :class:`~difflens.studies.context.StudyContext`: settings,
    seed, device, output folder and report).
    """
    s = ctx.settings.to_dict()
    with limit_threads(1):
        _run(ctx, s)


def _run(ctx, s) -> None:
    from difflens.dynamics import (
        Lorenz63,
        attractor_report,
        emulator_lyapunov,
        error_growth,
        flow_step,
        lyapunov_spectrum,
    )
    from difflens.dynamics.metrics import (
        marginal_histograms,
        return_map,
        return_map_distance,
        valid_prediction_time,
    )
    from difflens.plot import dynamics as P

    start = time.perf_counter()

    # ---------------------------------------------------------------- data and the RK4 ceiling
    data, context, ceil, ceil03, rk4 = _ground_truth(ctx, s)
    dt = data.dt
    ctx.heading("Ground truth")
    ctx.text(f"Lorenz-63 (sigma=10, rho=28, beta=8/3). Initial conditions drawn at random and spun up for 20 time "
             f"units onto the attractor; dopri5 at rtol=atol=1e-10 in float64, sampled every dt={dt}. "
             f"{s['n_train']} training, {s['n_val']} validation and {s['n_test']} test trajectories (disjoint). "
             f"Even a float64 RK4 integration with dt=0.01 leaves the reference after a median of "
             f"{float(ceil.median()):.2f} Lyapunov times (NRMSE 0.5; {float(ceil03.median()):.2f} at 0.3): "
             "that is the ceiling for any emulator stepping at this dt.")
    ctx.metric("vpt_ceiling_rk4_lyapunov_times", float(ceil.median()))
    ctx.metric("vpt_ceiling_rk4_threshold_0.3_lyapunov_times", float(ceil03.median()))

    # ---------------------------------------------------------------- Lyapunov spectrum of the system
    f = Lorenz63(device=ctx.device)
    x0 = data.train[: s["lyap_traj"], -1].to(ctx.device)
    t0 = time.perf_counter()
    lt = lyapunov_spectrum(flow_step(f, dt), x0, n_steps=s["lyap_steps"], dt=dt, transient=500)
    ctx.log(f"Lyapunov spectrum of Lorenz-63: {[round(v, 4) for v in lt.exponents.tolist()]} "
            f"({time.perf_counter() - t0:.1f} s)")
    ctx.metric("lambda1_true", lt.lambda1)
    ctx.metric("lambda1_true_stderr", float(lt.stderr[0]))
    ctx.metric("lyapunov_spectrum_true", lt.exponents.tolist())
    ctx.metric("lyapunov_sum_true", lt.sum)
    ctx.metric("lyapunov_sum_expected", -(10 + 1 + 8 / 3))

    # ---------------------------------------------------------------- training
    em, opt, cfg, train_s = _train(ctx, s, data, context)
    ctx.log(f"trained {s['kind']} h={s['hidden']} for {opt.iteration} iterations in {train_s:.1f} s")
    ctx.metric("train_seconds", train_s)
    ctx.metric("emulator", {"kind": s["kind"], "hidden": s["hidden"], "layers": s["layers"], "context": context,
                            "inputs": em.inputs, "target": em.target, "config": cfg.to_dict()})
    ctx.heading("Emulator training")
    names = {"rnn": "the seed's fcRNN (ReLU nn.RNN)", "gru": "a GRU", "lstm": "an LSTM"}
    ctx.text(f"The emulator is {names[s['kind']]} with {s['layers']} layer(s) of {s['hidden']} units and a linear "
             f"head on the last hidden state (the seed's layout; --set kind=rnn gives the seed's ReLU RNN); it "
             f"reads {context} normalised states and predicts the increment to the next one, "
             f"scaled by the increments' standard deviation. {opt.iteration} Adam steps of {cfg.batch_size} windows, "
             f"cosine learning rate {cfg.lr:g} -> {cfg.lr_final:g}, {cfg.rollout_steps}-step rollout loss, "
             f"input noise {cfg.noise:g}, recurrent weights initialised x{s['recurrent_init']:g}, on the shared "
             f"engine ({train_s:.0f} s).")
    val = opt.history["val_loss"]
    ctx.figure("training_loss", P.training_curves(opt.history.loss.cpu(), opt.history.iterations("val_loss"), val),
               caption="Training loss per step and validation one-step loss (MSE in units of the increment variance).")

    # ---------------------------------------------------------------- forecasts and VPT
    pred, truth = _forecasts(em, data, context)
    vpt = valid_prediction_time(pred, truth, data.std, dt, LAMBDA1)
    ctx.metric("vpt_median_lyapunov_times", float(vpt.median()))
    ctx.metric("vpt_mean_lyapunov_times", float(vpt.mean()))
    ctx.metric("vpt_q10_q90_lyapunov_times", [float(vpt.quantile(0.1)), float(vpt.quantile(0.9))])
    ctx.metric("vpt_n_initial_conditions", int(vpt.numel()))
    ctx.metric("vpt_horizon_lyapunov_times", truth.shape[1] * dt * LAMBDA1)
    ctx.log(f"VPT median {float(vpt.median()):.2f} Lyapunov times over {vpt.numel()} held-out initial conditions")
    ctx.heading("Forecasts from held-out initial conditions")
    show = min(truth.shape[1], round((float(vpt[0]) + 3.0) / LAMBDA1 / dt))
    ctx.figure("trajectory_3d", P.trajectory_3d(data.test[0, : context + show], pred[0, :show], context,
                                                title=f"emulator vs ground truth (VPT {float(vpt[0]):.2f} LT)"),
               caption="A held-out initial condition: 15 true states of context (black), then the emulator "
                       "running on its own predictions (orange) against the ground truth (blue).")
    lead = (torch.arange(truth.shape[1], dtype=torch.float64) + 1) * dt * LAMBDA1
    eg = error_growth(pred, truth, data.std)
    eg_rk4 = error_growth(rk4, data.test[:, context:], data.std)
    ctx.figure("error_growth", P.error_growth_plot(lead, {"emulator": eg, "RK4 dt=0.01": eg_rk4}),
               caption="Normalised RMSE against lead time (median and inter-quartile band over the held-out "
                       "initial conditions); VPT is where it crosses 0.5.")
    ctx.figure("vpt_histogram", P.vpt_histogram({"emulator": vpt, "RK4 dt=0.01 (ceiling)": ceil}),
               caption=f"Valid prediction times over {vpt.numel()} held-out initial conditions.")
    ctx.table([["emulator", f"{float(vpt.median()):.2f}", f"{float(vpt.mean()):.2f}",
                f"{float(vpt.quantile(0.1)):.2f}"],
               ["RK4 dt=0.01 (ceiling)", f"{float(ceil.median()):.2f}", f"{float(ceil.mean()):.2f}",
                f"{float(ceil.quantile(0.1)):.2f}"]],
              headers=["model", "median VPT (LT)", "mean VPT (LT)", "10th percentile (LT)"])

    # ---------------------------------------------------------------- the seed's animations
    _animations(ctx, em, opt, data, context)

    # ---------------------------------------------------------------- free runs: attractor statistics
    with torch.no_grad():
        free = em.rollout(data.test[:1, :context].to(em.mean), s["free_steps"], max_abs=None)[0].cpu().double()
    ref = data.train.reshape(-1, 3)
    rep = attractor_report(free, ref, data.std)
    ctx.metric("free_run_steps", s["free_steps"])
    ctx.metric("free_run_on_attractor", rep["on_attractor"])
    ctx.metric("free_run_report", rep)
    ctx.heading("Long free runs: does the emulator stay on the attractor?")
    ctx.text(f"{s['free_steps']} emulator steps from one held-out context: " + ", ".join(
        f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in rep.items()))
    if rep["finite"]:
        lo, hi = ref.min(0).values - 5, ref.max(0).values + 5
        edges = torch.stack([torch.linspace(float(a), float(b), 61) for a, b in zip(lo, hi)])
        hists = {"ground truth": marginal_histograms(ref, edges),
                 "emulator free run": marginal_histograms(free.clamp(lo, hi), edges)}
        ctx.figure("attractor_histograms", P.attractor_histograms(edges, hists),
                   caption="Marginal densities of x, y, z: the training trajectories against the emulator's free run.")
        rm_true = torch.cat([return_map(tr[:, 2]) for tr in data.train])
        rm_em = return_map(free[:, 2])
        ctx.metric("return_map_distance", return_map_distance(rm_em, rm_true))
        ctx.figure("return_map", P.return_maps({"ground truth": rm_true, "emulator": rm_em}),
                   caption="Lorenz's return map: each maximum of z against the next. The emulator should "
                           "reproduce the cusp-shaped curve.")

    # ---------------------------------------------------------------- emulator Lyapunov exponents
    t0 = time.perf_counter()
    le = emulator_lyapunov(em, data.test[:16, :context].to(em.mean), n_steps=s["emu_lyap_steps"], dt=dt,
                           n_exponents=3, transient=500)
    ctx.log(f"emulator Lyapunov exponents {[round(v, 3) for v in le.exponents.tolist()]} "
            f"({time.perf_counter() - t0:.1f} s)")
    ctx.metric("lambda1_emulator", le.lambda1)
    ctx.metric("lambda1_emulator_stderr", float(le.stderr[0]))
    ctx.metric("lyapunov_spectrum_emulator_leading3", le.exponents.tolist())
    ctx.heading("Lyapunov exponents")
    ctx.table([["Lorenz-63 (RK4 step map, autograd Jacobian)"] + [f"{v:.4f}" for v in lt.exponents.tolist()]
               + [f"{lt.sum:.4f}"],
               ["emulator (window map, leading 3)"] + [f"{v:.4f}" for v in le.exponents.tolist()] + ["-"],
               ["literature", "0.9056", "0", "-14.5723", f"{-(10 + 1 + 8 / 3):.4f}"]],
              headers=["", "lambda_1", "lambda_2", "lambda_3", "sum"],
              caption="Exponents per model time unit by tangent-space QR; the system's sum must equal the "
                      "trace of its Jacobian, -(sigma + 1 + beta).")
    ctx.figure("lyapunov_convergence", P.lyapunov_convergence({"Lorenz-63": lt, "emulator": le}),
               caption="Running estimate of lambda_1 against averaging time.")

    _finite_time(ctx, s, em, data, context, lt)
    _greybox(ctx, s, data)
    ctx.metric("study_seconds", time.perf_counter() - start)


def _animations(ctx, em, opt, data, context) -> None:
    import copy

    from difflens.plot import dynamics as P

    snaps, iters = opt.history.snapshots, opt.history.snapshot_iterations
    model = copy.deepcopy(em)
    truth = data.test[1, : context + 300]
    preds = []
    with torch.no_grad():
        for sd in snaps:
            model.load_state_dict(sd)
            preds.append(model.rollout(truth[None, :context].to(em.mean), 300, max_abs=None)[0].cpu().double())
    ctx.heading("The seed's animations")
    ctx.animation("prediction_over_training", P.animate_training_prediction(truth, preds, iters, context),
                  caption="The forecast from one held-out context at each training snapshot (scatter: ground "
                          "truth).", fps=3)
    ctx.animation("trajectories_by_epoch", P.animate_trajectories_by_epoch(truth, preds, iters, context),
                  caption="All snapshots' forecasts, early (dark) to late (bright); ground truth in blue.", fps=3)


def _finite_time(ctx, s, em, data, context, lt) -> None:
    from difflens.dynamics import Lorenz63
    from difflens.dynamics.predictability import emulator_flow_map, finite_time_growth, flow_map

    rows, ftle_true, ftle_em = [], {}, {}
    f = Lorenz63()
    for T in s["ftle_horizons"]:
        n = round(T / data.dt)
        vals_t, vals_e = [], []
        for i in range(s["ftle_ics"]):
            x0 = data.test[i, context - 1]
            vals_t.append(finite_time_growth(flow_map(f, T, data.dt), x0, T).exponent)
            window = data.test[i, :context].to(em.mean)
            vals_e.append(finite_time_growth(emulator_flow_map(em, n), window, T).exponent)
        ftle_true[T], ftle_em[T] = sum(vals_t) / len(vals_t), sum(vals_e) / len(vals_e)
        rows.append([f"{T:g}", f"{ftle_true[T]:.3f}", f"{ftle_em[T]:.3f}"])
    ctx.heading("Fastest-growing perturbations (eigendistortions of the flow map)")
    ctx.text("Eigendistortion(x0, flow_map) gives the top eigenvalue of J^T J of the time-T map, so "
             "sigma_1 = sqrt(eigenvalue) and log(sigma_1)/T is a finite-time exponent; averaged over initial "
             f"conditions it approaches lambda_1 = {lt.lambda1:.3f} from above as T grows. The emulator's input "
             "is its 15-state window.")
    ctx.table(rows, headers=["horizon T", "mean log(sigma_1)/T, Lorenz-63", "same, emulator"])
    ctx.metric("ftle_true", {str(k): v for k, v in ftle_true.items()})
    ctx.metric("ftle_emulator", {str(k): v for k, v in ftle_em.items()})


def _greybox(ctx, s, data) -> None:
    from difflens.dynamics import fit_greybox
    from difflens.plot import dynamics as P

    g = ctx.generator(3)
    obs = data.train[: s["greybox_traj"], : s["greybox_samples"]]
    rows, errs, results = [], [], {}
    for noise in s["greybox_noise"]:
        noisy = obs + noise * torch.randn(obs.shape, generator=g, dtype=obs.dtype)
        with ctx.phase(f"grey-box fit, noise {noise:g}"):
            res = fit_greybox(noisy, data.dt, segment=10, fit_initial_states=noise > 0, max_iter=40,
                              checkpoint_path=ctx.checkpoint(f"greybox_noise_{noise:g}"), resume=ctx.resume)
        if not res.finished:
            raise KeyboardInterrupt("grey-box fit interrupted")
        err = res.relative_errors()
        errs.append(err)
        results[str(noise)] = {"sigma_rho_beta": list(res.sigma_rho_beta), "relative_errors": list(err),
                               "seconds": res.optimization.history.seconds}
        rows.append([f"{noise:g}"] + [f"{v:.4f}" for v in res.sigma_rho_beta] + [f"{max(err):.2e}"])
        if noise == 0.0:
            ctx.metric("greybox_sigma_rho_beta", list(res.sigma_rho_beta))
            ctx.metric("greybox_relative_errors", list(err))
    ctx.metric("greybox_noise_sweep", results)
    ctx.heading("Grey-box identification")
    ctx.text(f"The seed's Lorenz module is a linear map on the monomials [x, y, z, xz, xy]. Starting from all 15 "
             f"weights at zero, multiple shooting over segments of 10 steps ({s['greybox_traj']} trajectories of "
             f"{s['greybox_samples']} samples), RK4 and L-BFGS on the engine recover the weights; with noise "
             "the segments' starting states are fitted too.")
    ctx.table(rows, headers=["noise std", "sigma", "rho", "beta", "max relative error"],
              caption="Truth: sigma = 10, rho = 28, beta = 2.6667. Noise is i.i.d. Gaussian on every observed "
                      "coordinate (state units; the attractor's std is ~8).")
    ctx.figure("greybox_noise", P.greybox_noise_plot(list(s["greybox_noise"]), errs),
               caption="Relative error of the recovered coefficients against observation noise.")
