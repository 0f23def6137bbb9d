"""PortillaSimoncelli against plenoptic 1.4, its layout tools, loss weights and bad input."""

import inspect
import textwrap

import numpy as np
import pytest
import torch

from difflens import data
from difflens.simulate import PortillaSimoncelli, portilla_simoncelli_loss
from difflens.simulate.portilla_simoncelli import fourier_shrink, reconstruct_lowpass_reference

po = pytest.importorskip("plenoptic")


@pytest.fixture(scope="module")
def plenoptic_recon_in_input_precision():
    """plenoptic 1.4's recon_pyr with its lowpass path in the input's precision.

    plenoptic builds each level's lowpass spectrum in ``complex64`` whatever the input dtype
    (``torch.zeros_like(..., dtype=torch.complex64)`` in ``_recon_levels``), so its float64
    statistics carry float32 rounding (about 1e-8 relative). This patch (test-only) keeps the
    input's precision, to show that what remains is float64 rounding.
    """
    import plenoptic.simulate.canonical_computations.steerable_pyramid_freq as spf
    original = spf.SteerablePyramidFreq._recon_levels
    src = textwrap.dedent(inspect.getsource(original))
    assert "dtype=torch.complex64" in src
    namespace = dict(spf.__dict__)
    exec(src.replace("dtype=torch.complex64", "dtype=reslevdft.dtype"), namespace)
    spf.SteerablePyramidFreq._recon_levels = namespace["_recon_levels"]
    yield
    spf.SteerablePyramidFreq._recon_levels = original


CONFIGS = [(4, 4, 9), (1, 2, 3), (2, 3, 4), (3, 4, 7)]


@pytest.mark.parametrize("name", list(data.textures()) + ["einstein"])
@pytest.mark.parametrize("config", CONFIGS)
def test_statistics_equal_plenoptic_float64(name, config):
    img = data.load_image(name, dtype=torch.float64)
    ours = PortillaSimoncelli(img.shape[-2:], *config).to(torch.float64)(img)
    theirs = po.simul.PortillaSimoncelli(img.shape[-2:], *config).to(torch.float64)(img)
    assert ours.shape == theirs.shape
    # plenoptic's complex64 lowpass path limits agreement to ~1e-8 absolute (see the fixture)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", list(data.textures()))
def test_statistics_equal_plenoptic_to_float64_rounding(name, plenoptic_recon_in_input_precision):
    img = data.load_image(name, dtype=torch.float64)
    ours = PortillaSimoncelli(img.shape[-2:]).to(torch.float64)(img)
    theirs = po.simul.PortillaSimoncelli(img.shape[-2:]).to(torch.float64)(img)
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-13)


def test_float32_batch_channels_and_other_sizes_equal_plenoptic():
    img = torch.cat([data.grass(), data.brick()])[..., :128, :192].repeat(1, 2, 1, 1)
    ours = PortillaSimoncelli((128, 192), n_scales=3, n_orientations=3, spatial_corr_width=6)(img)
    model = po.simul.PortillaSimoncelli((128, 192), n_scales=3, n_orientations=3, spatial_corr_width=6)
    # one image at a time: plenoptic 1.4 mixes the residual lowpass across batch and channels
    # (``fftshift(lodft)`` without ``dim`` in ``_recon_levels``), so its batched lowpass
    # statistics differ from the same images analysed alone
    theirs = torch.stack([torch.cat([model(img[b:b + 1, c:c + 1]) for c in range(2)], 1)[0] for b in range(2)])
    assert ours.shape == theirs.shape == (2, 2, model(img[:1, :1]).shape[-1]) and ours.dtype == torch.float32
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=2e-5)
    # an odd-sized coarsest lowpass (252 / 4 = 63): plenoptic's autocorrelation calls
    # irfft2 without the output size, so for odd widths it returns 62 columns and its
    # lowpass variance (the centre), std, skew, kurtosis and autocorrelation of that scale
    # are off; difflens computes them at the true size. Everything else is equal.
    img = data.gravel(dtype=torch.float64)[..., :252, :252]
    model = PortillaSimoncelli((252, 252), n_scales=2).to(torch.float64)
    ours = model.convert_to_dict(model(img))
    theirs = po.simul.PortillaSimoncelli((252, 252), n_scales=2).to(torch.float64)
    theirs = theirs.convert_to_dict(theirs(img))
    odd = ("skew_reconstructed", "kurtosis_reconstructed", "std_reconstructed", "auto_correlation_reconstructed")
    for k in ours:
        a, b = (ours[k][..., :-1], theirs[k][..., :-1]) if k in odd else (ours[k], theirs[k])
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7, equal_nan=True, msg=k)
    centre = model._reconstruct_lowpass(torch.fft.fft2(img))[-1].square().mean()
    assert float(ours["std_reconstructed"][..., -1]) == pytest.approx(float(centre.sqrt()), rel=1e-12)


