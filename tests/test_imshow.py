"""difflens.plot.imshow / animshow: panels, titles, colour limits, layout, animations."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from PIL import Image

from difflens.plot import save_animation
from difflens.plot.display import animshow, imshow


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _imgs(b=3, c=1, h=16, w=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, c, h, w, generator=g) * torch.arange(1, b + 1).view(b, 1, 1, 1) + 0.5


def _range_line(ax):
    return ax.get_title().split("\n")[-2]


# -- panels and titles ----------------------------------------------------------------------------


def test_panel_counts_for_each_input_form():
    assert len(imshow(_imgs(2, 3)).axes) == 6  # 4-D: B x C panels
    mixed = [
        torch.rand(16, 16),
        torch.rand(2, 16, 16),
        np.random.default_rng(0).random((1, 1, 16, 16)),
    ]
    assert len(imshow(mixed).axes) == 4
    assert len(imshow(np.eye(8)).axes) == 1
    assert len(imshow(_imgs(2, 3), batch_idx=1).axes) == 3
    assert len(imshow(_imgs(2, 3), channel_idx=0).axes) == 2
    # panel order is batch-major
    x = _imgs(2, 3)
    fig = imshow(x)
    np.testing.assert_array_equal(fig.axes[4].images[0].get_array(), x[1, 1].numpy())


def test_package_level_names_are_callable():
    import difflens.plot

    for fn in (difflens.imshow, difflens.plot.imshow):
        fig = fn(torch.rand(1, 1, 4, 4), title="t")
        assert isinstance(fig, matplotlib.figure.Figure) and fig.axes[0].get_title().startswith(
            "t\n"
        )
    assert difflens.plot.animshow is animshow and difflens.animshow is animshow


def test_title_format_matches_pyrtools_layout():
    fig = imshow(_imgs(2), title=["first", "two\nlines"], vrange=(0, 1), zoom=2)
    t0, t1 = (ax.get_title() for ax in fig.axes)
    assert t0 == "first\n range: [0.0e+00, 1.0e+00] \n dims: [16, 16] * 2"
    assert t1.split("\n") == ["two", "lines", " range: [0.0e+00, 1.0e+00] ", " dims: [16, 16] * 2"]
    same = imshow(_imgs(2), title="same")
    assert all(ax.get_title().startswith("same\n range") for ax in same.axes)
    assert all(ax.get_title() == "" for ax in imshow(_imgs(2), title=None).axes)
    with pytest.raises(ValueError, match="3 titles for 2 panels"):
        imshow(_imgs(2), title=["a", "b", "c"])


def test_titles_and_clims_match_plenoptic():
    po = pytest.importorskip("plenoptic")
    x = _imgs(3, 1, 32, 32)
    x[1, 0, 3, 4] = 7.5  # an outlier so the modes differ
    for mode in ["auto0", "auto1", "auto2", "auto3", "indep0", "indep1", "indep2", "indep3"]:
        ours = imshow(x, vrange=mode, title=["a", "b", "c"], zoom=1)
        ref = po.imshow(x, vrange=mode, title=["a", "b", "c"], zoom=1)
        assert len(ours.axes) == len(ref.axes) == 3
        for a, r in zip(ours.axes, ref.axes):
            np.testing.assert_allclose(
                a.images[0].get_clim(), r.images[0].get_clim(), rtol=1e-5, atol=1e-6
            )
            assert a.get_title() == r.get_title(), mode
            assert a.images[0].get_cmap().name == r.images[0].get_cmap().name
        plt.close("all")


def test_vrange_modes_exact_maths():
    x = _imgs(3).double()
    flat = x.flatten().numpy()

    def clims(fig):
        return [tuple(ax.images[0].get_clim()) for ax in fig.axes]

    assert clims(imshow(x, vrange="auto1")) == [(flat.min(), flat.max())] * 3
    m = np.abs(flat).max()
    assert clims(imshow(x, vrange="auto0")) == [(-m, m)] * 3
    np.testing.assert_allclose(
        clims(imshow(x, vrange="auto2"))[0],
        (flat.mean() - 2 * flat.std(), flat.mean() + 2 * flat.std()),
    )
    p10, p90 = np.percentile(flat, [10, 90])
    np.testing.assert_allclose(
        clims(imshow(x, vrange="auto3"))[1], (p10 - (p90 - p10) / 8, p90 + (p90 - p10) / 8)
    )
    for i, (lo, hi) in enumerate(clims(imshow(x, vrange="indep1"))):
        assert (lo, hi) == (x[i].min().item(), x[i].max().item())
    for i, (lo, hi) in enumerate(clims(imshow(x, vrange="indep0"))):
        assert lo == -hi == -x[i].abs().max().item()
    assert clims(imshow(x, vrange=(-1, 2))) == [(-1.0, 2.0)] * 3
    assert clims(imshow(x, vrange=[(0, 1), (1, 2), (2, 3)])) == [(0.0, 1.0), (1.0, 2.0), (2.0, 3.0)]
    rows = clims(imshow(_imgs(4).double(), vrange="auto1row", col_wrap=2))
    assert rows[0] == rows[1] and rows[2] == rows[3] and rows[0] != rows[2]
    cols = clims(imshow(_imgs(4).double(), vrange="auto1col", col_wrap=2))
    assert cols[0] == cols[2] and cols[1] == cols[3]
    for bad in ["auto7", "indep1row", "max"]:
        with pytest.raises(ValueError, match="vrange"):
            imshow(x, vrange=bad)
    with pytest.raises(ValueError, match="vrange"):
        imshow(x, vrange=[(0, 1), (0, 1)])


def test_default_cmap_follows_vrange():
    assert imshow(_imgs(1), vrange="auto0").axes[0].images[0].get_cmap().name == "RdBu_r"
    assert imshow(_imgs(1)).axes[0].images[0].get_cmap().name == "gray"
    assert imshow(_imgs(1), cmap="viridis").axes[0].images[0].get_cmap().name == "viridis"


# -- layout ---------------------------------------------------------------------------------------


def test_col_wrap_grid_and_pixel_exact_axes():
    fig = imshow(_imgs(5), col_wrap=2, zoom=3)
    assert len(fig.axes) == 5
    boxes = [ax.get_window_extent() for ax in fig.axes]
    xs = sorted({round(b.x0, 3) for b in boxes})
    ys = sorted({round(b.y0, 3) for b in boxes})
    assert len(xs) == 2 and len(ys) == 3
    assert round(boxes[2].x0, 3) == round(boxes[0].x0, 3) and boxes[2].y0 < boxes[0].y0
    for b in boxes:  # 16 px * zoom 3 = 48 screen pixels
        assert b.width == pytest.approx(48) and b.height == pytest.approx(48)
    assert len(imshow(_imgs(5)).axes) == 5
    with pytest.raises(ValueError, match="col_wrap"):
        imshow(_imgs(2), col_wrap=0)


def test_mixed_sizes_are_zoomed_to_the_largest():
    fig = imshow([torch.rand(1, 1, 32, 32), torch.rand(1, 1, 16, 16)], zoom=1)
    assert fig.axes[0].get_title().endswith("* 1") and fig.axes[1].get_title().endswith("* 2")
    w = [ax.get_window_extent().width for ax in fig.axes]
    assert w[0] == pytest.approx(32) and w[1] == pytest.approx(32)
    assert (
        imshow(torch.rand(1, 1, 28, 28)).axes[0].get_title().endswith("* 4")
    )  # auto zoom for small images
    with pytest.raises(ValueError, match="integer multiples"):
        imshow([torch.rand(1, 1, 32, 32), torch.rand(1, 1, 12, 12)])
    with pytest.raises(ValueError, match="zoom"):
        imshow(torch.rand(1, 1, 8, 8), zoom=1.5)


def test_existing_axes():
    fig, ax = plt.subplots()
    out = imshow(torch.rand(1, 1, 8, 8), ax=ax, title="x")
    assert out is fig and ax.images and ax.get_title().startswith("x\n range")
    with pytest.raises(ValueError, match="one panel"):
        imshow(_imgs(2), ax=ax)


# -- dtypes and odd values ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dtype", [torch.float16, torch.bfloat16, torch.float64, torch.uint8, torch.bool]
)
def test_dtypes_and_grad(dtype):
    x = (torch.rand(1, 1, 8, 8) * 3).to(dtype)
    ax = imshow(x).axes[0]
    np.testing.assert_array_equal(ax.images[0].get_array(), x[0, 0].float().numpy())
    y = torch.rand(2, 1, 8, 8, requires_grad=True) * 2
    assert len(imshow(y).axes) == 2


def test_nan_and_inf_panels():
    x = torch.rand(3, 1, 8, 8)
    x[0] = float("nan")
    x[1, 0, 0, 0] = float("nan")
    x[2, 0, 0, 0] = float("inf")
    fig = imshow(x)
    assert "nan" in _range_line(fig.axes[0])
    assert all(np.isfinite(fig.axes[0].images[0].get_clim()))
    assert fig.axes[1].images[0].get_clim() == (np.nanmin(x[1].numpy()), np.nanmax(x[1].numpy()))
    finite = x[2][torch.isfinite(x[2])]
    assert fig.axes[2].images[0].get_clim() == (finite.min().item(), finite.max().item())
    fig.canvas.draw()  # renders without error


def test_rgb_and_complex():
    x = torch.rand(2, 3, 8, 8)
    fig = imshow(x, as_rgb=True)
    assert len(fig.axes) == 2
    np.testing.assert_allclose(fig.axes[1].images[0].get_array(), np.moveaxis(x[1].numpy(), 0, -1))
    assert imshow(np.zeros((8, 8, 3), np.uint8), as_rgb=True).axes[0].images[
        0
    ].get_array().shape == (8, 8, 3)
    with pytest.raises(ValueError, match="3 or 4 channels"):
        imshow(torch.rand(1, 2, 8, 8), as_rgb=True)
    z = torch.randn(1, 1, 8, 8, dtype=torch.complex64)
    fig = imshow(z, title="z")
    assert [ax.get_title().split("\n")[0] for ax in fig.axes] == ["z real", "z imaginary"]
    np.testing.assert_allclose(fig.axes[1].images[0].get_array(), z[0, 0].imag.numpy(), rtol=1e-6)
    fig = imshow(z, title="z", plot_complex="polar")
    np.testing.assert_allclose(fig.axes[0].images[0].get_array(), z[0, 0].abs().numpy(), rtol=1e-6)


def test_bad_inputs():
    with pytest.raises(ValueError, match="5-D"):
        imshow(torch.rand(1, 1, 1, 4, 4))
    with pytest.raises(ValueError, match="empty"):
        imshow([])
    with pytest.raises(TypeError, match="numeric"):
        imshow(np.array(["a", "b"]))
    with pytest.raises(ValueError, match="batch_idx"):
        imshow(_imgs(2), batch_idx=5)


# -- the tutorial's cells -------------------------------------------------------------------------


def test_tutorial_cells_run():
    import difflens as po

    img = po.data.einstein()
    rep = torch.nn.functional.avg_pool2d(img, 5, 1, 2)
    fig = po.imshow(torch.cat([img, rep]), title=["Original image", "Model output"])
    assert len(fig.axes) == 2
    pink = po.data.pink_noise((256, 256), generator=torch.Generator().manual_seed(0))
    pink = (pink - pink.min()) / (pink.max() - pink.min())
    curie = po.data.curie()
    po.imshow([curie, pink])
    fig = po.imshow(
        [img, rep, img, rep],
        col_wrap=2,
        vrange="auto1",
        title=[
            "Original image",
            "Model representation\nof original image",
            "Synthesized metamer",
            "Model representation\nof synthesized metamer",
        ],
    )
    assert len(fig.axes) == 4
    to_plot = torch.cat(
        [torch.ones_like(img), img, rep, pink, curie, rep, curie, pink, rep, img, img, rep]
    )
    fig = po.imshow(
        to_plot,
        col_wrap=3,
        title=["", "Original image", "Model representation\nof original image"]
        + 3
        * ["Initial image", "Synthesized metamer", "Model representation\nof synthesized metamer"],
    )
    for ax in fig.axes:
        if "representation" in ax.get_title():
            clim = (to_plot[2::3].min(), to_plot[2::3].max())
        else:
            clim = (0, 1)
        ax.images[0].set_clim(*clim)
        title = ax.get_title().split("\n")
        title[-2] = f" range: [{clim[0]:.01e}, {clim[1]:.01e}]"
        ax.set_title("\n".join(title))
    assert fig.axes[2].images[0].get_clim() == pytest.approx((rep.min().item(), rep.max().item()))
    assert fig.axes[0].get_title().split("\n")[-2] == " range: [0.0e+00, 1.0e+00]"
    assert fig.axes[5].get_title().split("\n")[-1] == " dims: [256, 256] * 1"


# -- animshow -------------------------------------------------------------------------------------


def test_animshow_writes_gif_with_all_frames(tmp_path):
    video = torch.rand(2, 1, 5, 12, 12, generator=torch.Generator().manual_seed(0))  # (B, C, T, H, W)
    anim = animshow(video, vrange="indep1", title=["a", "b"], zoom=2)
    fig = anim._fig
    assert len(fig.axes) == 2
    assert fig.axes[1].images[0].get_clim() == (video[1].min().item(), video[1].max().item())
    path = save_animation(anim, tmp_path / "movie.gif", fps=5)
    with Image.open(path) as gif:
        assert gif.n_frames == 5 and gif.size[0] >= 2 * 24


def test_animshow_list_of_frames_and_errors(tmp_path):
    frames = [[torch.rand(8, 8), torch.rand(1, 1, 8, 8)] for _ in range(3)]
    anim = animshow(frames, col_wrap=1)
    assert len(anim._fig.axes) == 2
    with Image.open(save_animation(anim, tmp_path / "m", fmt="gif")) as gif:
        assert gif.n_frames == 3
    with pytest.raises(ValueError, match="frame 1"):
        animshow([torch.rand(1, 1, 8, 8), torch.rand(1, 1, 4, 4)])
    with pytest.raises(ValueError, match="framerate"):
        animshow(torch.rand(2, 1, 1, 4, 4), framerate=0)
