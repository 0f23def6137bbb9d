"""Steerable and Laplacian pyramids against plenoptic 1.4.0 and against exact maths."""

import itertools
import warnings

import matplotlib
import numpy as np
import pytest
import torch

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import plenoptic as po

import difflens
from difflens.data import curie, einstein
from difflens.simulate import LaplacianPyramid, SteerablePyramidFreq
from difflens.simulate.steerable_pyramid import bands_by_orientation, bands_by_scale


@pytest.fixture(scope="module")
def images():
    """einstein and curie stacked on the batch dimension, (2, 1, 256, 256) float32."""
    return torch.cat([einstein(), curie()], 0)


def _pair(shape, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # odd sizes warn in both
        return (SteerablePyramidFreq(shape, *args, **kwargs),
                po.simul.SteerablePyramidFreq(shape, *args, **kwargs))


def _assert_coeffs_close(a, b, tol=1e-5):
    assert list(a.keys()) == list(b.keys())
    for k in a:
        assert a[k].shape == b[k].shape and a[k].dtype == b[k].dtype, k
        err = (a[k] - b[k]).abs().max().item()
        assert err <= tol * max(1.0, b[k].abs().max().item()), (k, err)


CONFIGS = [  # (shape, height, order, is_complex, downsample, tight_frame)
    ((256, 256), "auto", 3, False, True, False),
    ((256, 256), "auto", 3, True, True, False),
    ((256, 256), 4, 1, True, True, True),
    ((256, 256), 2, 0, False, False, False),
    ((256, 256), 3, 2, True, False, True),
    ((256, 256), 3, 5, False, False, True),
    ((128, 256), "auto", 3, False, True, False),
    ((256, 128), 2, 4, True, True, False),
    ((255, 256), 3, 3, False, True, False),
    ((200, 97), "auto", 1, True, True, True),
    ((64, 64), 0, 3, False, True, False),
    ((128, 128), 3, 2, False, True, True),   # real, even sizes: the rfft2 half-spectrum path
    ((128, 64), 2, 4, False, False, False),  # with each sign of (-i)**order
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "-".join(map(str, c)).replace(" ", ""))
def test_steerable_matches_plenoptic(images, config):
    shape, height, order, is_complex, downsample, tight = config
    mine, theirs = _pair(shape, height, order, is_complex=is_complex, downsample=downsample,
                         tight_frame=tight)
    x = images[..., : shape[0], : shape[1]].contiguous()
    ours = mine(x)
    # coefficients: same keys, shapes, dtypes and values (relative to each band's scale; the
    # non-tight lowpass residual reaches ~2400 on these images)
    _assert_coeffs_close(ours, theirs(x))
    assert mine.scales == theirs.scales and mine.num_scales == theirs.num_scales
    assert mine.num_orientations == theirs.num_orientations
    assert dict(mine.pyr_size) == {k: tuple(v.shape[-2:]) for k, v in ours.items()}
    # plenoptic's reconstruction mixes batch items (its lowpass fftshift runs over every
    # dimension), so compare reconstructions one image at a time
    for i in range(x.shape[0]):
        xi = x[i : i + 1]
        assert torch.allclose(mine.recon_pyr(mine(xi)), theirs.recon_pyr(theirs(xi)), atol=1e-5)
    for i in range(x.shape[0]):  # batch items are independent
        single = mine(x[i : i + 1])
        for k in ours:
            assert torch.allclose(ours[k][i : i + 1], single[k], atol=1e-6)


def test_partial_reconstruction_and_scales_match_plenoptic(images):
    mine, theirs = _pair((256, 256), 4, 3)
    x = images[:1]
    a, b = mine(x), theirs(x)
    for levels, bands in itertools.product(["all", [0], [1, 3], ["residual_highpass", 2],
                                            ["residual_lowpass"]], ["all", [1], [0, 3]]):
        ra, rb = mine.recon_pyr(a, levels, bands), theirs.recon_pyr(b, levels, bands)
        assert (ra - rb).abs().max() < 1e-5, (levels, bands)
    for scales in ([0], [2, 0], ["residual_lowpass"], ["residual_highpass", 3]):
        _assert_coeffs_close(mine(x, scales), theirs(x, scales))
        with pytest.raises(ValueError, match="not in pyr_coeffs"):
            mine.recon_pyr(mine(x, scales))


def test_reconstruction_float64_and_tight_frame_energy(images):
    x = images.double()
    for order, is_complex, downsample in [(3, False, True), (1, True, False), (0, False, False),
                                          (4, True, True)]:
        for tight in (False, True):
            pyr = SteerablePyramidFreq((256, 256), order=order, is_complex=is_complex,
                                       downsample=downsample, tight_frame=tight).to(torch.float64)
            coeffs = pyr(x)
            assert all(v.dtype in (torch.float64, torch.complex128) for v in coeffs.values())
            exact = pyr.recon_pyr(coeffs, exact=True)
            assert (exact - x).abs().max() <= 1e-6
            # plenoptic's own reconstruction (lookup-table masks): within 1e-5, not exact
            plain_err = (pyr.recon_pyr(coeffs) - x).abs().max()
            assert 1e-7 < plain_err < 1e-5
            if tight:
                energy = sum((v.abs() ** 2).sum((1, 2, 3) if v.ndim == 4 else (1, 2, 3, 4))
                             for v in coeffs.values())
                ratio = energy / (x ** 2).sum((1, 2, 3))
                assert torch.allclose(ratio, torch.ones_like(ratio), atol=2e-6), ratio


def test_exact_reconstruction_float32_and_odd_sizes(images):
    pyr = SteerablePyramidFreq((256, 256))
    x = images[:1]
    assert (pyr.recon_pyr(pyr(x), exact=True) - x).abs().max() < 1e-6
    with pytest.warns(UserWarning, match="odd-sized"):
        odd = SteerablePyramidFreq((255, 256))
    with pytest.raises(ValueError, match="even image sizes"):
        odd.recon_pyr(odd(x[..., :255, :]), exact=True)


def test_coefficient_layouts_and_tensor_packing(images):
    x = images[..., :64, :64]
    for is_complex in (False, True):
        mine, theirs = _pair((64, 64), 3, 2, is_complex=is_complex, downsample=False)
        for scales in (None, [1], ["residual_highpass", 0], ["residual_lowpass"]):
            a, b = mine(x, scales), theirs(x, scales)
            for split in ([False, True] if is_complex else [False]):
                ta, info_a = mine.convert_pyr_to_tensor(a, split_complex=split)
                tb, info_b = theirs.convert_pyr_to_tensor(b, split_complex=split)
                assert ta.dtype == tb.dtype and ta.shape == tb.shape
                assert (ta - tb).abs().max() <= 1e-5 * tb.abs().max()
                assert info_a[:3] == info_b[:3]
                back = mine.convert_tensor_to_pyr(ta, *info_a)
                assert list(back) == list(a) and all(torch.equal(back[k], a[k]) for k in a)
    coeffs = SteerablePyramidFreq((64, 64), 2, 3)(x)
    # plenoptic 1.1's (scale, orientation) keys read single bands
    assert torch.equal(coeffs[(1, 2)], coeffs[1][:, :, 2])
    flat = bands_by_orientation(coeffs)
    assert list(flat)[1:3] == [(0, 0), (0, 1)] and len(flat) == 2 * 4 + 2
    again = bands_by_scale(flat)
    assert list(again) == list(coeffs) and all(torch.equal(again[k], coeffs[k]) for k in coeffs)
    with pytest.raises(RuntimeError, match="not downsampled"):
        SteerablePyramidFreq.convert_pyr_to_tensor(coeffs)
    with pytest.raises(RuntimeError, match="real-valued"):
        SteerablePyramidFreq.convert_pyr_to_tensor(SteerablePyramidFreq((64, 64), 2, downsample=False)(x),
                                                   split_complex=True)


@pytest.mark.parametrize("order", [1, 2, 3, 5])
def test_steer_coeffs_match_plenoptic_and_steer_exactly(images, order):
    mine, theirs = _pair((64, 64), 2, order)
    x = images[..., :64, :64]
    angles = torch.linspace(0, 2 * torch.pi, 9)
    (ra, wa), (rb, wb) = mine.steer_coeffs(mine(x), angles), theirs.steer_coeffs(theirs(x), angles)
    for k in ra:
        assert torch.allclose(ra[k], rb[k], atol=1e-5) and torch.allclose(wa[k], wb[k], atol=1e-12)
    # steering to a filter's own angle reproduces that band
    own = torch.pi * torch.arange(order + 1) / (order + 1)
    coeffs = mine(x)
    res, _ = mine.steer_coeffs(coeffs, own)
    for k in res:
        assert torch.allclose(res[k], coeffs[k], atol=1e-5)
    with pytest.raises(ValueError, match="real coefficients"):
        cpx = SteerablePyramidFreq((64, 64), 2, order, is_complex=True)
        cpx.steer_coeffs(cpx(x), angles)


def test_bad_input_errors():
    with pytest.raises(ValueError, match=r"allowed heights are 0\.\.4.*at least 128 x 128"):
        SteerablePyramidFreq((64, 100), height=5)
    with pytest.raises(ValueError, match="at least 4 pixels"):
        SteerablePyramidFreq((3, 64))
    with pytest.raises(ValueError, match="non-negative"):
        SteerablePyramidFreq((64, 64), height=-1)
    with pytest.raises(ValueError, match="two integers"):
        SteerablePyramidFreq((64, 64.5))
    with pytest.raises(ValueError, match="two integers"):
        SteerablePyramidFreq((64, 64, 3))
    with pytest.raises(ValueError, match=r"range \[0, 15\]"):
        SteerablePyramidFreq((64, 64), order=16)
    with pytest.raises(ValueError, match="order=0"):
        SteerablePyramidFreq((64, 64), order=0, is_complex=True)
    with pytest.raises(ValueError, match="twidth"):
        SteerablePyramidFreq((64, 64), twidth=0)
    pyr = SteerablePyramidFreq((32, 32), height=2)
    with pytest.raises(ValueError, match="does not match image_shape"):
        pyr(torch.rand(1, 1, 32, 30))
    with pytest.raises(ValueError, match="4-D"):
        pyr(torch.rand(32, 32))
    with pytest.raises(TypeError, match="floating-point"):
        pyr(torch.ones(1, 1, 32, 32, dtype=torch.int64))
    with pytest.raises(TypeError, match="float32 or float64"):
        pyr(torch.ones(1, 1, 32, 32, dtype=torch.float16))
    with pytest.raises(TypeError, match="floating-point"):
        pyr(torch.ones(1, 1, 32, 32, dtype=torch.complex64))
    with pytest.raises(ValueError, match="num_scales-1"):
        pyr(torch.rand(1, 1, 32, 32), scales=[2])
    coeffs = pyr(torch.rand(1, 1, 32, 32))
    with pytest.raises(TypeError, match="levels must be"):
        pyr.recon_pyr(coeffs, levels="some")
    with pytest.raises(ValueError, match="Level numbers"):
        pyr.recon_pyr(coeffs, levels=[3])
    with pytest.raises(ValueError, match="band numbers"):
        pyr.recon_pyr(coeffs, bands=[4])
    with pytest.raises(ValueError, match="positive integer"):
        LaplacianPyramid(0)
    with pytest.raises(ValueError, match="at least 9 pixels"):
        LaplacianPyramid(4)(torch.rand(1, 1, 8, 64))
    with pytest.raises(TypeError, match="floating-point"):
        LaplacianPyramid(2)(torch.ones(1, 1, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match="expected 3 levels"):
        LaplacianPyramid(3).recon_pyr([torch.rand(1, 1, 8, 8)])


def test_gradcheck_and_module_moves():
    torch.manual_seed(0)
    x = torch.rand(1, 2, 12, 8, dtype=torch.float64, requires_grad=True)
    for is_complex, downsample in [(False, True), (True, False)]:
        pyr = SteerablePyramidFreq((12, 8), height=1, order=1, is_complex=is_complex,
                                   downsample=downsample).double()

        def flat(img, pyr=pyr):
            return torch.cat([torch.view_as_real(v).flatten() if v.is_complex() else v.flatten()
                              for v in pyr(img).values()])

        assert torch.autograd.gradcheck(flat, (x,), fast_mode=True)
        coeffs = {k: v.detach().requires_grad_() for k, v in pyr(x.detach()).items()}
        def recon(*c, pyr=pyr, keys=tuple(coeffs)):
            return pyr.recon_pyr(dict(zip(keys, c)), exact=True)

        assert torch.autograd.gradcheck(recon, tuple(coeffs.values()), fast_mode=True)
    lpyr = LaplacianPyramid(2)
    assert torch.autograd.gradcheck(lambda img: torch.cat([c.flatten() for c in lpyr(img)]), (x,),
                                    fast_mode=True)
    # masks are buffers: .to() moves them (and the crop indices); state_dict carries them
    pyr = SteerablePyramidFreq((32, 32), height=2)
    assert all(b.dtype == torch.float32 for b in pyr.buffers())
    names = {"lo0mask", "hi0mask"} | {f"{n}_scale_{s}" for s in (0, 1) for n in (
        "_himasks", "_lomasks", "_anglemasks", "_anglemasks_recon")}
    assert names == set(pyr.state_dict())
    pyr.to(torch.float64)
    assert all(b.dtype == torch.float64 for b in pyr.buffers())
    assert pyr(torch.rand(1, 1, 32, 32, dtype=torch.float64))[0].dtype == torch.float64
    pyr.to("cpu")
    assert all(ix[0].device.type == "cpu" for ix in pyr._crop_index)


@pytest.mark.parametrize("n_scales,scale_filter", [(1, False), (3, True), (5, False), (6, True)])
@pytest.mark.parametrize("shape", [(256, 256), (255, 200), (37, 100)])
def test_laplacian_matches_plenoptic_and_reconstructs(images, n_scales, scale_filter, shape):
    if min(shape) < 2 ** (n_scales - 1) + 1:
        pytest.skip("image too small for this many scales")
    x = images[..., : shape[0], : shape[1]].contiguous()
    mine = LaplacianPyramid(n_scales, scale_filter)
    theirs = po.simul.LaplacianPyramid(n_scales, scale_filter)
    ours = mine(x)
    ref = theirs(x)
    assert len(ours) == n_scales
    for a, b in zip(ours, ref):
        assert a.shape == b.shape and (a - b).abs().max() <= 1e-5 * max(1.0, b.abs().max().item())
    assert (mine.recon_pyr(ours) - x).abs().max() < 1e-6
    xd = x.double()
    assert (mine.recon_pyr(mine(xd)) - xd).abs().max() < 1e-12


def test_pyrshow_layout_and_errors(images):
    x = images[..., :32, :32].repeat(1, 2, 1, 1)
    for is_complex in (False, True):
        coeffs = SteerablePyramidFreq((32, 32), height=2, order=1, is_complex=is_complex)(x)
        per = 2 if is_complex else 1
        for residuals in (True, False):
            for layout in (coeffs, bands_by_orientation(coeffs)):
                fig = difflens.pyrshow(layout, show_residuals=residuals, plot_complex="polar",
                                       batch_idx=1, channel_idx=1, vrange="auto1pyr")
                assert len(fig.axes) == 4 * per + 2 * residuals
                titles = [ax.get_title().split("\n")[0] for ax in fig.axes]
                assert titles[0].startswith("height 00, band 00")
                assert titles[per].startswith("height 00, band 01")
                plt.close(fig)
        # the panel shows the chosen batch element and channel
        fig = difflens.pyrshow(coeffs, batch_idx=1, channel_idx=0, plot_complex="rectangular")
        shown = fig.axes[0].images[0].get_array()
        band = coeffs[0][1, 0, 0]
        np.testing.assert_allclose(np.asarray(shown), band.real.numpy(), atol=1e-6)
        plt.close(fig)
        with pytest.raises(TypeError, match="batch_idx"):
            difflens.pyrshow(coeffs, batch_idx=None)
        with pytest.raises(TypeError, match="channel_idx"):
            difflens.pyrshow(coeffs, channel_idx=[0, 1])
    odd = SteerablePyramidFreq((36, 36), height=3)(images[..., :36, :36])  # 36, 18, 9, 5
    with pytest.raises(ValueError, match="divisible by 2"):
        difflens.pyrshow(odd)
