"""MADCompetition: it does what MAD means, owns its engine, resumes exactly, agrees with plenoptic 1.4.

Agreement tolerance: both sides run the same objective from the same image with the same
Adam; they differ only in the metrics' rounding. In float64 that is plenoptic's SSIM window
(built in float32, sum 1 +- 1e-7: ~1e-6 relative in 1 - SSIM and its gradient), in float32
~1e-6 per evaluation. Adam's first step moves every pixel by lr * sign(gradient), so the few
pixels whose gradient is ~0 may move either way on either side: the losses of ten
iterations then agree to 1e-4 relative (measured: 1.6e-5 in float64, 6e-5 in float32),
and the images in the mean (not pixel by pixel).
"""

from __future__ import annotations

import warnings

import matplotlib

matplotlib.use("Agg")

import plenoptic as po
import pytest
import torch
from interrupts import InterruptAt

import difflens.plenoptic_names as pn
from difflens import data, metric
from difflens.engine import Optimization
from difflens.plot import mad as mad_plots
from difflens.synthesize import MADCompetition
from difflens.tools.io import CheckpointError


def mse(x, y):
    return metric.mse(x, y).mean()


def dssim(x, y):
    return 1 - metric.ssim(x, y).mean()


def p_mse(x, y):
    return po.metric.mse(x, y).mean()


def p_dssim(x, y):
    return 1 - po.metric.ssim(x, y).mean()


def crop(size=48, dtype=torch.float32):
    lo = 128 - size // 2
    return data.einstein(dtype=dtype)[..., lo:lo + size, lo:lo + size].contiguous()


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def make(minmax="min", optimized=dssim, reference=mse, lam=1e5, img=None, seed=0, **kw):
    return MADCompetition(crop() if img is None else img, optimized, reference, minmax, metric_tradeoff_lambda=lam,
                          generator=gen(seed), **kw)


