"""Study ``textures``: Portilla–Simoncelli texture metamers, pyramid coefficients, MAD competition."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .registry import study
from .settings import StudySettings, setting

KINDS = {"brick": "regular", "gravel": "stochastic", "grass": "stochastic", "reptile_skin": "mixed"}


@dataclass(frozen=True)
class TexturesSettings(StudySettings):
    """Settings of the ``textures`` study (texture crops are the top-left ``size`` x ``size`` pixels)."""

    PRESETS = {"quick": {"size": 64, "n_scales": 3, "spatial_corr_width": 7, "lbfgs_steps": 8,
                         "mad_size": 64, "mad_iterations": 25},
               "full": {"size": 256, "spatial_corr_width": 9, "lbfgs_steps": 100, "mad_iterations": 500}}

    textures: tuple[str, ...] = setting(("brick", "gravel", "reptile_skin"),
                                        "bundled textures to synthesise (regular, stochastic, mixed)",
                                        choices=tuple(KINDS))
    size: int = setting(128, "texture size in pixels (a crop of the 256 x 256 photograph)", unit="px",
                        minimum=32, maximum=256)
    n_scales: int = setting(4, "Portilla-Simoncelli pyramid scales", minimum=1, maximum=6)
    n_orientations: int = setting(4, "orientations per scale", minimum=2, maximum=8)
    spatial_corr_width: int = setting(7, "auto-correlation window (at most size / 2**n_scales)", minimum=1)
    lbfgs_steps: int = setting(40, "L-BFGS steps per texture (each up to 10 line-search iterations)", minimum=1)
    start: str = setting("white", "starting image: white or pink noise around the texture's mean",
                         choices=("white", "pink"))
    mad_size: int = setting(256, "Einstein crop size for the MAD competition", unit="px", minimum=32, maximum=256)
    mad_iterations: int = setting(150, "Adam iterations for each of the four MAD images", minimum=1)
    mad_noise: float = setting(0.04, "standard deviation of the noise the MAD images start from", minimum=0.0,
                               maximum=1.0)


@study("textures", title="Texture metamers and MAD competition", settings=TexturesSettings,
       headline=(("ps_loss_brick", "PS loss, brick"), ("ps_loss_gravel", "PS loss, gravel"),
                 ("ps_loss_reptile_skin", "PS loss, reptile skin"),
                 ("mad_ssim_range", "SSIM range at fixed MSE")),
       figure="texture_metamers", order=60,
       description="Portilla & Simoncelli (2000) texture metamers of a regular, a stochastic and a mixed "
                   "bundled texture, synthesised from noise by matching the model's statistics; the "
                   "steerable-pyramid coefficients the statistics are computed from; and a MAD competition "
                   "(Wang & Simoncelli 2008) between MSE and SSIM on the Einstein photograph.")
def run(ctx) -> None:
    s = ctx.settings
    coarsest = s.size // 2 ** s.n_scales
    if s.size % 2 ** s.n_scales or s.spatial_corr_width > coarsest:
        raise ValueError(f"size={s.size} with n_scales={s.n_scales} leaves a {coarsest}-pixel coarsest image: "
                         f"size must be divisible by {2 ** s.n_scales} and spatial_corr_width <= {coarsest}")
    _texture_metamers(ctx)
    _pyramid(ctx)
    _mad(ctx)


def _texture_metamers(ctx) -> None:
    from difflens import data, tools
    from difflens.plot import imshow, plot_ps_representation
    from difflens.simulate import PortillaSimoncelli, portilla_simoncelli_loss
    from difflens.synthesize import Metamer

    import matplotlib.pyplot as plt

    s, dev = ctx.settings, ctx.device
    ctx.heading("Texture metamers")
    model = PortillaSimoncelli((s.size, s.size), s.n_scales, s.n_orientations, s.spatial_corr_width).to(dev)
    ctx.metric("ps_statistics", model.n_statistics)
    results = {}
    for i, name in enumerate(s.textures):
        img = data.load_image(name, device=dev)[..., :s.size, :s.size]
        g = ctx.generator(10 + i)
        if s.start == "white":
            noise = torch.rand(img.shape, generator=g) - 0.5
        else:
            noise = tools.rescale(data.pink_noise((s.size, s.size), generator=g)) - 0.5
        init = (img.mean() + 0.2 * noise.to(dev)).clamp(0, 1)
        met = Metamer(img, model, loss_function=portilla_simoncelli_loss(model, img), initial_image=init,
                      range_penalty_lambda=0.1)
        optimizer = lambda p: torch.optim.LBFGS(p, lr=1, max_iter=10, max_eval=12, history_size=100,  # noqa: E731
                                                line_search_fn="strong_wolfe")
        with ctx.phase(f"{name} metamer"):
            met.synthesize(s.lbfgs_steps, optimizer=optimizer, stop_criterion=0.0,
                           progress=ctx.progress_label(f"{name} metamer"),
                           checkpoint_path=ctx.checkpoint(f"{name}_metamer"), resume=ctx.resume)
        loss = met.losses
        with torch.no_grad():
            final = float(met.objective().sum())
        results[name] = (img, init, met.metamer.detach(), loss)
        ctx.metric(f"ps_loss_{name}", final)
        ctx.metric(f"ps_initial_loss_{name}", float(loss[0]))
        ctx.metric(f"ps_iterations_{name}", met.optimization.iteration)
        ctx.metric(f"ps_seconds_{name}", met.optimization.history.seconds)
        with torch.no_grad():
            fig, _ = plot_ps_representation(model, model(met.metamer) - model(img),
                                            title=f"{name}: metamer statistics - target statistics")
        ctx.figure(f"{name}_statistics_error", fig,
                   f"{name} ({KINDS[name]}): the difference between the metamer's and the target's statistics, "
                   "per statistic family (norms over the correlation windows).")

    panels, titles = [], []
    for name, (img, init, x, _) in results.items():
        panels += [img, init, x]
        titles += [f"{name} ({KINDS[name]})", "start", "metamer"]
    ctx.figure("texture_metamers", imshow(panels, col_wrap=3, title=titles, vrange=(0, 1)),
               "Each row: a bundled texture, the noise the synthesis started from, and its Portilla-Simoncelli "
               "metamer (same statistics, new sample of the texture).")
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, (*_, loss) in results.items():
        ax.semilogy(loss.numpy(), label=name)
    ax.set_xlabel("L-BFGS step")
    ax.set_ylabel("loss (weighted statistics distance)")
    ax.legend()
    ctx.figure("texture_losses", fig, "Loss per L-BFGS step of each texture metamer.")
    ctx.table([[n, KINDS[n], f"{ctx.metrics[f'ps_initial_loss_{n}']:.3g}", f"{ctx.metrics[f'ps_loss_{n}']:.3g}",
                ctx.metrics[f"ps_iterations_{n}"], f"{ctx.metrics[f'ps_seconds_{n}']:.1f}"] for n in results],
              ["texture", "kind", "initial loss", "final loss", "L-BFGS steps", "seconds"], "Texture metamers")


def _pyramid(ctx) -> None:
    from difflens import data
    from difflens.plot import pyrshow
    from difflens.simulate import SteerablePyramidFreq

    s = ctx.settings
    ctx.heading("Steerable pyramid")
    name = s.textures[0]
    img = data.load_image(name, device=ctx.device)[..., :s.size, :s.size]
    pyr = SteerablePyramidFreq(img.shape[-2:], height=s.n_scales, order=s.n_orientations - 1,
                               is_complex=True).to(ctx.device)
    with torch.no_grad():
        coeffs = pyr(img)
    ctx.metric("pyramid_bands", sum(v.shape[2] if v.ndim == 5 else 1 for v in coeffs.values()))
    fig = pyrshow(coeffs, zoom=max(0.5, 128 / s.size))
    ctx.figure("pyramid_coefficients", fig,
               f"Complex steerable-pyramid coefficients of the {name} photograph (real parts): the bands whose "
               "magnitudes and phases the Portilla-Simoncelli statistics correlate.")


def _mad(ctx) -> None:
    import warnings

    from difflens import data
    from difflens.metric import mse, ssim
    from difflens.plot import imshow
    from difflens.synthesize import MADCompetition

    s = ctx.settings
    ctx.heading("MAD competition: MSE vs SSIM")
    img = data.einstein(device=ctx.device)[..., :s.mad_size, :s.mad_size]

    def d_mse(x, y):
        return mse(x, y).mean()

    def d_ssim(x, y):
        return 1 - ssim(x, y).mean()

    metrics = {"mse": d_mse, "ssim": d_ssim}
    # plenoptic's MAD tutorial's tradeoffs: how hard the other metric is held fixed
    tradeoff = {("ssim", "min"): 1e4, ("ssim", "max"): 1e6, ("mse", "min"): 1.0, ("mse", "max"): 10.0}
    images, titles = {}, []
    for opt_name, ref_name in (("ssim", "mse"), ("mse", "ssim")):
        for minmax in ("min", "max"):
            mad = MADCompetition(img, metrics[opt_name], metrics[ref_name], minmax, initial_noise=s.mad_noise,
                                 metric_tradeoff_lambda=tradeoff[opt_name, minmax], range_penalty_lambda=0.1,
                                 generator=ctx.generator(100))
            label = f"{'best' if minmax == 'min' else 'worst'}_{opt_name}"
            with ctx.phase(f"MAD {label}"), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # SSIM warns when a pixel leaves [0, 1] by a hair
                mad.synthesize(s.mad_iterations, optimizer=torch.optim.Adam([mad.mad_image], lr=0.01, amsgrad=True),
                               stop_criterion=0.0, progress=ctx.progress_label(f"MAD {label}"),
                               checkpoint_path=ctx.checkpoint(f"mad_{label}"), resume=ctx.resume)
            x = mad.mad_image.detach()
            with torch.no_grad():
                vals = {n: float(f(img, x)) for n, f in metrics.items()}
            images[label] = x
            titles.append(f"{label.replace('_', ' ').upper()}: MSE {vals['mse']:.4f}, SSIM {1 - vals['ssim']:.3f}")
            ctx.metric(f"mad_{label}_mse", vals["mse"])
            ctx.metric(f"mad_{label}_ssim", 1 - vals["ssim"])
            ctx.metric(f"mad_{label}_seconds", mad.optimization.history.seconds)
    start = MADCompetition(img, d_mse, d_ssim, "min", initial_noise=s.mad_noise, metric_tradeoff_lambda=1.0,
                           generator=ctx.generator(100)).initial_image
    with torch.no_grad():
        ctx.metric("mad_start_mse", float(d_mse(img, start)))
        ctx.metric("mad_start_ssim", float(1 - d_ssim(img, start)))
    ctx.metric("mad_ssim_range", ctx.metrics["mad_best_ssim_ssim"] - ctx.metrics["mad_worst_ssim_ssim"])
    fig = imshow([img, start, *images.values()], col_wrap=3, vrange=(0, 1),
                 title=["Einstein", f"start: MSE {ctx.metrics['mad_start_mse']:.4f}, "
                                    f"SSIM {ctx.metrics['mad_start_ssim']:.3f}", *titles])
    ctx.figure("mad_images", fig,
               "MAD competition from the same noisy start: best and worst SSIM with MSE held fixed (top right, "
               "bottom left), and best and worst MSE with SSIM held fixed. Images of equal MSE can look very "
               "different; SSIM's extremes at fixed MSE show where the two metrics disagree.")