def test_fast_lowpass_reconstruction_equals_plenoptic_procedure():
    model = PortillaSimoncelli((64, 96), n_scales=3, spatial_corr_width=5).to(torch.float64)
    x = torch.rand(2, 1, 64, 96, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    ref = reconstruct_lowpass_reference(model.pyramid, model.pyramid(x), 3)
    fast = model._reconstruct_lowpass(torch.fft.fft2(x))
    for a, b in zip(ref, fast):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    from plenoptic.tools.signal import shrink
    torch.testing.assert_close(fourier_shrink(x, 4), shrink(x, 4), rtol=0, atol=1e-14)


def test_scales_layout_and_remove_scales_equal_plenoptic():
    ours = PortillaSimoncelli((256, 256), 3, 3, 8)
    theirs = po.simul.PortillaSimoncelli((256, 256), 3, 3, 8)
    assert ours.scales == theirs.scales
    np.testing.assert_array_equal(ours.representation_scales.astype(str),
                                  theirs._representation_scales.astype(str))
    img = data.brick()
    for keep in (["pixel_statistics"], [0, "residual_highpass"], ["residual_lowpass", 2]):
        torch.testing.assert_close(ours(img, scales=keep), theirs(img, scales=keep), rtol=1e-4, atol=2e-5)
    with pytest.raises(ValueError, match="unknown scale"):
        ours(img, scales=[7])


def test_convert_to_dict_round_trip_and_shapes():
    model = PortillaSimoncelli((128, 128), n_scales=3, n_orientations=2, spatial_corr_width=5)
    rep = model(data.gravel()[..., :128, :128].repeat(2, 1, 1, 1))
    d = model.convert_to_dict(rep)
    assert list(d) == list(po.simul.PortillaSimoncelli((128, 128), 3, 2, 5).convert_to_dict(rep))
    assert d["auto_correlation_magnitude"].shape == (2, 1, 5, 5, 2, 3)
    assert d["cross_scale_correlation_real"].shape == (2, 1, 2, 4, 2)
    assert torch.isnan(d["cross_orientation_correlation_magnitude"][..., 0, 0, :]).all()  # redundant diagonal
    assert torch.equal(model.convert_to_tensor(d), rep)
    # the kept entries are the ones plenoptic keeps
    theirs = po.simul.PortillaSimoncelli((128, 128), 3, 2, 5).convert_to_dict(rep)
    for k in d:
        assert torch.equal(torch.isnan(d[k]), torch.isnan(theirs[k])), k
    with pytest.raises(ValueError, match="wrong length"):
        model.convert_to_dict(rep[..., :-3])
    d.pop("magnitude_std")
    with pytest.raises(ValueError, match="keys"):
        model.convert_to_tensor(d)


def test_loss_weights_remove_and_reweight_groups():
    img = data.reptile_skin()
    model = PortillaSimoncelli((256, 256), n_scales=3)
    other = data.grass()
    rx, ry = model(other), model(img)
    d = model.convert_to_dict(ry - rx)
    plain = portilla_simoncelli_loss(model, img)
    # plenoptic's factory gives the same loss (min/max weight 0, highpass variance 100)
    theirs = po.tools.optim.portilla_simoncelli_loss_factory(po.simul.PortillaSimoncelli((256, 256), n_scales=3),
                                                             img)
    torch.testing.assert_close(plain(rx, ry), theirs(rx, ry), rtol=1e-6, atol=0)
    no_kurt = portilla_simoncelli_loss(model, img, weights={"kurtosis_reconstructed": 0})
    expected = plain(rx, ry) ** 2 - d["kurtosis_reconstructed"].pow(2).sum()
    torch.testing.assert_close(no_kurt(rx, ry) ** 2, expected, rtol=1e-5, atol=0)
    # per-scale weights broadcast over a group's last (scale) axis
    per_scale = torch.tensor([1.0, 0.0, 0.0, 0.0])
    w = model.statistic_weights({"skew_reconstructed": per_scale})
    wd = model.convert_to_dict(w[None, None])
    assert wd["skew_reconstructed"].flatten().tolist() == [1.0, 0.0, 0.0, 0.0]
    assert float(w.sum()) == model.n_statistics - 3
    with pytest.raises(ValueError, match="unknown statistic group"):
        portilla_simoncelli_loss(model, img, weights={"kurtosis": 0})


def test_gradient_equals_plenoptic_and_finite_differences():
    x = data.gravel(dtype=torch.float64)[..., :64, :64].clone().requires_grad_(True)
    w = torch.randn(1, 1, 216, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    ours = PortillaSimoncelli((64, 64), n_scales=2, spatial_corr_width=5).to(torch.float64)
    theirs = po.simul.PortillaSimoncelli((64, 64), n_scales=2, spatial_corr_width=5).to(torch.float64)
    assert ours.n_statistics == 216
    g_ours, = torch.autograd.grad((ours(x) * w).sum(), x)
    g_theirs, = torch.autograd.grad((theirs(x) * w).sum(), x)
    torch.testing.assert_close(g_ours, g_theirs, rtol=1e-5, atol=1e-6 * float(g_theirs.abs().max()))
    d = torch.randn(x.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    with torch.no_grad():
        f = lambda t: float((ours(x + t * d) * w).sum())  # noqa: E731
        fd = (f(1e-5) - f(-1e-5)) / 2e-5
    assert fd == pytest.approx(float((g_ours * d).sum()), rel=1e-5)


@pytest.mark.parametrize("kwargs, match", [
    ({"image_shape": (250, 256)}, "divided by 2 `n_scales` times.*allowed sizes: 240, 256"),
    ({"image_shape": (64, 64), "n_scales": 5}, "more than an image of 64x64 supports: at most 4"),
    ({"image_shape": (64, 64), "n_scales": 4}, "spatial_corr_width=9 is larger than the coarsest lowpass image"),
    ({"image_shape": (256, 256), "n_orientations": 1}, "n_orientations must be an integer >= 2"),
    ({"image_shape": (256, 256), "spatial_corr_width": 0}, "spatial_corr_width must be an integer >= 1"),
    ({"image_shape": (256, 256), "n_scales": 2.5}, "n_scales must be an integer"),
    ({"image_shape": (256,)}, "two positive integers"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PortillaSimoncelli(**kwargs)


def test_bad_images():
    model = PortillaSimoncelli((64, 64), n_scales=2)
    with pytest.raises(ValueError, match=r"built for \(64, 64\)"):
        model(torch.rand(1, 1, 64, 32))
    with pytest.raises((TypeError, ValueError), match="4"):
        model(torch.rand(64, 64))


def test_even_and_odd_widths_follow_plenoptic_redundancy_masks():
    for width in (4, 5):
        ours = PortillaSimoncelli((64, 64), 2, 3, width)
        theirs = po.simul.PortillaSimoncelli((64, 64), 2, 3, width)
        assert ours.n_statistics == theirs(torch.rand(1, 1, 64, 64)).shape[-1]
        for k, mask in ours.necessary.items():
            np.testing.assert_array_equal(mask, theirs._necessary_stats_dict[k].numpy())
