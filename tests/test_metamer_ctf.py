"""MetamerCTF: plenoptic's coarse-to-fine schedule, resume and save/load, bad input."""

import warnings

import pytest
import torch

from difflens import data
from difflens.engine import CheckpointError
from difflens.simulate import PortillaSimoncelli
from difflens.synthesize import Metamer, MetamerCTF
from difflens.tools.optim import l2_norm

SIZE = 32


def target(dtype=torch.float32):
    return data.gravel(dtype=dtype)[..., :SIZE, :SIZE]


def model(dtype=torch.float32):
    return PortillaSimoncelli((SIZE, SIZE), n_scales=2, n_orientations=3, spatial_corr_width=3).to(dtype)


def start(dtype=torch.float32, seed=1):
    return torch.rand(1, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def run(met, n, **kw):
    kw.setdefault("ctf_iters_to_check", 4)
    kw.setdefault("change_scale_criterion", None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        met.synthesize(n, progress=False, **kw)
    return met


@pytest.mark.parametrize("mode, criterion", [("together", None)])
def test_schedule_and_metamer_equal_plenoptic(mode, criterion):
    po = pytest.importorskip("plenoptic")
    img, init = target(torch.float64), start(torch.float64)
    theirs = po.synth.MetamerCTF(img, po.simul.PortillaSimoncelli((SIZE, SIZE), 2, 3, 3).to(torch.float64),
                                 loss_function=po.tools.optim.l2_norm, coarse_to_fine=mode)
    theirs.setup(initial_image=init.clone(), optimizer=torch.optim.Adam,
                 optimizer_kwargs={"lr": 0.01, "amsgrad": True})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs.synthesize(max_iter=40, change_scale_criterion=criterion, ctf_iters_to_check=4, stop_criterion=1e-3)
    ours = MetamerCTF(img, model(torch.float64), loss_function=l2_norm, initial_image=init, coarse_to_fine=mode)
    run(ours, 40, optimizer=torch.optim.Adam([ours.metamer], lr=0.01, amsgrad=True), stop_criterion=1e-3,
        change_scale_criterion=criterion)
    assert ours.scales_timing == theirs.scales_timing
    assert ours.scales_finished == tuple(theirs.scales_finished)
    torch.testing.assert_close(torch.as_tensor(ours.scales_loss, dtype=torch.float64), torch.as_tensor(theirs.scales_loss, dtype=torch.float64),
                               rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(ours.losses, torch.as_tensor(theirs.losses[:40], dtype=torch.float64),
                               rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(ours.metamer, theirs.metamer, rtol=0, atol=1e-5)


def test_together_matches_stage_scales_and_separate_adds_finest():
    img = target()
    together = MetamerCTF(img, model(), initial_image=start())
    assert together.scales == ("pixel_statistics", "residual_lowpass", 1, 0, "all")
    separate = MetamerCTF(img, model(), initial_image=start(), coarse_to_fine="separate")
    assert separate.scales[-2:] == ("residual_highpass", "all")
    run(together, 9)
    # after 8 steps of 4: pixel stats and lowpass done; the stage loss uses both + scale 1
    assert together.scales_finished == ("pixel_statistics", "residual_lowpass")
    m = together.model
    stage = ["pixel_statistics", "residual_lowpass", 1]
    with torch.no_grad():
        expected = l2 = (m(together.metamer, scales=[1] + stage[:2]) - m(img, scales=[1] + stage[:2])).pow(2).mean()
    assert l2 > 0
    with torch.no_grad():
        torch.testing.assert_close(together.objective().sum() - 0.1 * float(
            ((together.metamer - 1).clamp_min(0).pow(2) + (-together.metamer).clamp_min(0).pow(2)).sum()),
            expected, rtol=1e-5, atol=1e-8)


def test_full_loss_recorded_before_each_step_and_converges():
    met = MetamerCTF(target(), model(), initial_image=start())
    run(met, 30)
    assert met.losses.shape == (30,) and len(met.scales_loss) == 30
    # once every scale is in, the stage loss is the full loss
    all_from = met.scales_timing["all"][0]
    torch.testing.assert_close(met.losses[all_from:].float(), torch.tensor(met.scales_loss[all_from:]), rtol=1e-5, atol=0)
    assert met.losses[-1] < met.losses[0]


def test_stops_only_after_all_scales_ran_long_enough():
    met = MetamerCTF(target(), model(), initial_image=start())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        met.synthesize(200, stop_criterion=1e3, stop_iters_to_check=2, change_scale_criterion=None,
                       ctf_iters_to_check=3, progress=False)
    # every stage takes 3 iterations; "all" starts at 12 and must run > 3 more (plenoptic: i - start > 3)
    assert met.scales_timing["all"] == [12]
    assert met.optimization.iteration == 17 and met.optimization.stop_reason == "loss_change"


def test_resume_from_checkpoint_equals_uninterrupted(tmp_path):
    img = target()
    full = run(MetamerCTF(img, model(), initial_image=start()), 20)
    ckpt = tmp_path / "ctf.pt"
    part = MetamerCTF(img, model(), initial_image=start())
    run(part, 9, checkpoint_path=ckpt)  # stops mid-stage (stage boundaries at 4, 8, 12, 16)
    resumed = MetamerCTF(img, model(), initial_image=start())
    run(resumed, 11, checkpoint_path=ckpt, resume=True)  # finishes the recorded 9-iteration run
    assert resumed.optimization.iteration == 9
    run(resumed, 11)
    assert torch.equal(resumed.metamer, full.metamer)
    assert resumed.scales_timing == full.scales_timing
    torch.testing.assert_close(resumed.losses, full.losses, rtol=0, atol=0)


def test_save_load_resume_equals_uninterrupted(tmp_path):
    img = target()
    full = run(MetamerCTF(img, model(), initial_image=start()), 14)
    first = run(MetamerCTF(img, model(), initial_image=start()), 6)
    first.save(tmp_path / "m.pt")
    again = MetamerCTF(img, model(), initial_image=start(seed=5))
    again.load(tmp_path / "m.pt")
    assert again.scales == first.scales and again.scales_timing == first.scales_timing
    run(again, 8)
    assert torch.equal(again.metamer, full.metamer)
    assert again.scales_loss == full.scales_loss
    # a file saved with the other mode, or by a plain Metamer, is refused
    with pytest.raises(CheckpointError, match="coarse_to_fine"):
        MetamerCTF(img, model(), initial_image=start(), coarse_to_fine="separate").load(tmp_path / "m.pt")
    plain = Metamer(img, model(), initial_image=start())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain.synthesize(2, progress=False)
    plain.save(tmp_path / "plain.pt")
    with pytest.raises(CheckpointError):
        MetamerCTF(img, model(), initial_image=start()).load(tmp_path / "plain.pt")


def test_learning_rate_reset_at_each_stage():
    met = MetamerCTF(target(), model(), initial_image=start())
    sched = lambda opt: torch.optim.lr_scheduler.ExponentialLR(opt, 0.5)  # noqa: E731
    run(met, 5, scheduler=sched)
    # stage changed after step 4: lr back to 0.01, then one scheduler step
    assert met.optimization.history.lr[:5] == pytest.approx([0.01, 0.005, 0.0025, 0.00125, 0.01])


class NoScales(torch.nn.Module):
    def forward(self, x):
        return x.mean((-2, -1))


class IgnoresScales(torch.nn.Module):
    scales = ["a", "b"]

    def forward(self, x, scales=None):
        return x.mean((-2, -1))


@pytest.mark.parametrize("make, match", [
    (lambda img: MetamerCTF(img, NoScales()), "no scales attribute"),
    (lambda img: MetamerCTF(img, IgnoresScales()), "doesn't change shape"),
    (lambda img: MetamerCTF(img, model(), coarse_to_fine="both"), "Must be one of"),
])
def test_bad_models_and_modes(make, match):
    with pytest.raises(ValueError, match=match):
        make(target())


@pytest.mark.parametrize("kwargs, match", [
    ({"stop_criterion": 1e-2, "change_scale_criterion": 1e-2}, "strictly less than change_scale_criterion"),
    ({"ctf_iters_to_check": 0}, "ctf_iters_to_check must be a positive integer"),
    ({"change_scale_criterion": float("nan")}, "finite number or None"),
])
def test_bad_synthesize_arguments(kwargs, match):
    met = MetamerCTF(target(), model(), initial_image=start())
    with pytest.raises(ValueError, match=match):
        met.synthesize(3, progress=False, **kwargs)
