import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from difflens.engine import CheckpointError, NonFiniteLossError  # noqa: E402
from difflens.synthesize import Metamer  # noqa: E402
from difflens.plot import metamer as metamer_module  # noqa: E402  (the plots of a Metamer)


class Pool(torch.nn.Module):
    """A linear model with a large, known null space: 2x2 block averages."""

    def forward(self, x):
        return F.avg_pool2d(x, 2)


class Blur(torch.nn.Module):
    def __init__(self):
        super().__init__()
        k = torch.exp(-torch.arange(-3.0, 4.0) ** 2 / 4)
        self.register_buffer("k", (k[:, None] * k[None, :] / (k.sum() ** 2))[None, None])

    def forward(self, x):
        return F.conv2d(F.pad(x, (3, 3, 3, 3), mode="circular"), self.k)


def images(b=1, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 1, size, size, generator=g)


def test_metamer_matches_representation_and_keeps_null_space_of_linear_model():
    img, init = images(seed=1), images(seed=2)
    met = Metamer(img, Pool(), range_penalty_lambda=0.0, initial_image=init)
    # residual of the representation halves each step: lr * 2/64 * 1/4 = 1/2
    met.synthesize(max_iter=100, optimizer=torch.optim.SGD([met.metamer], lr=64.0), stop_criterion=0.0,
                   progress=False)
    x = met.metamer.detach()
    torch.testing.assert_close(Pool()(x), Pool()(img), atol=1e-5, rtol=0)
    # gradient steps lie in the row space of the pooling operator, so the within-block
    # deviations (the null space component) are exactly those of the initial image
    def null(z):
        return z - F.interpolate(Pool()(z), scale_factor=2, mode="nearest")

    torch.testing.assert_close(null(x), null(init), atol=1e-6, rtol=0)
    assert met.losses.shape == (len(met.gradient_norm),)
    assert met.losses[-1] < 1e-9 < met.losses[0]


def test_batch_is_one_to_one_with_own_losses_and_convergence():
    targets = images(b=3, seed=3)
    met = Metamer(targets, Blur(), initial_image=images(b=3, seed=4))
    met.synthesize(max_iter=300, stop_criterion=1e-6, stop_iters_to_check=10, progress=False)
    assert met.losses.shape[1] == 3
    reps = Blur()(met.metamer.detach())
    for b in range(3):
        errs = [(reps[b] - Blur()(targets[j : j + 1])[0]).pow(2).mean() for j in range(3)]
        assert min(range(3), key=lambda j: errs[j]) == b  # each metamer matches its own target


def test_resume_equals_uninterrupted_and_save_load_round_trip(tmp_path):
    img, init = images(seed=5), images(seed=6)
    a = Metamer(img, Blur(), initial_image=init)
    a.synthesize(max_iter=20, store_progress=5, stop_criterion=0.0, progress=False)
    a.save(tmp_path / "met.pt")
    a.synthesize(max_iter=30, stop_criterion=0.0, progress=False)

    b = Metamer(img, Blur(), initial_image=init)
    b.synthesize(max_iter=50, store_progress=5, stop_criterion=0.0, progress=False)
    assert torch.equal(a.metamer, b.metamer) and torch.equal(a.losses, b.losses)

    c = Metamer(img, Blur()).load(tmp_path / "met.pt")
    assert len(c.losses) == 20 and c.saved_iterations == [0, 5, 10, 15, 20]
    torch.testing.assert_close(c.saved_metamer[0], init)
    c.synthesize(max_iter=30, stop_criterion=0.0, progress=False)
    assert torch.equal(c.metamer, b.metamer) and torch.equal(c.losses, b.losses)
    assert c.saved_metamer.shape == (11, 1, 1, 16, 16)


