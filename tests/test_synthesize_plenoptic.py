"""plenoptic's own code against difflens: the quick-start tutorial with ``import difflens as po``,
and the metamer stop criterion (same start, same optimiser: same stopping iteration)."""

from __future__ import annotations

import contextlib
import io
import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import difflens  # noqa: E402

# The code cells of plenoptic's docs/tutorials/00_quickstart.md (plenoptic 1.4), unchanged but
# for the IPython magic ``%matplotlib inline`` and the plenoptic import, which the test replaces.
QUICKSTART = '''
import matplotlib.pyplot as plt
import torch

# so that relative sizes of axes created by po.imshow and others look right
plt.rcParams["figure.dpi"] = 72

plt.rcParams["animation.html"] = "html5"
# use single-threaded ffmpeg for animation writer
plt.rcParams["animation.writer"] = "ffmpeg"
plt.rcParams["animation.ffmpeg_args"] = ["-threads", "1"]

im = po.data.einstein()
fig = po.imshow(im)

# this is a convenience function for creating a simple Gaussian kernel
from plenoptic.simulate.canonical_computations.filters import (
    circular_gaussian2d,
)


# Simple rectified Gaussian convolutional model
class SimpleModel(torch.nn.Module):
    # in __init__, we create the object, initializing the convolutional weights and
    # nonlinearity
    def __init__(self, kernel_size=(7, 7)):
        super().__init__()
        self.kernel_size = kernel_size
        self.conv = torch.nn.Conv2d(
            1, 1, kernel_size=kernel_size, padding=(0, 0), bias=False
        )
        self.conv.weight.data[0, 0] = circular_gaussian2d(kernel_size, 3.0)

    # the forward pass of the model defines how to get from an image to the model's
    # representation
    def forward(self, x):
        # use circular padding so our output is the same size as our input
        x = po.tools.conv.same_padding(x, self.kernel_size, pad_mode="circular")
        return self.conv(x)


model = SimpleModel()
rep = model(im)

print(im.shape)
print(rep.shape)

fig = po.imshow(torch.cat([im, rep]), title=["Original image", "Model output"])

po.tools.remove_grad(model)

metamer = po.synth.Metamer(im, model)

matched_im = metamer.synthesize(store_progress=True, max_iter=20)
# if we call synthesize again, we resume where we left off
matched_im = metamer.synthesize(store_progress=True, max_iter=150)

po.synth.metamer.plot_loss(metamer)

fig = po.imshow(
    [im, rep, metamer.metamer, model(metamer.metamer)],
    col_wrap=2,
    vrange="auto1",
    title=[
        "Original image",
        "Model representation\\nof original image",
        "Synthesized metamer",
        "Model representation\\nof synthesized metamer",
    ],
)

po.synth.metamer.animate(
    metamer, included_plots=["display_metamer", "plot_loss"], figsize=(12, 5)
)

curie = po.data.curie()
po.imshow(curie);

metamer = po.synthesize.Metamer(
    im,
    model,
)
metamer.setup(initial_image=curie)

# we increase the length of time we run synthesis and decrease the
# stop_criterion, which determines when we think loss has converged
# for stopping synthesis early.
synth_image = metamer.synthesize(max_iter=500, stop_criterion=1e-6)

po.synth.metamer.plot_loss(metamer)

eig = po.synthesize.Eigendistortion(im, model)
eig.synthesize()

po.imshow(
    eig.eigendistortions,
    title=["Maximum eigendistortion", "Minimum eigendistortion"],
);
'''


def test_plenoptic_quickstart_runs_with_import_difflens_as_po(monkeypatch):
    import sys

    # the tutorial imports circular_gaussian2d from plenoptic's module path: serve difflens's
    import difflens.simulate.canonical_computations.filters as filters

    for name, module in {"plenoptic": difflens, "plenoptic.simulate": difflens.simul,
                         "plenoptic.simulate.canonical_computations": difflens.simulate.canonical_computations,
                         "plenoptic.simulate.canonical_computations.filters": filters}.items():
        monkeypatch.setitem(sys.modules, name, module)
    # 64x64 crops of the tutorial's 256x256 photographs keep the test at a few seconds
    # (the code is unchanged; only the data are smaller)
    for name in ("einstein", "curie"):
        full = getattr(difflens.data, name)()
        monkeypatch.setattr(difflens.data, name, lambda full=full: full[..., 96:160, 96:160].clone())
    scope = {"po": difflens}
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()), \
            contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        exec(compile(QUICKSTART, "quickstart", "exec"), scope)  # noqa: S102
    met, model, im = scope["metamer"], scope["model"], scope["im"]
    # the second metamer, started from Curie, matches Einstein's representation
    with torch.no_grad():
        err = (model(met.metamer) - model(im)).pow(2).mean()
    assert float(err) < 1e-4 * float(model(im).pow(2).mean())
    assert scope["eig"].eigendistortions.shape == (2, 1, 64, 64)
    assert scope["eig"].eigenvalues[0] > scope["eig"].eigenvalues[1]
    plt.close("all")


