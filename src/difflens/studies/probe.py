"""Study ``probe``: the seed-004 tutorial — metamers and eigendistortions of three early-vision models."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from .registry import study
from .settings import StudySettings, setting

# Berardino et al. (2017) values, as in the tutorial.
LG_PARAMS = {"luminance_scalar": 14.95, "luminance.std": 4.235, "center_surround.center_std": 1.962,
             "center_surround.surround_std": 4.235, "center_surround.amplitude_ratio": 1.25}


def tutorial_models(device: torch.device) -> dict[str, torch.nn.Module]:
    """The tutorial's Gaussian, CenterSurround and LuminanceGainControl (31×31, circular padding), frozen."""
    from difflens import simulate, tools

    gaussian = simulate.Gaussian((31, 31), std=3.0, pad_mode="circular")
    cs = simulate.CenterSurround((31, 31), center_std=1.962, surround_std=4.235, pad_mode="circular")
    lg = simulate.LuminanceGainControl((31, 31), pad_mode="circular")
    lg.load_state_dict({k: torch.as_tensor([v]) for k, v in LG_PARAMS.items()})
    models = {"Gaussian": gaussian, "CenterSurround": cs, "LuminanceGainControl": lg}
    for m in models.values():
        tools.remove_grad(m)
        m.eval().to(device)
    return models


@dataclass(frozen=True)
class ProbeSettings(StudySettings):
    """Settings of the ``probe`` study (iteration counts are per model; all three starts run as one batch)."""

    PRESETS = {"quick": {"gaussian_iterations": 300, "center_surround_iterations": 300,
                         "gain_control_iterations": 600},
               "full": {"gain_control_iterations": 3500}}

    gaussian_iterations: int = setting(1000, "metamer iterations at most, Gaussian model", minimum=1)
    center_surround_iterations: int = setting(1000, "metamer iterations at most, CenterSurround model", minimum=1)
    gain_control_iterations: int = setting(2000, "metamer iterations at most, LuminanceGainControl model "
                                                 "(the tutorial's 3500 with --full)", minimum=1)
    stop_criterion: float = setting(1e-7, "a metamer stops when its loss changes by less than this over "
                                          "stop_iters_to_check iterations (linear models)", minimum=0.0)
    gain_control_stop_criterion: float = setting(1e-11, "the same for LuminanceGainControl", minimum=0.0)
    stop_iters_to_check: int = setting(50, "iterations over which the loss change is measured", minimum=1)
    gain_control_lr: float = setting(0.007, "Adam learning rate for LuminanceGainControl (the others use 0.01)",
                                     minimum=1e-8, maximum=1.0)
    store_every: int = setting(10, "keep the Gaussian metamer every this many iterations for the animation",
                               minimum=1)


@study("probe", title="Probing early-vision models: metamers and eigendistortions", settings=ProbeSettings,
       headline=(("Gaussian.metamer_final_loss.white_noise", "Gaussian metamer loss (white-noise start)"),
                 ("LuminanceGainControl.metamer_final_loss.white_noise", "gain-control metamer loss"),
                 ("LuminanceGainControl.eigenvalue_max", "gain-control max eigenvalue"),
                 ("LuminanceGainControl.eigenvalue_min", "gain-control min eigenvalue")),
       figure="Gaussian_metamers", order=10,
       description="The seed-004 tutorial: for a Gaussian, a centre-surround and a luminance gain-control "
                   "model, metamers of the Einstein photograph synthesised from white noise, pink noise "
                   "and a second photograph (what each model ignores), and the eigendistortions it is "
                   "most and least sensitive to.")