def test_load_rejects_other_target_or_model(tmp_path):
    a = Metamer(images(seed=7), Blur())
    a.synthesize(max_iter=2, progress=False)
    a.save(tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match="different target"):
        Metamer(images(seed=8), Blur()).load(tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match="different model"):
        Metamer(images(seed=7), Pool()).load(tmp_path / "m.pt")


def test_lbfgs_optimizer_works():
    img = images(seed=9)
    met = Metamer(img, Blur(), range_penalty_lambda=0.0)
    opt = torch.optim.LBFGS([met.metamer], line_search_fn="strong_wolfe")
    met.synthesize(max_iter=5, optimizer=opt, stop_criterion=0.0, progress=False)
    assert met.losses[-1] < 1e-3 * met.losses[0]


def test_nan_during_synthesis_raises_and_keeps_finished_work():
    class Explodes(torch.nn.Module):
        calls = 0

        def forward(self, x):
            Explodes.calls += 1
            return x * float("nan") if Explodes.calls > 12 else Blur()(x)

    met = Metamer(images(seed=10), Explodes())
    with pytest.raises(NonFiniteLossError, match="non-finite"):
        met.synthesize(max_iter=50, stop_criterion=0.0, progress=False)
    assert len(met.losses) > 0 and torch.isfinite(met.losses).all()
    assert torch.isfinite(met.metamer).all()


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda: Metamer(torch.rand(16), Blur()), ValueError, "batch dimension"),
        (lambda: Metamer(torch.ones(1, 1, 8, 8, dtype=torch.int64), Blur()), TypeError, "floating"),
        (lambda: Metamer(images() * 3, Blur()), ValueError, "allowed_range"),
        (lambda: Metamer(images(), torch.nn.Conv2d(1, 1, 3)), ValueError, "trainable"),
        (lambda: Metamer(images(), torch.nn.Dropout(0.5)), ValueError, "deterministic"),
        (lambda: Metamer(images(), Blur(), initial_image=torch.rand(1, 1, 8, 8)), ValueError, "shape"),
        (lambda: Metamer(images(), Blur(), allowed_range=(1, 0)), ValueError, "low < high"),
        (lambda: Metamer(images().masked_fill(images() > 0.5, float("nan")), Blur()), ValueError, "NaN"),
    ],
)
def test_bad_input_errors(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_optimizer_only_on_first_call():
    met = Metamer(images(), Blur())
    met.synthesize(max_iter=1, progress=False)
    with pytest.raises(ValueError, match="first call"):
        met.synthesize(max_iter=1, optimizer=torch.optim.Adam([met.metamer]), progress=False)


def test_default_initial_image_is_reproducible_and_uses_no_global_rng():
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = Metamer(images(), Blur())
    assert torch.equal(torch.get_rng_state(), state)
    b = Metamer(images(), Blur(), generator=torch.Generator().manual_seed(0))
    assert torch.equal(a.metamer, b.metamer)


def test_plots_and_animation(tmp_path):
    from PIL import Image

    from difflens.plot import save_animation

    met = Metamer(images(b=2, seed=11), Blur())
    met.synthesize(max_iter=6, store_progress=2, stop_criterion=0.0, progress=False)
    ax = metamer_module.plot_loss(met)
    assert len(ax.lines) == 2  # one per target
    assert (met.losses > 0).all()
    fig, axes_idx = metamer_module.plot_synthesis_status(
        met, included_plots=["display_metamer", "plot_loss", "plot_representation_error", "plot_pixel_values"])
    assert len(fig.axes) == 4 and axes_idx["plot_pixel_values"] == 3 and axes_idx["misc"] == []
    anim = metamer_module.animate(met, included_plots=["display_metamer", "plot_loss"], figsize=(8, 4))
    path = save_animation(anim, tmp_path / "anim", fmt="gif")
    assert Image.open(path).n_frames == 4  # iterations 0, 2, 4, 6
    with pytest.raises(ValueError, match="included_plots"):
        metamer_module.plot_synthesis_status(met, included_plots=["nope"])