def test_top_level_aliases_mirror_plenoptic(tmp_path):
    po = pytest.importorskip("plenoptic")
    assert difflens.synth.Metamer is difflens.synthesize.Metamer and difflens.simul is difflens.simulate
    import difflens.plenoptic_names as facade
    from difflens.plot import metamer as metamer_plots

    # plenoptic keeps plots beside the method; difflens joins them only in this top-level facade
    assert facade.synthesize.metamer.plot_loss is metamer_plots.plot_loss is difflens.synth.metamer.plot_loss
    assert facade.synthesize.metamer.Metamer is difflens.synthesize.Metamer
    assert not hasattr(difflens.synthesize.metamer, "plot_loss")
    x = torch.rand(1, 1, 3, 3, dtype=torch.float64, requires_grad=True)
    for t in (x, x.float(), torch.arange(4), torch.ones(2, dtype=torch.complex64)):
        ours, theirs = difflens.to_numpy(t, squeeze=True), po.to_numpy(t, squeeze=True)
        assert ours.dtype == theirs.dtype and np.array_equal(ours, theirs)
    arr = np.zeros((1, 2))
    assert difflens.to_numpy(arr) is arr
    from PIL import Image

    for name, value in (("b.png", 10), ("a.png", 200), ("c.png", 90)):
        Image.fromarray(np.full((4, 5), value, dtype=np.uint8)).save(tmp_path / name)
    ours = difflens.load_images(tmp_path, sorted_key=lambda p: p.name[::-1])
    theirs = po.load_images(tmp_path, sorted_key=lambda p: p.name[::-1])
    torch.testing.assert_close(ours, theirs)
    torch.testing.assert_close(difflens.load_images(tmp_path), po.load_images(tmp_path))
    with pytest.raises(ValueError, match="sorted_key"):
        difflens.load_images([tmp_path / "a.png"], sorted_key=str)


@pytest.mark.parametrize("stop_criterion, stop_iters_to_check", [(1e-3, 5), (1e-4, 5), (1e-5, 10)])
def test_metamer_stops_at_the_same_iteration_as_plenoptic(stop_criterion, stop_iters_to_check):
    po = pytest.importorskip("plenoptic")
    img = difflens.data.einstein()[..., 100:132, 100:132].double()
    init = torch.rand(img.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    theirs = po.simulate.Gaussian(5, std=1.0).double().eval()
    ours = difflens.simulate.Gaussian(5, std=1.0).double().eval()
    po.tools.remove_grad(theirs)
    difflens.tools.remove_grad(ours)

    ref = po.synthesize.Metamer(img, theirs)
    ref.setup(initial_image=init, optimizer=torch.optim.Adam, optimizer_kwargs={"lr": 0.01, "amsgrad": True})
    met = difflens.synthesize.Metamer(img, ours)
    met.setup(initial_image=init, optimizer=torch.optim.Adam, optimizer_kwargs={"lr": 0.01, "amsgrad": True})
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        ref.synthesize(max_iter=2000, stop_criterion=stop_criterion, stop_iters_to_check=stop_iters_to_check)
        met.synthesize(max_iter=2000, stop_criterion=stop_criterion, stop_iters_to_check=stop_iters_to_check,
                       progress=False)
    n_ref = len(ref._losses)  # one loss per step taken
    assert met.optimization.stop_reason == "loss_change" and n_ref < 2000
    assert met.optimization.iteration == n_ref
    # same trajectory, so the agreement is not a coincidence of the criterion
    torch.testing.assert_close(met.losses, torch.tensor(ref._losses, dtype=met.losses.dtype), rtol=1e-6, atol=1e-9)
