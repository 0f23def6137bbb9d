"""Study ``neural_process``: conditional neural processes against the exact GP that generates their tasks.

Each model is trained by maximum likelihood on curves from a GP prior (the seed's CNP
summary, Garnelo et al. 2018) and evaluated on held-out tasks beside the exact GP posterior
with the generating hyperparameters: the best achievable prediction. The gap in mean
log-likelihood per target point is the measure of how well a model has learned to do
Bayesian inference.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from .registry import study
from .settings import StudySettings, setting

MODEL_NAMES = ("cnp", "acnp", "lnp", "convcnp")
LABELS = {"cnp": "CNP", "acnp": "attentive CNP", "lnp": "latent NP", "convcnp": "ConvCNP", "oracle": "exact GP (oracle)"}
NOISE_STD = 0.02


@dataclass(frozen=True)
class NeuralProcessSettings(StudySettings):
    """Settings of the ``neural_process`` study."""

    PRESETS = {  # noqa: RUF012
        "quick": {"kernels": ("se",), "models": ("cnp", "convcnp"), "steps": 150, "eval_tasks": 96,
                  "curve_points": 2, "crossover_sizes": (10, 100, 1000), "digit_steps": 120, "digit_size": 12,
                  "ar_tasks": 16},
        "full": {"kernels": ("se", "matern52", "periodic", "weakly_periodic"), "models": MODEL_NAMES, "steps": 1000,
                 "convcnp_steps": 5000, "convcnp_kernel_steps": ("se=20000", "matern52=6000"), "eval_tasks": 1024,
                 "crossover_sizes": (10, 100, 1000, 3000, 10000), "digit_steps": 1500, "ar_tasks": 128},
    }

    kernels: tuple[str, ...] = setting(("se", "matern52"), "generating kernels (se, matern52, periodic, "
                                       "weakly_periodic), one trained model of each kind per kernel")
    models: tuple[str, ...] = setting(("cnp", "convcnp"), "models to train: cnp, acnp (attentive), lnp (latent), convcnp")
    steps: int = setting(1200, "Adam steps per model (16 tasks each)", minimum=1)
    convcnp_steps: int = setting(0, "Adam steps of the ConvCNP (0: the same as steps)", minimum=0)
    convcnp_kernel_steps: tuple[str, ...] = setting((), "Adam steps of the ConvCNP for named kernels, each "
                                                    "'kernel=steps' (e.g. 'se=16000'); other kernels: convcnp_steps")
    context_in_loss: tuple[str, ...] = setting(("cnp", "acnp", "lnp"), "models whose training loss also predicts "
                                               "the context points (Garnelo et al.); the others (by default the "
                                               "ConvCNP) are trained on the targets only, as they are evaluated")
    lr: float = setting(1e-3, "peak Adam learning rate (cosine decay to lr * lr_final_fraction)", minimum=1e-6,
                        maximum=1.0)
    lr_final_fraction: float = setting(0.01, "final over peak learning rate of the cosine schedule", minimum=1e-6,
                                       maximum=1.0)
    eval_tasks: int = setting(512, "held-out tasks per kernel (3-50 context, 50 target points)", minimum=16)
    curve_points: int = setting(6, "evaluations of the gap during training (on 128 validation tasks)",
                                minimum=1, maximum=50)
    crossover_sizes: tuple[int, ...] = setting((10, 100, 1000, 3000), "context sizes of the cost crossover")
    digit_steps: int = setting(800, "training steps of the CNP on digit completion (0: skip)", minimum=0)
    digit_size: int = setting(14, "digit image side in pixels", minimum=8, maximum=28)
    ar_tasks: int = setting(64, "held-out tasks for the autoregressive (joint) comparison", minimum=0)


def _make(name: str, generator: torch.Generator, x_dim: int = 1):
    from difflens.gp.neural import CNP, AttentiveCNP, ConvCNP, LatentNP

    if name == "cnp":
        return CNP(x_dim=x_dim, generator=generator)
    if name == "acnp":
        return AttentiveCNP(x_dim=x_dim, hidden=64, heads=4, generator=generator)
    if name == "lnp":
        return LatentNP(x_dim=x_dim, generator=generator)
    if name == "convcnp":
        return ConvCNP(generator=generator)
    raise ValueError(f"unknown model {name!r}; choose from {MODEL_NAMES}")


def _kernel_steps(entries: tuple[str, ...], names: tuple[str, ...]) -> dict[str, int]:
    """Parse ``("se=16000", ...)`` into ``{"se": 16000}``; a clear error for a malformed entry."""
    out = {}
    for e in entries:
        name, _, value = str(e).partition("=")
        if name not in names or not value.strip().isdigit() or int(value) < 1:
            raise ValueError(f"convcnp_kernel_steps entry {e!r} must be 'kernel=steps' with a kernel from {names} "
                             "and steps >= 1")
        out[name] = int(value)
    return out


def _batches(sampler, n_tasks: int, x_range=None) -> list:
    out, left = [], n_tasks
    while left > 0:
        b = min(16, left)
        out.append(sampler.sample(batch_size=b, x_range=x_range))
        left -= b
    return out


def _oracle(kernel, batches, joint: bool = False) -> torch.Tensor:
    from difflens.gp.neural import oracle_log_likelihood

    return torch.cat([oracle_log_likelihood(kernel, NOISE_STD, *t.to(dtype=torch.float64), joint=joint)
                      for t in batches])


def _abs_z(model, batches) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([((t.y_target - m) / s).abs().reshape(-1) for t in batches
                          for m, s in [model(t.x_context, t.y_context, t.x_target)]])


@study("neural_process", title="Neural processes against the exact Gaussian process they imitate",
       settings=NeuralProcessSettings,
       headline=(("ll_oracle_se", "oracle LL / point (SE)"), ("ll_convcnp_se", "ConvCNP LL / point (SE)"),
                 ("ll_gap_convcnp_se", "ConvCNP gap to the oracle (nats)"),
                 ("ll_gap_cnp_se", "CNP gap to the oracle (nats)"),
                 ("coverage_2sigma_convcnp_se", "ConvCNP 2σ coverage")),
       figure="predictions_se", order=35,
       description="CNP, attentive CNP and ConvCNP trained on curves drawn from GP priors, measured on held-out "
                   "tasks against the exact GP posterior with the generating hyperparameters (the best "
                   "achievable prediction): log-likelihood gap per target point, calibration, behaviour outside "
                   "the training range, autoregressive joint predictions, the cost crossover against the exact "
                   "GP, and digit completion.")
def run(ctx) -> None:
    """Run the study into ``ctx`` (a :class:`~difflens.studies.context.StudyContext`: settings,
    seed, device, output folder and report).
    """
    from difflens.gp.neural import (
        KERNEL_NAMES,
        GPTaskSampler,
        NeuralProcessTrainer,
        autoregressive_log_likelihood,
        autoregressive_sample,
        evaluate_model,
        oracle_predict,
        task_kernel,
    )
    from difflens.plot import neural_process as plots

    s = ctx.settings
    for k in s.kernels:
        if k not in KERNEL_NAMES:
            raise ValueError(f"unknown kernel {k!r} in kernels; choose from {KERNEL_NAMES}")
    kernel_steps = _kernel_steps(s.convcnp_kernel_steps, KERNEL_NAMES)
    for field, names in (("models", s.models), ("context_in_loss", s.context_in_loss)):
        for m in names:
            if m not in MODEL_NAMES:
                raise ValueError(f"unknown model {m!r} in {field}; choose from {MODEL_NAMES}")
    dev = ctx.device
    levels = np.linspace(0.1, 0.99, 12)
    from scipy.stats import norm
    z_levels = norm.ppf(0.5 + levels / 2)
    gap_rows, summary = [], {}
    trained: dict[tuple[str, str], torch.nn.Module] = {}

    for ki, kname in enumerate(s.kernels):
        ctx.heading(f"Kernel: {kname}")
        kernel = task_kernel(kname)
        held_out = _batches(GPTaskSampler(kname, ctx.generator(1000 + ki)), s.eval_tasks)
        val = _batches(GPTaskSampler(kname, ctx.generator(2000 + ki)), 128)
        outside = _batches(GPTaskSampler(kname, ctx.generator(3000 + ki)), min(s.eval_tasks, 256), x_range=(2.0, 6.0))
        ll_oracle = _oracle(kernel, held_out)
        val_oracle = float(_oracle(kernel, val).mean())
        ll_outside_oracle = float(_oracle(kernel, outside).mean())
        ctx.metric(f"ll_oracle_{kname}", float(ll_oracle.mean()))
        ctx.metric(f"ll_outside_oracle_{kname}", ll_outside_oracle)
        curves, coverage = {}, {}
        row_oracle = ["exact GP (oracle)", f"{float(ll_oracle.mean()):.3f}", "0", "-", "-", "-",
                      f"{ll_outside_oracle:.3f}", "-"]
        gap_rows.append([kname] + row_oracle)
        for mi, mname in enumerate(s.models):
            model = _make(mname, ctx.generator(100 + 10 * ki + mi)).to(dev)
            sampler = GPTaskSampler(kname, ctx.generator(200 + 10 * ki + mi))
            steps = s.steps
            if mname == "convcnp":
                steps = kernel_steps.get(kname, s.convcnp_steps or s.steps)
            check = min(50, max(1, steps // s.curve_points))
            every = max(check, steps // s.curve_points // check * check)  # a multiple of the check interval

            def log_gap(opt, model=model, every=every, val=val, val_oracle=val_oracle, steps=steps):
                if opt.iteration % every == 0 or opt.iteration == steps:
                    model.eval()
                    gap = val_oracle - float(evaluate_model(model, [t.to(device=dev) for t in val])["ll"].mean())
                    model.train()
                    opt.history.log("val_gap", gap, opt.iteration)  # kept in the checkpoint: resumes intact

            trainer = NeuralProcessTrainer(model, sampler, lr=s.lr, steps=steps, check_every=check,
                                           lr_final_fraction=s.lr_final_fraction,
                                           include_context=mname in s.context_in_loss,
                                           callbacks=[log_gap], progress=ctx.progress_label(f"{mname} {kname}"))
            with ctx.phase(f"training {mname} on {kname}"):
                trainer.fit(checkpoint_path=ctx.checkpoint(f"{mname}_{kname}"), resume=ctx.resume)
            if trainer.optimization.stop_reason == "interrupted":
                raise KeyboardInterrupt(f"interrupted during training {mname} on {kname}")
            model.eval()
            trained[(mname, kname)] = model
            hist = trainer.optimization.history
            curve = list(zip(hist.iterations("val_gap"), hist["val_gap"].tolist())) \
                if "val_gap" in hist.series_names() else []
            ev = evaluate_model(model, [t.to(device=dev) for t in held_out])
            ev_out = evaluate_model(model, [t.to(device=dev) for t in outside])
            ll, gap = float(ev["ll"].mean()), float((ll_oracle - ev["ll"]).mean())
            sem = float((ll_oracle - ev["ll"]).std() / len(ev["ll"]) ** 0.5)
            c1, c2 = float(ev["in_1sigma"].mean()), float(ev["in_2sigma"].mean())
            ll_out = float(ev_out["ll"].mean())
            sps = trainer.seconds / max(1, trainer.optimization.iteration)
            ctx.update_metrics({f"ll_{mname}_{kname}": ll, f"ll_gap_{mname}_{kname}": gap,
                                f"ll_gap_sem_{mname}_{kname}": sem, f"coverage_1sigma_{mname}_{kname}": c1,
                                f"coverage_2sigma_{mname}_{kname}": c2, f"ll_outside_{mname}_{kname}": ll_out,
                                f"train_seconds_{mname}_{kname}": trainer.seconds,
                                f"gap_curve_{mname}_{kname}": curve})
            gap_rows.append([kname, LABELS[mname], f"{ll:.3f}", f"{gap:.3f} ± {sem:.3f}", f"{c1:.3f}", f"{c2:.3f}",
                             f"{trainer.seconds:.0f} s ({1000 * sps:.0f} ms/step)", f"{ll_out:.3f}",
                             f"{ll_outside_oracle - ll_out:.3f}"])
            curves[LABELS[mname]] = ([c[0] for c in curve], [max(c[1], 1e-3) for c in curve])
            z = _abs_z(model, [t.to(device=dev) for t in held_out]).cpu().numpy()
            coverage[LABELS[mname]] = [float((z <= q).mean()) for q in z_levels]
        # predictions on one held-out task, beside the oracle
        t = held_out[0]
        x = torch.linspace(-2.5, 2.5, 300).reshape(1, -1, 1)
        one = (t.x_context[:1], t.y_context[:1])
        preds = {LABELS["oracle"]: tuple(v[0, :, 0] for v in oracle_predict(kernel, NOISE_STD, *one, x))}
        with torch.no_grad():
            for mname in s.models:
                m, sd = trained[(mname, kname)](one[0].to(dev), one[1].to(dev), x.to(dev))
                preds[LABELS[mname]] = (m[0, :, 0].cpu(), sd[0, :, 0].cpu())
        ctx.figure(f"predictions_{kname}", plots.model_predictions(x[0, :, 0], one[0][0, :, 0], one[1][0, :, 0],
                                                                   preds, title=f"{kname}: one held-out task"),
                   f"Each model's predictive mean and ±1, 2σ bands on the same {t.x_context.shape[1]}-point "
                   "context (a held-out task), with the exact GP's mean (dashed) and 2σ band (dotted).")
        oz = []
        for tt in held_out:
            om, osd = oracle_predict(kernel, NOISE_STD, *list(tt.to(dtype=torch.float64))[:3])
            oz.append(((tt.y_target.double() - om) / osd).abs().reshape(-1))
        oz = torch.cat(oz).numpy()
        coverage[LABELS["oracle"]] = [float((oz <= q).mean()) for q in z_levels]
        ctx.figure(f"calibration_{kname}", plots.calibration(levels, coverage, f"calibration on {kname} tasks"),
                   "Fraction of held-out targets inside each model's central predictive interval against the "
                   "interval's nominal probability (the diagonal is perfect calibration).")
        ctx.figure(f"gap_vs_training_{kname}", plots.gap_vs_training(curves),
                   f"Gap to the oracle on 128 validation tasks during training ({kname}).")
        summary[kname] = curves
    ctx.heading("Log-likelihood gap to the oracle")
    ctx.table(gap_rows, headers=["kernel", "model", "LL / target point", "gap to oracle (± s.e.)", "1σ coverage",
                                 "2σ coverage", "training time", "LL on x ∈ [2, 6]", "gap there"],
              caption=f"{s.eval_tasks} held-out tasks per kernel (3-50 context points, 50 targets, noise std "
                      f"{NOISE_STD}); the oracle is the exact GP with the generating hyperparameters: for models "
                      "that predict each target independently, the mean of its per-target marginal "
                      "log-densities is the best achievable. Training inputs lie in [-2, 2]; the last two "
                      "columns are tasks on [2, 6], outside the training range. Coverage should be 0.683 and 0.954.")

    # -- autoregressive deployment ------------------------------------------------------------------------
    first = s.kernels[0]
    if s.ar_tasks > 0:
        ctx.heading("Autoregressive deployment: joint predictions")
        kernel = task_kernel(first)
        ar_batches = _batches(GPTaskSampler(first, ctx.generator(4000), n_target=20), s.ar_tasks)
        joint = float(_oracle(kernel, ar_batches, joint=True).mean())
        marg = float(_oracle(kernel, ar_batches).mean())
        rows = [["exact GP, joint", f"{joint:.3f}", "0"], ["exact GP, independent marginals", f"{marg:.3f}",
                                                            f"{joint - marg:.3f}"]]
        ctx.update_metrics({f"ll_oracle_joint_{first}": joint, f"ll_oracle_marginal_ar_{first}": marg})
        with ctx.phase("autoregressive evaluation"):
            for mname in s.models:
                model = trained[(mname, first)]
                ar = float(torch.cat([autoregressive_log_likelihood(model, *t.to(device=dev)) for t in
                                      ar_batches]).mean())
                ind = float(evaluate_model(model, [t.to(device=dev) for t in ar_batches])["ll"].mean())
                ctx.update_metrics({f"ll_ar_{mname}_{first}": ar, f"ll_gap_ar_{mname}_{first}": joint - ar})
                rows += [[f"{LABELS[mname]}, autoregressive", f"{ar:.3f}", f"{joint - ar:.3f}"],
                         [f"{LABELS[mname]}, independent", f"{ind:.3f}", f"{joint - ind:.3f}"]]
                if mname == "lnp":
                    gi = ctx.generator(4010)
                    iw = float(torch.cat([model.log_likelihood(*t.to(device=dev), gi, samples=64)
                                          for t in ar_batches]).mean())
                    ctx.update_metrics({f"ll_is_lnp_{first}": iw, f"ll_gap_is_lnp_{first}": joint - iw})
                    rows.append(["latent NP, importance-sampled joint (64 samples)", f"{iw:.3f}", f"{joint - iw:.3f}"])
        ctx.table(rows, headers=["prediction", "LL / target point", "gap to the GP's joint LL"],
                  caption=f"{s.ar_tasks} held-out {first} tasks, 20 targets each, predicted one at a time, each "
                          "conditioned on the context and the targets before it; the bound is the GP's joint "
                          "log-density.")
        best = "convcnp" if "convcnp" in s.models else s.models[0]
        t = ar_batches[0]
        x = torch.linspace(-2, 2, 60).reshape(1, -1, 1)
        samples = autoregressive_sample(trained[(best, first)], t.x_context[:1].to(dev), t.y_context[:1].to(dev),
                                        x.to(dev), ctx.generator(4001, dev), n_samples=5)[:, 0, :, 0].cpu()
        om, osd = oracle_predict(kernel, NOISE_STD, t.x_context[:1], t.y_context[:1], x)
        from difflens.gp import GaussianProcess
        from difflens.plot.gp import posterior_panels
        gp = GaussianProcess(kernel, noise_variance=NOISE_STD ** 2, optimize=False)
        gp.fit(t.x_context[0].double(), t.y_context[0, :, 0].double())
        gp_samples = gp.sample_y(x[0].double(), 5, generator=ctx.generator(4002))
        with torch.no_grad():
            m, sd = trained[(best, first)](t.x_context[:1].to(dev), t.y_context[:1].to(dev), x.to(dev))
        indep = m[0, :, 0].cpu()[:, None] + sd[0, :, 0].cpu()[:, None] * torch.randn(
            60, 5, generator=ctx.generator(4003))
        panels = [{"mean": om[0, :, 0], "std": osd[0, :, 0], "X": t.x_context[0, :, 0], "y": t.y_context[0, :, 0],
                   "samples": gp_samples, "title": "exact GP: joint samples"},
                  {"mean": m[0, :, 0].cpu(), "std": sd[0, :, 0].cpu(), "X": t.x_context[0, :, 0],
                   "y": t.y_context[0, :, 0], "samples": indep, "title": f"{LABELS[best]}: independent samples"},
                  {"mean": m[0, :, 0].cpu(), "std": sd[0, :, 0].cpu(), "X": t.x_context[0, :, 0],
                   "y": t.y_context[0, :, 0], "samples": samples.T,
                   "title": f"{LABELS[best]}: autoregressive samples"}]
        ctx.figure("autoregressive_samples", posterior_panels(x[0, :, 0], panels, ylim=(-3.5, 3.5)),
                   "Independent Gaussian samples at each target are noise around the mean; drawn "
                   "autoregressively (each value fed back as context) the same model gives coherent curves.")

    # -- cost crossover --------------------------------------------------------------------------------------
    ctx.heading("Prediction cost against the exact GP")
    kernel = task_kernel(first)
    ms = {LABELS["oracle"]: []}
    for mname in s.models:
        ms[LABELS[mname]] = []
    g = ctx.generator(5000)
    xt = torch.linspace(-2, 2, 100).reshape(1, -1, 1)
    with ctx.phase("cost crossover"):
        for n in s.crossover_sizes:
            xc = 4 * torch.rand(1, n, 1, generator=g) - 2
            yc = torch.sin(3 * xc) + NOISE_STD * torch.randn(1, n, 1, generator=g)
            t0 = time.perf_counter()
            oracle_predict(kernel, NOISE_STD, xc, yc, xt)
            ms[LABELS["oracle"]].append(1000 * (time.perf_counter() - t0))
            for mname in s.models:
                model = trained[(mname, first)]
                with torch.no_grad():
                    model(xc.to(dev), yc.to(dev), xt.to(dev))  # warm-up
                    t0 = time.perf_counter()
                    model(xc.to(dev), yc.to(dev), xt.to(dev))
                    if dev.type == "cuda":
                        torch.cuda.synchronize()
                ms[LABELS[mname]].append(1000 * (time.perf_counter() - t0))
    ctx.figure("cost_crossover", plots.cost_crossover(s.crossover_sizes, ms),
               "Wall time to predict 100 targets from n context points (one task): the exact GP's Cholesky "
               "grows as n³, a neural process's cost as n.")
    ctx.table([[n] + [f"{ms[k][i]:.2f}" for k in ms] for i, n in enumerate(s.crossover_sizes)],
              headers=["context points"] + [f"{k} (ms)" for k in ms], caption="Prediction time, 100 targets.")
    ctx.metric("crossover_context_sizes", list(s.crossover_sizes))
    ctx.metric("crossover_ms_per_prediction", ms)
    for mname in s.models:
        ctx.metric(f"speedup_ms_per_ratio_{mname}_at_{s.crossover_sizes[-1]}",
                   ms[LABELS["oracle"]][-1] / ms[LABELS[mname]][-1])

    # -- digits ------------------------------------------------------------------------------------------------
    if s.digit_steps > 0:
        _digits(ctx, s, plots)


def _digits(ctx, s, plots) -> None:
    from difflens.data.digits import load_digits
    from difflens.gp.neural import DigitTaskSampler, NeuralProcessTrainer, evaluate_model

    ctx.heading("Digit completion")
    dev = ctx.device
    train, _ = load_digits(size=s.digit_size, split="train")
    test, _ = load_digits(size=s.digit_size, split="test")
    sampler = DigitTaskSampler(train, ctx.generator(6000))
    model = _make("cnp", ctx.generator(6001), x_dim=2).to(dev)
    trainer = NeuralProcessTrainer(model, sampler, lr=s.lr, steps=s.digit_steps, include_context=False,
                                   lr_final_fraction=s.lr_final_fraction,
                                   progress=ctx.progress_label("cnp digits"))
    with ctx.phase("training the CNP on digits"):
        trainer.fit(checkpoint_path=ctx.checkpoint("cnp_digits"), resume=ctx.resume)
    if trainer.optimization.stop_reason == "interrupted":
        raise KeyboardInterrupt("interrupted during training the CNP on digits")
    model.eval()
    fractions = (0.1, 0.3, 1.0)
    shown = test[:4]
    h = s.digit_size
    rows: dict[str, list] = {}
    for i in range(shown.shape[0]):
        rows[f"digit {i}"] = [shown[i, 0]]
    columns = ["image"]
    for f in fractions:
        t = sampler.complete(shown, f, ctx.generator(6100 + int(100 * f)))
        with torch.no_grad():
            mean, _ = model(t.x_context.to(dev), t.y_context.to(dev), t.x_target.to(dev))
        mask = torch.full((shown.shape[0], h * h), float("nan"))
        idx = ((t.x_context[..., 0] + 1) / 2 * (h - 1)).round().long() * h + \
            ((t.x_context[..., 1] + 1) / 2 * (h - 1)).round().long()
        mask.scatter_(1, idx, t.y_context[..., 0])
        for i in range(shown.shape[0]):
            rows[f"digit {i}"] += [mask[i].reshape(h, h), mean[i, :, 0].cpu().clamp(0, 1).reshape(h, h)]
        columns += [f"{int(100 * f)}% context", "CNP mean"]
        held = [sampler.complete(test[j:j + 16], f, ctx.generator(6200 + j)) for j in range(0, 128, 16)]
        ev = evaluate_model(model, [tt.to(device=dev) for tt in held])
        ctx.metric(f"digits_ll_cnp_{int(100 * f)}pct", float(ev["ll"].mean()))
    ctx.figure("digit_completions", plots.digit_completions(shown, rows, columns),
               f"CNP completions of held-out digits ({h}x{h}) from 10%, 30% and 100% of the pixels "
               "(context pixels shown on their own, missing ones blue).")
    ctx.metric("digits_train_seconds", trainer.seconds)
