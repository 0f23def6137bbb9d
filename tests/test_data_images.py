"""Bundled photographs, the image-file loader and the noise images of difflens.data."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from difflens import data
from difflens.data import images as images_mod
from difflens.data.noise import power_law_filter, shape_spectrum

# -- bundled photographs --------------------------------------------------------------------------


@pytest.mark.parametrize("name", images_mod.list_images())
def test_bundled_images_shape_range_dtype(name):
    x = images_mod.load_image(name)
    assert x.shape == (1, 1, 256, 256) and x.dtype == torch.float32 and x.device.type == "cpu"
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert x.std() > 0.05  # a real photograph, not a constant
    # values are 8-bit levels / 255 exactly
    levels = x.double() * 255
    assert torch.allclose(levels, levels.round(), atol=1e-4)


def test_named_loaders_match_load_image_and_take_device_dtype():
    assert data.list_images() == ["astronaut", "brick", "camera", "curie", "einstein", "grass", "gravel",
                                  "reptile_skin"]
    for name in data.list_images():
        loader = getattr(images_mod, name)
        assert torch.equal(loader(), data.load_image(name))
    x = data.einstein(device="cpu", dtype=torch.float64)
    assert x.dtype == torch.float64
    assert torch.allclose(x.float(), data.einstein())
    rgb = data.curie(as_gray=False)
    assert rgb.shape == (1, 3, 256, 256) and torch.equal(rgb[:, :1], rgb[:, 2:])


def test_einstein_curie_match_plenoptic():
    po = pytest.importorskip("plenoptic")
    assert torch.equal(data.einstein(), po.data.einstein())
    assert torch.equal(data.curie(), po.data.curie())


def test_unknown_bundled_name_lists_available():
    with pytest.raises(ValueError, match="einstein"):
        data.load_image("lena")


# -- load_images ----------------------------------------------------------------------------------


def _rng():
    return np.random.default_rng(0)


@pytest.mark.parametrize("suffix", ["png", "pgm", "tif", "bmp"])
def test_load_8bit_roundtrip_exact(tmp_path, suffix):
    arr = _rng().integers(0, 256, size=(12, 20), dtype=np.uint8)
    path = tmp_path / f"a.{suffix}"
    Image.fromarray(arr).save(path)
    x = data.load_images(path)
    assert x.shape == (1, 1, 12, 20) and x.dtype == torch.float32
    assert torch.equal(x, torch.tensor(arr / 255.0, dtype=torch.float32)[None, None])


@pytest.mark.parametrize("suffix", ["png", "tif", "pgm"])
def test_load_16bit_roundtrip_exact(tmp_path, suffix):
    arr = _rng().integers(0, 65536, size=(9, 7), dtype=np.uint16)
    arr[0, 0], arr[0, 1] = 0, 65535
    path = tmp_path / f"a.{suffix}"
    Image.fromarray(arr).save(path)
    x = data.load_images(path, dtype=torch.float64)
    assert torch.equal(x, torch.tensor(arr / 65535.0)[None, None])
    assert x.min() == 0 and x.max() == 1


def test_load_pgm_with_small_maxval(tmp_path):
    # a 16-bit PGM whose maxval is 1000: full scale is maxval, not 65535
    raw = np.array([[0, 500], [1000, 250]], dtype=">u2")
    path = tmp_path / "m.pgm"
    path.write_bytes(b"P5\n2 2\n1000\n" + raw.tobytes())
    x = data.load_images(path, dtype=torch.float64)
    assert torch.allclose(
        x[0, 0], torch.tensor([[0.0, 0.5], [1.0, 0.25]], dtype=torch.float64), atol=1e-4
    )


def test_load_rgb_and_rgba_match_skimage_and_plenoptic(tmp_path):
    from skimage.color import rgb2gray, rgba2rgb

    rgb = _rng().integers(0, 256, size=(10, 10, 3), dtype=np.uint8)
    rgba = _rng().integers(0, 256, size=(10, 10, 4), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    color = data.load_images(tmp_path / "rgb.png", as_gray=False, dtype=torch.float64)
    assert color.shape == (1, 3, 10, 10)
    assert torch.equal(color[0], torch.tensor(np.moveaxis(rgb / 255.0, -1, 0)))
    gray = data.load_images(tmp_path / "rgb.png", dtype=torch.float64)[0, 0].numpy()
    np.testing.assert_allclose(gray, rgb2gray(rgb / 255.0), atol=1e-12)
    gray_a = data.load_images(tmp_path / "rgba.png", dtype=torch.float64)[0, 0].numpy()
    np.testing.assert_allclose(gray_a, rgb2gray(rgba2rgb(rgba / 255.0)), atol=1e-12)
    po = pytest.importorskip("plenoptic")
    ref = po.tools.data.load_images(str(tmp_path / "rgb.png"))
    torch.testing.assert_close(data.load_images(tmp_path / "rgb.png"), ref, atol=1e-6, rtol=0)


def test_load_folder_list_and_sorted(tmp_path):
    arrs = {n: np.full((4, 6), v, dtype=np.uint8) for n, v in [("b", 10), ("a", 20), ("c", 30)]}
    for n, a in arrs.items():
        Image.fromarray(a).save(tmp_path / f"{n}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    folder = data.load_images(tmp_path)  # name order, the text file skipped
    assert folder.shape == (3, 1, 4, 6)
    assert torch.allclose(folder[:, 0, 0, 0] * 255, torch.tensor([20.0, 10.0, 30.0]))
    listed = data.load_images([tmp_path / "c.png", tmp_path / "a.png"])
    assert torch.allclose(listed[:, 0, 0, 0] * 255, torch.tensor([30.0, 20.0]))
    ordered = data.load_images([str(tmp_path / "c.png"), tmp_path / "a.png"], sorted=True)
    assert torch.allclose(ordered[:, 0, 0, 0] * 255, torch.tensor([20.0, 30.0]))


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.png"):
        data.load_images(tmp_path / "missing.png")
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"this is not a png")
    with pytest.raises(ValueError, match="broken.png"):
        data.load_images(bad)
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "small.png")
    Image.fromarray(np.zeros((4, 5), np.uint8)).save(tmp_path / "wide.png")
    with pytest.raises(ValueError, match=r"small.png \(4x4\).*wide.png \(4x5\)"):
        data.load_images([tmp_path / "small.png", tmp_path / "wide.png"])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no image files"):
        data.load_images(empty)
    with pytest.raises(TypeError, match="paths"):
        data.load_images(3)


# -- noise ----------------------------------------------------------------------------------------


def _radial_slope(x: torch.Tensor, fmin: float = 3.0, fmax: float = 40.0) -> float:
    """Slope of log mean power vs log radial frequency (cycles/image) of a (B, 1, H, W) batch."""
    x = x - x.mean(dim=(-2, -1), keepdim=True)
    power = (torch.fft.fft2(x.double()).abs() ** 2).mean(dim=(0, 1))
    h, w = power.shape
    fy = torch.fft.fftfreq(h, d=1.0 / h, dtype=torch.float64)
    fx = torch.fft.fftfreq(w, d=1.0 / w, dtype=torch.float64)
    r = torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)
    keep = (r >= fmin) & (r <= fmax)
    logf, logp = torch.log(r[keep]).numpy(), torch.log(power[keep]).numpy()
    return float(np.polyfit(logf, logp, 1)[0])


@pytest.mark.parametrize(
    "kwargs,expected",
    [
        ({}, -3.0),  # pyrtools default: D = 1 -> amplitude 1/f^1.5
        ({"fract_dim": 1.5}, -2.0),  # D = 1.5 -> amplitude 1/f
        ({"amplitude_exponent": 1.0}, -2.0),  # classic 1/f amplitude
        ({"amplitude_exponent": 0.5}, -1.0),
    ],
)
def test_pink_noise_spectral_slope(kwargs, expected):
    g = torch.Generator().manual_seed(1)
    x = data.pink_noise((8, 1, 128, 128), generator=g, **kwargs)
    assert x.shape == (8, 1, 128, 128) and x.dtype == torch.float32
    assert abs(_radial_slope(x) - expected) < 0.08


@pytest.mark.filterwarnings("ignore:.*where.*used without.*out:UserWarning")
def test_pink_noise_matches_pyrtools_and_is_unit_variance():
    pt = pytest.importorskip("pyrtools")
    state = np.random.get_state()
    try:
        for shape, dim in [((64, 64), 1.0), ((33, 50), 1.3), ((16, 17), 0.5)]:
            np.random.seed(3)
            ref = pt.synthetic_images.pink_noise(shape, dim)
            np.random.seed(3)
            white = np.random.randn(*shape)
            ours = shape_spectrum(torch.from_numpy(white), 2.5 - dim).numpy()
            np.testing.assert_allclose(ours, ref, atol=1e-10)
    finally:
        np.random.set_state(state)
    x = data.pink_noise(
        (3, 1, 40, 30), generator=torch.Generator().manual_seed(0), dtype=torch.float64
    )
    torch.testing.assert_close(x.flatten(-2).std(dim=-1), torch.ones(3, 1, dtype=torch.float64))


def test_power_law_filter_values():
    f = power_law_filter(8, 6, 1.5)
    assert f[0, 0] == 1.0
    assert torch.isclose(f[1, 0], torch.tensor(1.0, dtype=torch.float64))
    assert torch.isclose(f[2, 3], torch.tensor((4.0 + 9.0) ** -0.75, dtype=torch.float64))
    assert torch.equal(f[1, 2], f[-1, -2])  # Hermitian-symmetric so the result is real


def test_noise_determinism_and_no_global_rng():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = data.pink_noise(32, generator=torch.Generator().manual_seed(7))
    b = data.pink_noise(32, generator=torch.Generator().manual_seed(7))
    c = data.pink_noise(32, generator=torch.Generator().manual_seed(8))
    d = data.pink_noise(32)  # the default generator (seed 0)
    w = data.white_noise((2, 3, 5, 5), generator=torch.Generator().manual_seed(7))
    assert torch.equal(torch.get_rng_state(), before)  # the global RNG was not touched
    assert a.shape == (1, 1, 32, 32) and torch.equal(a, b) and not torch.equal(a, c)
    assert not torch.equal(a, d)
    assert w.shape == (2, 3, 5, 5)
    assert torch.equal(
        w, data.white_noise((2, 3, 5, 5), generator=torch.Generator().manual_seed(7))
    )


def test_white_noise_distributions_and_errors():
    g = torch.Generator().manual_seed(0)
    n = data.white_noise((256, 256), generator=g, dtype=torch.float64)
    assert n.shape == (1, 1, 256, 256) and n.dtype == torch.float64
    assert abs(n.mean()) < 0.02 and abs(n.std() - 1) < 0.02
    u = data.white_noise(64, generator=g, distribution="uniform")
    assert 0 <= u.min() and u.max() < 1 and abs(u.mean() - 0.5) < 0.03
    with pytest.raises(ValueError, match="distribution"):
        data.white_noise(4, distribution="cauchy")
    with pytest.raises(ValueError, match="shape"):
        data.white_noise((4, 4, 4))
    with pytest.raises(TypeError, match="generator"):
        data.pink_noise(8, generator=np.random.default_rng(0))


def test_noise_default_generator_is_the_shared_seeded_one():
    from difflens.tools.rng import default_generator

    torch.manual_seed(0)
    before = torch.get_rng_state()
    assert torch.equal(data.white_noise((3, 4)), data.white_noise((3, 4)))  # reproducible without a generator
    assert torch.equal(data.white_noise((3, 4)), data.white_noise((3, 4), generator=default_generator()))
    assert torch.equal(data.pink_noise(16), data.pink_noise(16, generator=torch.Generator().manual_seed(0)))
    assert torch.equal(torch.get_rng_state(), before)
