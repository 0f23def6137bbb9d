"""Mapping layer for the ported plenoptic 1.1.0 pyramid tests: plenoptic's names over difflens.

What it maps, and nothing more:

- ``po.simul.SteerablePyramidFreq``: difflens's pyramid returns plenoptic 1.4's layout
  (scale -> ``(B, C, orientations, H, W)``); plenoptic 1.1.0's tests read 1.1's layout
  (``(scale, orientation)`` -> ``(B, C, H, W)``). The subclass below converts between the
  two with difflens's own ``bands_by_orientation`` / ``bands_by_scale``; the numbers are
  difflens's.
- ``po.simul.LaplacianPyramid``, ``po.pyrshow``, ``po.to_numpy``: difflens's, unchanged.
- Test images: plenoptic downloads ``test_images.tar.gz``; here ``load_images`` maps its file
  names to bundled images (``einstein.pgm`` -> ``difflens.data.einstein()``, ``curie.pgm`` ->
  ``curie()``, the colour images ``flowers.jpg`` / ``color_wheel.jpg`` -> ``astronaut(as_gray=False)``).
- ``basic_stim``: plenoptic 1.1.0's ``make_synthetic_stimuli`` (removed from plenoptic 1.4),
  copied below as test data; it draws its shapes with pyrtools, like the original.
- The fixtures of plenoptic's ``tests/conftest.py`` that these tests use, with those images.
"""

from __future__ import annotations

import pathlib
import types

import numpy as np
import pytest
import torch
from pyrtools import synthetic_images

import difflens
from difflens.data import astronaut, curie, einstein
from difflens.simulate import LaplacianPyramid
from difflens.simulate import SteerablePyramidFreq as _DifflensSPyr
from difflens.simulate.steerable_pyramid import bands_by_orientation, bands_by_scale
from difflens.tools.signal import rescale, to_numpy

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")  # as plenoptic's conftest
IMG_DIR = pathlib.Path("difflens-bundled-images")  # only the file names below are read

_BUNDLED = {"einstein.pgm": einstein, "curie.pgm": curie}
_COLOUR = {"flowers.jpg", "color_wheel.jpg"}


def load_images(paths, as_gray: bool = True):
    """plenoptic's ``load_images`` for the test-image names, served from difflens.data."""
    name = pathlib.Path(paths).name
    if name in _BUNDLED and as_gray:
        return _BUNDLED[name]()
    if name in _COLOUR and not as_gray:
        return astronaut(as_gray=False)
    raise KeyError(f"no bundled stand-in for plenoptic test image {name!r} (as_gray={as_gray})")


class SteerablePyramidFreq(_DifflensSPyr):
    """difflens's pyramid with plenoptic 1.1's ``(scale, orientation)`` coefficient keys."""

    def forward(self, image, scales=None):
        return bands_by_orientation(super().forward(image, scales))

    def recon_pyr(self, pyr_coeffs, levels="all", bands="all"):
        return super().recon_pyr(bands_by_scale(pyr_coeffs), levels, bands)

    def steer_coeffs(self, pyr_coeffs, angles, even_phase=True):
        return super().steer_coeffs(bands_by_scale(pyr_coeffs), angles, even_phase)

    @staticmethod
    def convert_pyr_to_tensor(pyr_coeffs, split_complex=False):
        return _DifflensSPyr.convert_pyr_to_tensor(bands_by_scale(pyr_coeffs), split_complex)

    @staticmethod
    def convert_tensor_to_pyr(pyr_tensor, *pyr_info):
        return bands_by_orientation(_DifflensSPyr.convert_tensor_to_pyr(pyr_tensor, *pyr_info))