def run(mad, n, **kw):
    kw.setdefault("stop_criterion", 0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mad.synthesize(n, progress=False, **kw)


@pytest.mark.parametrize("optimized,reference,lam", [(dssim, mse, 1e5), (mse, dssim, 10.0)],
                         ids=["ssim-held-mse", "mse-held-ssim"])
@pytest.mark.parametrize("minmax", ["min", "max"])
def test_optimized_metric_moves_while_reference_stays(optimized, reference, lam, minmax):
    mad = make(minmax, optimized, reference, lam)
    run(mad, 60)
    opt, ref = mad.optimized_metric_loss, mad.reference_metric_loss
    assert len(opt) == len(ref) == 61 and len(mad.losses) == 60
    change = (opt[-1] - opt[0]) / opt[0]
    assert (change < -0.2) if minmax == "min" else (change > 0.2), change
    assert abs(ref[-1] - ref[0]) / ref[0] < 0.03, (ref[0], ref[-1])
    with torch.no_grad():  # the recorded values are the metrics at the images
        assert float(optimized(mad.image, mad.mad_image)) == pytest.approx(float(opt[-1]), rel=1e-6)
        assert float(reference(mad.image, mad.initial_image)) == pytest.approx(float(ref[0]), rel=1e-6)
    assert mad.reference_metric_target == pytest.approx(float(ref[0]))


def test_initial_image_from_explicit_generator():
    a, b, c = make(seed=3), make(seed=3), make(seed=4)
    assert torch.equal(a.initial_image, b.initial_image) and not torch.equal(a.initial_image, c.initial_image)
    noise = torch.randn(a.image.shape, generator=gen(3))
    torch.testing.assert_close(a.initial_image, (a.image + 0.1 * noise).clamp(0, 1))
    with pytest.warns(UserWarning, match="automatically set to 10"):  # 1 - SSIM / MSE is ~ 58 here
        MADCompetition(crop(), dssim, mse, "min", generator=gen(3))


def test_owns_one_engine_and_records_like_plenoptic_1_1():
    mad = make()
    assert mad.optimization is None and mad.reference_metric_loss.shape == (1,)
    run(mad, 3, store_progress=True)
    engine = mad.optimization
    assert isinstance(engine, Optimization) and engine.iteration == 3
    assert len(mad.saved_mad_image) == 3 and mad.saved_iterations == [0, 1, 2]
    torch.testing.assert_close(mad.saved_mad_image[0], mad.initial_image)
    run(mad, 3, store_progress=True)
    assert mad.optimization is engine and len(mad.losses) == 6 and len(mad.saved_mad_image) == 6
    assert len(mad.optimized_metric_loss) == len(mad.reference_metric_loss) == 7
    assert mad.gradient_norm.shape == mad.pixel_change_norm.shape == (6,)
    torch.testing.assert_close(mad.losses[0], mad.objective_function(mad.initial_image).detach(), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="first call"):
        run(mad, 1, optimizer=torch.optim.SGD([mad.mad_image], lr=0.1))


def test_lbfgs_records_each_metric_once_per_iteration():
    mad = make()
    run(mad, 3, optimizer=lambda p: torch.optim.LBFGS(p, lr=0.1, max_iter=4))
    assert len(mad.optimized_metric_loss) == 4 and len(mad.losses) == 3


def test_save_load_resume_equals_uninterrupted(tmp_path):
    a = make()
    run(a, 6, store_progress=2)
    a.save(tmp_path / "mad.pt")
    run(a, 5)
    b = make()
    run(b, 11, store_progress=2)
    assert torch.equal(a.mad_image, b.mad_image) and torch.equal(a.losses, b.losses)
    c = make(seed=9).load(tmp_path / "mad.pt")  # another start image: the file's is restored
    assert len(c.losses) == 6 and c.saved_iterations == [0, 2, 4]
    run(c, 5)
    assert torch.equal(c.mad_image, b.mad_image) and torch.equal(c.losses, b.losses)
    assert torch.equal(c.optimized_metric_loss, b.optimized_metric_loss)
    assert torch.equal(c.reference_metric_loss, b.reference_metric_loss)


def test_load_rebuilds_the_saved_scheduler_and_resumes_exactly(tmp_path):
    # shared with Metamer through Synthesis.restore_engine: the saved StepLR is rebuilt from the file
    sched = lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)  # noqa: E731
    a = make()
    run(a, 4, scheduler=sched)
    a.save(tmp_path / "mad.pt")
    run(a, 3)
    b = make().load(tmp_path / "mad.pt")
    assert isinstance(b.scheduler, torch.optim.lr_scheduler.StepLR)
    assert b.optimizer.param_groups[0]["lr"] == a_lr_after(4)
    run(b, 3)
    assert torch.equal(a.mad_image, b.mad_image) and torch.equal(a.losses, b.losses)
    with pytest.raises(ValueError, match="only be set on the first call"):
        run(b, 1, optimizer=torch.optim.SGD([b.mad_image], lr=0.1))


