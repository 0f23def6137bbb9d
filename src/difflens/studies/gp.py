"""Study ``gp``: the seed's "Uncertainty Estimation with Gaussian Processes" on difflens.gp."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .registry import study
from .settings import StudySettings, setting

X_SEED = np.array([0.0, 0.3, 1.0, 3.1, 4.7])
Y_SEED = np.array([1.0, 0.0, 1.4, 0.0, -0.9])
SEED_JITTER = 3e-7  # the seed adds 3e-7 to the diagonal; we use it as a (fixed) noise variance


@dataclass(frozen=True)
class GPSettings(StudySettings):
    """Settings of the ``gp`` study."""

    PRESETS = {"quick": {"grid_step": 0.1, "n_draws": 5, "fit_points": 25}}

    grid_step: float = setting(0.05, "spacing of the prediction grid on [-1, 7) (the seed's is 0.1)",
                               minimum=0.001, maximum=1.0)
    n_draws: int = setting(10, "functions drawn from each prior and posterior", minimum=1, maximum=100)
    fit_points: int = setting(80, "noisy observations in the hyperparameter-fitting experiment", minimum=3,
                              maximum=5000)
    fit_iterations: int = setting(200, "L-BFGS iterations at most when fitting hyperparameters", minimum=1)


@study("gp", title="Gaussian process regression: uncertainty bands, draws, hyperparameters", settings=GPSettings,
       headline=(("fit_lml", "fitted log marginal likelihood"), ("fit_lml_at_truth", "LML at the true values"),
                 ("fit_test_rmse", "test RMSE of the fitted GP")),
       figure="posterior_panels", order=30,
       description="The seed's GP regression: a squared-exponential GP conditioned on x = [0, 0.3, 1, 3.1, 4.7] "
                   "one point at a time with ±1, 2, 3σ bands; functions drawn from the posterior; the effect "
                   "of the signal variance σ², the lengthscale ℓ and the noise; the Brownian kernel "
                   "min(x, x'); and hyperparameters fitted by maximising the log marginal likelihood.")
def run(ctx) -> None:
    """Run the study into ``ctx`` (a :class:`~difflens.studies.context.StudyContext`: settings,
    seed, device, output folder and report).
    """
    from difflens.gp import Brownian, Constant, GaussianProcess, SquaredExponential
    from difflens.plot import gp as plots

    cfg = ctx.settings
    dev = ctx.device
    x = np.arange(-1.0, 7.0, cfg.grid_step)  # the seed's grid is arange(-1, 7, 0.1)
    n_draws = cfg.n_draws

    def GP(kernel, **kw):  # every GP of the study computes on the study's device
        return GaussianProcess(kernel, device=dev, **kw)

    # -- the kernel itself ----------------------------------------------------------------
    ctx.heading("The squared-exponential kernel")
    d = torch.linspace(0, 4, 200, dtype=torch.float64)
    zero = torch.zeros(1, dtype=torch.float64)
    curves = {}
    for ls, var in [(1.0, 1.0), (0.5, 1.0), (2.0, 1.0), (1.0, 2.0)]:
        curves[f"ℓ={ls:g}, σ²={var:g}"] = SquaredExponential(ls, var)(zero, d).detach()[0]
    ctx.figure("kernel", plots.kernel_profiles(d, curves, "k(0, d) = σ² exp(-d² / 2ℓ²)"),
               "The lengthscale ℓ sets how fast the covariance decays with distance; σ² sets its height.")

    # -- six panels, one more point each -----------------------------------------------------
    ctx.heading("Conditioning on one more point at a time")
    panels, lmls = [], []
    for i in range(6):
        gp = GP(SquaredExponential(1.0, 1.0), noise_variance=SEED_JITTER, optimize=False)
        gp.fit(X_SEED[:i], Y_SEED[:i])
        mean, std = gp.predict(x, return_std=True)
        panels.append({"mean": mean, "std": std, "X": X_SEED[:i], "y": Y_SEED[:i], "title": f"{i} point(s)"})
        if i:
            lmls.append(gp.log_marginal_likelihood())
            _, std_at_data = gp.predict(X_SEED[:i], return_std=True)
            ctx.metric(f"max_std_at_data_{i}_points", float(std_at_data.max()))
    ctx.metric("lml_by_points", lmls)
    ctx.figure("posterior_panels", plots.posterior_panels(x, panels),
               "Posterior mean and ±1, 2, 3σ bands of a squared-exponential GP (ℓ = 1, σ² = 1) as the points "
               "x = [0, 0.3, 1, 3.1, 4.7] are added one at a time (the first panel is the prior). The "
               "uncertainty collapses at the observations and grows away from them.")
    ctx.metric("prior_std", float(panels[0]["std"].mean()))

    # -- draws from the posterior --------------------------------------------------------------
    ctx.heading("Functions drawn from the posterior")
    gp = GP(SquaredExponential(1.0, 1.0), noise_variance=SEED_JITTER, optimize=False).fit(X_SEED, Y_SEED)
    mean, std = gp.predict(x, return_std=True)
    draws = gp.sample_y(x, n_draws, generator=ctx.generator(1))
    prior = gp.sample_y(x, n_draws, prior=True, generator=ctx.generator(2))
    prior_std = np.ones_like(x)
    ctx.figure("samples", plots.posterior_panels(x, [
        {"mean": np.zeros_like(x), "std": prior_std, "samples": prior, "title": f"{n_draws} draws from the prior"},
        {"mean": mean, "std": std, "X": X_SEED, "y": Y_SEED, "samples": draws,
         "title": f"{n_draws} draws from the posterior"}], ylim=(-4, 4)),
        "Each thin line is one function drawn jointly at all test points; together they make up the band.")
    ctx.metric("posterior_draws_at_data_max_error",
               float(np.abs(gp.sample_y(X_SEED, n_draws, generator=ctx.generator(3)) - Y_SEED[:, None]).max()))

    # -- effect of sigma, lengthscale, noise ------------------------------------------------------
    ctx.heading("The effect of σ², ℓ and the noise")
    settings = {"σ²": [(1.0, v, SEED_JITTER) for v in (0.3, 1.0, 3.0)],
                "ℓ": [(v, 1.0, SEED_JITTER) for v in (0.3, 1.0, 3.0)],
                "noise": [(1.0, 1.0, v) for v in (1e-6, 0.1, 0.5)]}
    rows = {}
    for r, (name, values) in enumerate(settings.items()):
        rows[name] = []
        for c, (ls, var, noise) in enumerate(values):
            g = GP(SquaredExponential(ls, var), noise_variance=noise, optimize=False).fit(X_SEED, Y_SEED)
            m, s = g.predict(x, return_std=True)
            smp = g.sample_y(x, 3, generator=ctx.generator(10 + 3 * r + c))
            value = {"σ²": var, "ℓ": ls, "noise": noise}[name]
            rows[name].append({"mean": m, "std": s, "X": X_SEED, "y": Y_SEED, "samples": smp,
                               "title": f"{name} = {value:g}  (LML {g.log_marginal_likelihood():.2f})"})
            ctx.metric(f"lml_{ {'σ²': 'variance', 'ℓ': 'lengthscale', 'noise': 'noise'}[name]}_{value:g}",
                       g.log_marginal_likelihood())
    ctx.figure("hyperparameters", plots.posterior_grid(x, rows),
               "σ² scales the envelope; ℓ sets how smooth and how bendy the functions are; the noise sets how "
               "tightly the functions are tied to the observations.")

    # -- the Brownian kernel -------------------------------------------------------------------------
    ctx.heading("The Brownian kernel min(x, x')")
    g = GP(Brownian(1.0), noise_variance=SEED_JITTER, optimize=False).fit(X_SEED, Y_SEED)
    m, s = g.predict(x, return_std=True)
    smp = g.sample_y(x, n_draws, generator=ctx.generator(30))
    pm = np.zeros_like(x)
    ps = np.sqrt(np.abs(x))
    psmp = g.sample_y(x, n_draws, prior=True, generator=ctx.generator(31))
    offset = GP(Brownian(1.0) + Constant(1.0), noise_variance=SEED_JITTER, optimize=False)
    offset.fit(X_SEED, Y_SEED)
    om, os_ = offset.predict(x, return_std=True)
    osmp = offset.sample_y(x, n_draws, generator=ctx.generator(32))
    ctx.figure("brownian", plots.posterior_panels(x, [
        {"mean": pm, "std": ps, "samples": psmp, "title": "Brownian prior (variance |x|; two motions leave 0)"},
        {"mean": m, "std": s, "X": X_SEED, "y": Y_SEED, "samples": smp, "title": "Brownian posterior"},
        {"mean": om, "std": os_, "X": X_SEED, "y": Y_SEED, "samples": osmp,
         "title": "Brownian + Constant(1) posterior (a random starting level)"}],
        ylim=(-6, 6)),
        "k(x, x') = min(x, x') for x, x' ≥ 0: rough Brownian paths; between observations the posterior is a "
        "Brownian bridge, after the last one its variance grows linearly. The motion is pinned to 0 at x = 0, "
        "so the point (0, 1) cannot be reached; adding a Constant kernel (a random offset) frees it. For x < 0 "
        "difflens uses an independent motion leaving the origin, which keeps the kernel positive semi-definite.")
    ctx.metric("brownian_plus_constant_mean_at_origin", float(om[np.argmin(np.abs(x))]))
    ctx.metric("brownian_std_at_origin", float(g.predict(np.array([0.0]), return_std=True)[1][0]))

    # -- fitted hyperparameters ------------------------------------------------------------------------
    ctx.heading("Fitted hyperparameters")
    n = cfg.fit_points
    true = {"lengthscale": 0.8, "variance": 1.5, "noise_variance": 0.05}
    gen = ctx.generator(40)
    Xf = torch.rand(n, generator=gen, dtype=torch.float64) * 8 - 1
    truth_gp = GP(SquaredExponential(true["lengthscale"], true["variance"]), optimize=False)
    f_all = truth_gp.sample_y(torch.cat([Xf, torch.as_tensor(x)]), 1, prior=True, generator=gen)[:, 0].cpu()
    f_train, f_test = f_all[:n], f_all[n:]
    yf = f_train + true["noise_variance"] ** 0.5 * torch.randn(n, generator=gen, dtype=torch.float64)
    fit = GP(SquaredExponential(1.0, 1.0), noise_variance=1e-2, max_iter=cfg.fit_iterations)
    with ctx.phase("fitting hyperparameters"):
        fit.fit(Xf, yf)
    seconds = fit.optimization.history.seconds
    fm, fs = (t.cpu() for t in fit.predict(torch.as_tensor(x), return_std=True))
    hp = fit.hyperparameters()
    at_truth = GP(SquaredExponential(true["lengthscale"], true["variance"]),
                  noise_variance=true["noise_variance"], optimize=False).fit(Xf, yf)
    trace = -fit.optimization.history.loss.cpu()
    ctx.figure("fitted", plots.fitted_posterior(x, fm, fs, Xf, yf, hp, trace, truth=f_test,
                                                title=f"{n} noisy draws of a GP with ℓ=0.8, σ²=1.5, noise 0.05"),
               "Hyperparameters fitted by maximising the log marginal likelihood with L-BFGS (difflens engine), "
               "starting from ℓ = 1, σ² = 1, noise 0.01. Right: the LML at each L-BFGS iteration.")
    ctx.table([[k, f"{true[k]:g}", f"{hp[k]:.4g}"] for k in true], headers=["hyperparameter", "true", "fitted"],
              caption=f"LML fitted {fit.log_marginal_likelihood():.3f} vs {at_truth.log_marginal_likelihood():.3f} "
                      f"at the true hyperparameters; {fit.fit_info_['evaluations']} evaluations, {seconds:.2f} s.")
    ctx.update_metrics({"fit_n": n, "fit_true": true, "fit_hyperparameters": hp,
                        "fit_lml": fit.log_marginal_likelihood(), "fit_lml_at_truth": at_truth.log_marginal_likelihood(),
                        "fit_evaluations": fit.fit_info_["evaluations"], "fit_seconds": seconds,
                        "fit_test_rmse": float(torch.sqrt(torch.mean((fm - f_test) ** 2)))})

    seed_fit = GP(SquaredExponential(1.0, 1.0), noise_variance=1e-2, max_iter=cfg.fit_iterations).fit(X_SEED, Y_SEED)
    sm, ss = seed_fit.predict(x, return_std=True)
    ctx.figure("fitted_seed_points", plots.fitted_posterior(
        x, sm, ss, X_SEED, Y_SEED, seed_fit.hyperparameters(), -seed_fit.optimization.history.loss.cpu(),
        title="the seed's five points, hyperparameters fitted"),
        "The same fit on the seed's five points: with so few points the LML prefers a short lengthscale.")
    ctx.metric("seed_points_fit", {**seed_fit.hyperparameters(), "lml": seed_fit.log_marginal_likelihood()})
    ctx.log(f"fitted {hp} in {seconds:.2f} s")