def make_synthetic_stimuli(size: int = 256, requires_grad: bool = True) -> torch.Tensor:
    """plenoptic 1.1.0's ``tools.data.make_synthetic_stimuli`` (test data: 11 stimuli)."""
    impulse = np.zeros((size, size))
    impulse[size // 2, size // 2] = 1
    step_edge = synthetic_images.square_wave(size=size, period=size + 1, direction=0, amplitude=1,
                                             phase=0)
    ramp = synthetic_images.ramp(size=size, direction=np.pi / 2, slope=1)
    bar = np.zeros((size, size))
    bar[size // 2 - size // 10: size // 2 + size // 10, size // 2 - 1: size // 2 + 1] = 1
    curv_edge = synthetic_images.disk(size=size, radius=size / 1.2, origin=(size, size))
    sine_grating = synthetic_images.sine(size) * synthetic_images.gaussian(size, covariance=size)
    square_grating = synthetic_images.square_wave(size, frequency=(0.5, 0.5), phase=2 * np.pi / 3.0)
    square_grating *= synthetic_images.gaussian(size, covariance=size)
    polar_angle = synthetic_images.polar_angle(size)
    angular_sine = synthetic_images.angular_sine(size, 6)
    zone_plate = synthetic_images.zone_plate(size)
    fract = synthetic_images.pink_noise(size, fract_dim=0.8)
    stim = [impulse, step_edge, ramp, bar, curv_edge, sine_grating, square_grating, polar_angle,
            angular_sine, zone_plate, fract]
    stim = [rescale(torch.as_tensor(s)).numpy() for s in stim]
    return torch.cat([torch.as_tensor(s, dtype=torch.float32).unsqueeze(0).unsqueeze(0)
                      .requires_grad_(requires_grad) for s in stim], dim=0)


simul = types.SimpleNamespace(SteerablePyramidFreq=SteerablePyramidFreq,
                              LaplacianPyramid=LaplacianPyramid)
tools = types.SimpleNamespace(make_synthetic_stimuli=make_synthetic_stimuli)
po = types.SimpleNamespace(simul=simul, tools=tools, load_images=load_images, to_numpy=to_numpy,
                           pyrshow=difflens.pyrshow, imshow=difflens.imshow)


# ---- the fixtures of plenoptic 1.1.0's tests/conftest.py these tests use (bundled images)
@pytest.fixture(scope="package")
def curie_img():
    return po.load_images(IMG_DIR / "256" / "curie.pgm").to(DEVICE)


@pytest.fixture(scope="package")
def einstein_img():
    # plenoptic 1.1.0's conftest loads curie.pgm here too; kept as it was
    return po.load_images(IMG_DIR / "256" / "curie.pgm").to(DEVICE)


@pytest.fixture(scope="package")
def basic_stim():
    np.random.seed(0)  # pink_noise draws from numpy's global generator
    return po.tools.make_synthetic_stimuli().to(DEVICE)


def get_model(name):
    """The ``SPyr`` and ``LPyr`` entries of plenoptic 1.1.0's ``conftest.get_model``."""
    if name == "SPyr":
        # in order to get a tensor back, need to wrap steerable pyramid so that
        # we can call convert_pyr_to_tensor in the forward call. in order for
        # that to work, downsample must be False
        class spyr(po.simul.SteerablePyramidFreq):
            def __init__(self, *args, **kwargs):
                kwargs.pop("downsample", None)
                super().__init__(*args, downsample=False, **kwargs)

            def forward(self, *args, **kwargs):
                coeffs = super().forward(*args, **kwargs)
                pyr_tensor, _ = po.simul.SteerablePyramidFreq.convert_pyr_to_tensor(coeffs)
                return pyr_tensor
        # setting height=1 and # order=1 limits the size
        return spyr((256, 256), height=1, order=1).to(DEVICE)
    elif name == "LPyr":
        # in order to get a tensor back, need to wrap laplacian pyramid so that
        # we can flatten the output. in practice, not the best way to use this
        class lpyr(po.simul.LaplacianPyramid):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)

            def forward(self, *args, **kwargs):
                coeffs = super().forward(*args, **kwargs)
                return torch.cat([c.flatten(-2) for c in coeffs], -1)
        return lpyr().to(DEVICE)
    raise KeyError(f"{name!r} is not ported with the pyramids")


@pytest.fixture(scope="package")
def model(request):
    return get_model(request.param)


tools.remove_grad = difflens.tools.remove_grad
tools.validate = difflens.tools.validate


def xfail_params(func, argname, values, reason):
    """Mark the cases ``argname in values`` of a parametrized test as strict xfails, in place.

    Keeps the test body, data and assertion; only the listed parameter values are expected to
    fail, for the stated reason (every such reason is listed in docs/textures.md).
    """
    marks = list(getattr(func, "pytestmark", []))
    for k, mark in enumerate(marks):
        if mark.name == "parametrize" and mark.args[0] == argname:
            params = [pytest.param(v, marks=pytest.mark.xfail(strict=True, reason=reason))
                      if v in values else v for v in mark.args[1]]
            marks[k] = pytest.mark.parametrize(argname, params, **mark.kwargs).mark
            func.pytestmark = marks
            return func
    raise KeyError(f"{func.__name__} has no parametrize over {argname!r}")