def a_lr_after(steps, lr=0.01, step_size=2, gamma=0.5):
    return lr * gamma ** (steps // step_size)


def test_interrupted_run_resumes_from_checkpoint_exactly(tmp_path):
    path = tmp_path / "ck.pt"
    a = make()
    a.setup()
    a.optimization.configure(callbacks=[InterruptAt(4)])
    run(a, 10, checkpoint_path=path)
    assert a.optimization.stop_reason == "interrupted" and a.optimization.iteration == 4
    b = make()
    run(b, 10, checkpoint_path=path, resume=True)
    c = make()
    run(c, 10)
    assert b.optimization.iteration == 10 and torch.equal(b.mad_image, c.mad_image)
    assert torch.equal(b.optimized_metric_loss, c.optimized_metric_loss)


@pytest.mark.parametrize("change,match", [
    ({"img": True}, "image are different"), ({"minmax": "max"}, "minmax are different"),
    ({"lam": 1e4}, "metric_tradeoff_lambda are different"),
    ({"optimized": lambda x, y: 2 * dssim(x, y)}, "optimized_metric are different"),
    ({"reference": lambda x, y: (x - y).abs().mean()}, "reference_metric are different"),
])
def test_load_refuses_another_competition(tmp_path, change, match):
    a = make()
    run(a, 2)
    a.save(tmp_path / "mad.pt")
    kw = dict(change)
    img = crop(56)[..., 4:52, 4:52].contiguous() * 0.9 if kw.pop("img", False) else None
    other = make(img=img, **kw)
    with pytest.raises(CheckpointError, match=match):
        other.load(tmp_path / "mad.pt")


@pytest.mark.parametrize("dtype,rtol", [(torch.float64, 1e-4), (torch.float32, 1e-4)])
@pytest.mark.parametrize("minmax", ["min", "max"])
def test_agrees_with_plenoptic_from_the_same_start(dtype, rtol, minmax):
    img = crop(64, dtype)
    ours = MADCompetition(img, dssim, mse, minmax, metric_tradeoff_lambda=1e5, generator=gen(1))
    init = ours.initial_image
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = po.synth.MADCompetition(img, p_dssim, p_mse, minmax, metric_tradeoff_lambda=1e5)
        theirs.setup(initial_noise=0.0)
    with torch.no_grad():
        theirs._mad_image.copy_(init)  # plenoptic 1.4 draws its own noise: start both from ours
    theirs._reference_metric_target = p_mse(img, init).item()
    n = 10
    run(ours, n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs.synthesize(n, stop_criterion=0.0)
    their_losses = torch.as_tensor(theirs.losses[:n], dtype=torch.float64)
    torch.testing.assert_close(ours.losses.double(), their_losses, rtol=rtol, atol=0)
    # plenoptic 1.4 records the metrics at each step's start (the first twice): ours[k] is its [k + 1]
    theirs_opt = torch.as_tensor(theirs.optimized_metric_loss[1:n + 1], dtype=torch.float64)
    torch.testing.assert_close(ours.optimized_metric_loss[:n].double(), theirs_opt, rtol=rtol, atol=0)
    assert float((ours.mad_image.detach() - theirs.mad_image.detach()).abs().mean()) < 1e-4


def test_to_casts_and_resumes():
    mad = make()
    run(mad, 2)
    mad.to(torch.float64)
    assert mad.image.dtype == mad.initial_image.dtype == mad.mad_image.dtype == torch.float64
    run(mad, 2)
    assert len(mad.losses) == 4 and mad.mad_image.dtype == torch.float64


def test_bad_input_names_the_problem():
    img = crop()
    with pytest.raises(ValueError, match="minmax must be 'min' or 'max'"):
        MADCompetition(img, dssim, mse, "maximum", metric_tradeoff_lambda=1.0)
    with pytest.raises(ValueError, match="should return <= 5e-7 on two identical images"):
        MADCompetition(img, lambda x, y: metric.ssim(x, y).mean(), mse, "min", metric_tradeoff_lambda=1.0)
    with pytest.raises(ValueError, match="should return a scalar value"):
        MADCompetition(img, lambda x, y: metric.mse(x.repeat(2, 1, 1, 1), y), mse, "min", metric_tradeoff_lambda=1.0)
    with pytest.raises(ValueError, match="non-negative"):
        MADCompetition(img, lambda x, y: (x - y).mean(), mse, "min", metric_tradeoff_lambda=1.0)
    with pytest.raises(ValueError, match="does not keep the gradient"):
        MADCompetition(img, lambda x, y: mse(x, y).detach(), mse, "min", metric_tradeoff_lambda=1.0)
    with pytest.raises(TypeError, match="callable"):
        MADCompetition(img, "mse", mse, "min", metric_tradeoff_lambda=1.0)
    with pytest.raises(ValueError, match="outside allowed_range"):
        MADCompetition(img * 2, dssim, mse, "min", metric_tradeoff_lambda=1.0)
    with pytest.raises(ValueError, match="initial_noise must be a finite number >= 0"):
        MADCompetition(img, dssim, mse, "min", initial_noise=-1.0, metric_tradeoff_lambda=1.0)
    with pytest.raises(ValueError, match="initial_image has shape"):
        MADCompetition(img, dssim, mse, "min", metric_tradeoff_lambda=1.0, initial_image=img[..., :40, :40])
    with pytest.raises(ValueError, match="store_progress"):
        run(make(), 1, store_progress=-1)


def test_plots_and_plenoptic_names(tmp_path):
    import matplotlib.pyplot as plt

    mads = {}
    for name, (opt, ref, lam) in {"mse": (mse, dssim, 10.0), "dssim": (dssim, mse, 1e5)}.items():
        for mm in ("min", "max"):
            mads[name, mm] = make(mm, opt, ref, lam, img=crop(24))
            run(mads[name, mm], 4, store_progress=2)
    mad = mads["dssim", "min"]
    fig, axes_idx = mad_plots.plot_synthesis_status(mad, iteration=2, width_ratios={"plot_loss": 3}, figsize=(6, 2))
    assert sorted(axes_idx) == ["display_mad_image", "misc", "plot_loss", "plot_pixel_values"]
    assert len(axes_idx["plot_loss"]) == 2 and "iteration=2" in fig.axes[axes_idx["display_mad_image"]].get_title()
    with pytest.raises(ValueError, match="Only"):
        mad_plots.plot_synthesis_status(mad, included_plots=["display_metamer"])
    anim = mad_plots.animate(mad, figsize=(6, 2))
    assert list(anim._iter_gen()) == [0, 2, 4]
    from difflens.plot import save_animation

    assert save_animation(anim, tmp_path / "mad.gif").stat().st_size > 0
    pix = anim._fig.axes[axes_idx["plot_pixel_values"]]
    assert pix.get_title() == "Histogram of pixel values" and "iteration=4" in pix.get_legend().texts[0].get_text()
    fig = mad_plots.display_mad_image_all(mads["mse", "min"], mads["dssim", "min"], mads["mse", "max"],
                                          mads["dssim", "max"], "MSE", "1-SSIM")
    titles = [ax.get_title() for ax in fig.axes]
    assert any(t.startswith("Minimize MSE") for t in titles) and any(t.startswith("Maximize 1-SSIM") for t in titles)
    fig2 = mad_plots.plot_loss_all(mads["mse", "min"], mads["dssim", "min"], mads["mse", "max"], mads["dssim", "max"])
    assert [ax.get_title() for ax in fig2.axes] == ["dssim", "mse"]
    with pytest.raises(ValueError, match="same image"):
        other = make(img=crop(24) * 0.5)
        mad_plots.plot_loss_all(mads["mse", "min"], other, mads["mse", "max"], mads["dssim", "max"])
    assert pn.synth.mad_competition.plot_loss is mad_plots.plot_loss
    assert pn.synth.mad_competition.MADCompetition is MADCompetition is pn.synth.MADCompetition
    assert pn.metric.ssim is metric.ssim
    plt.close("all")


def test_non_finite_loss_is_named_and_rolled_back():
    from difflens.engine import NonFiniteLossError

    mad = make()
    run(mad, 3)
    mad.image[..., 0, 0] = torch.nan
    with pytest.raises(ValueError, match="Found a NaN in loss during optimization") as info:
        run(mad, 2)
    assert isinstance(info.value, NonFiniteLossError) and info.value.iteration == 3
    # the engine went back to the last iteration known to be finite, history included
    assert mad.optimization.iteration <= 3 and len(mad.losses) == mad.optimization.iteration
    assert bool(torch.isfinite(mad.mad_image).all()) and bool(torch.isfinite(mad.losses).all())


def test_add_noise_gives_the_asked_mse():
    img = crop()
    noisy = data.add_noise(img, [0.01, 0.1], generator=gen(2))
    torch.testing.assert_close(metric.mse(img, noisy), torch.tensor([[0.01], [0.1]]), rtol=1e-5, atol=1e-7)
    assert not torch.equal(noisy[0] / 0.1, noisy[1] / 0.1 ** 0.5 * 0.1 ** 0.5 / 0.1)  # independent draws
    with pytest.raises(ValueError, match="one per image"):
        data.add_noise(img.repeat(3, 1, 1, 1), [0.1, 0.2])