def run(ctx) -> None:
    """Run the study into ``ctx`` (a :class:`~difflens.studies.context.StudyContext`: settings,
    seed, device, output folder and report).
    """
    from difflens import data, tools
    from difflens.plot import imshow
    from difflens.plot.metamer import animate, plot_loss
    from difflens.synthesize import Eigendistortion, Metamer

    s = ctx.settings
    dev = ctx.device
    img = data.einstein(device=dev)
    curie = data.curie(device=dev)
    pink = tools.rescale(data.pink_noise((256, 256), generator=ctx.generator(1))).to(dev)
    white = torch.rand(img.shape, generator=ctx.generator(2)).to(dev)
    inits = {"white noise": white, "pink noise": pink, "Curie": curie}
    init_batch = torch.cat(list(inits.values()))
    models = tutorial_models(dev)
    iterations = {"Gaussian": s.gaussian_iterations, "CenterSurround": s.center_surround_iterations,
                  "LuminanceGainControl": s.gain_control_iterations}
    ctx.metric("image", "einstein 256x256")

    fig = imshow([img, curie, pink, white], title=["target (Einstein)", "Curie", "pink noise", "white noise"],
                 col_wrap=4)
    ctx.figure("inputs", fig, "The target image and the three starting points of synthesis.")

    for name, model in models.items():
        ctx.heading(name)
        met = Metamer(img.repeat(len(inits), 1, 1, 1), model, initial_image=init_batch)
        gain = name == "LuminanceGainControl"
        opt = torch.optim.Adam([met.metamer], s.gain_control_lr, amsgrad=True) if gain else None
        with ctx.phase(f"{name} metamers"):
            met.synthesize(iterations[name], optimizer=opt,
                           stop_criterion=s.gain_control_stop_criterion if gain else s.stop_criterion,
                           stop_iters_to_check=s.stop_iters_to_check,
                           store_progress=s.store_every if name == "Gaussian" else False,
                           progress=ctx.progress_label(f"{name} metamers"),
                           checkpoint_path=ctx.checkpoint(f"{name}_metamer"), resume=ctx.resume)
        seconds = met.optimization.history.seconds
        final = met.losses[-1]
        iters = len(met.losses)
        ctx.metric(f"{name}.metamer_seconds", seconds)
        ctx.metric(f"{name}.metamer_iterations", iters)
        ctx.metric(f"{name}.metamer_ms_per_iteration", 1000 * seconds / max(iters, 1))
        for (label, _), loss in zip(inits.items(), final):
            ctx.metric(f"{name}.metamer_final_loss.{label.replace(' ', '_')}", loss)

        with torch.no_grad():
            panels, titles = [], []
            for i, label in enumerate(inits):
                x = met.metamer[i : i + 1]
                panels += [init_batch[i : i + 1], x, model(x) - model(img), x - img]
                titles += [f"start: {label}", "metamer", "model(metamer) - model(target)", "metamer - target"]
        ctx.figure(f"{name}_metamers", imshow([p.detach() for p in panels], col_wrap=4, vrange="indep1",
                                              title=titles),
                   f"{name}: each row starts synthesis from a different image (the target is in the first "
                   "figure). The model's representation of every metamer matches the target's (third column, "
                   "near zero), while the images differ from the target in what the model ignores (fourth).")
        ax = plot_loss(met)
        ctx.figure(f"{name}_loss", ax.figure, f"{name}: metamer loss per iteration, one line per starting point.")
        if name == "Gaussian":
            ctx.animation(f"{name}_synthesis", animate(met, included_plots=["display_metamer", "plot_loss"],
                                                       figsize=(9, 4)),
                          "Metamer synthesis from white noise for the Gaussian model.")

        with ctx.phase(f"{name} eigendistortions"):
            start = time.perf_counter()
            eig = Eigendistortion(img, model)
            eig.synthesize()
            ctx.metric(f"{name}.eigendistortion_seconds", time.perf_counter() - start)
        ctx.metric(f"{name}.eigenvalue_max", eig.eigenvalues[0])
        ctx.metric(f"{name}.eigenvalue_min", eig.eigenvalues[-1])
        d = eig.eigendistortions.detach()
        fig = imshow([d[:1], d[-1:], img + 3 * d[:1], img + 3 * d[-1:]], col_wrap=4,
                     title=["max eigendistortion", "min eigendistortion", "image + 3·max", "image + 3·min"])
        ctx.figure(f"{name}_eigendistortions", fig,
                   f"{name}: the distortions the model is most and least sensitive to "
                   f"(eigenvalues {float(eig.eigenvalues[0]):.3g} and {float(eig.eigenvalues[-1]):.3g}).")
        if name == "LuminanceGainControl":
            _shift_experiment(ctx, model, img, d[:1])

    ctx.table([[n, ctx.metrics[f"{n}.metamer_iterations"], f"{ctx.metrics[f'{n}.metamer_ms_per_iteration']:.2f}",
                f"{ctx.metrics[f'{n}.eigenvalue_max']:.4g}", f"{ctx.metrics[f'{n}.eigenvalue_min']:.3g}"]
               for n in models],
              ["model", "metamer iterations", "ms / iteration (batch 3)", "max eigenvalue", "min eigenvalue"],
              "Summary")


def _shift_experiment(ctx, model, img, distortion) -> None:
    """The tutorial's last cells: a gain-control model's sensitivity depends on where the distortion sits."""
    from difflens import tools

    with torch.no_grad():
        here = tools.l2_norm(model(img), model(img + distortion))
        shifted = tools.l2_norm(model(img), model(img + distortion.roll(128, -1)))
    ctx.metric("LuminanceGainControl.max_eigendistortion_response", here)
    ctx.metric("LuminanceGainControl.shifted_max_eigendistortion_response", shifted)
    ctx.text(f"Moving the maximal eigendistortion by half the image changes the gain-control model's "
             f"response from {float(here):.4g} to {float(shifted):.4g}: its sensitivity is adaptive, "
             "unlike the linear models'.")
