"""Mapping layer for the ported plenoptic 1.1.0 geodesic tests: plenoptic's names over difflens.

What it maps, and nothing more:

- ``po.synth.Geodesic`` and ``po.synth.geodesic`` (with its plots) -> difflens's, through
  :mod:`difflens.plenoptic_names`; ``po.tools`` -> :mod:`difflens.tools` (which has
  ``translation_sequence``, ``make_straight_line``, ``sample_brownian_bridge``,
  ``deviation_from_line``, ``set_seed``, ``remove_grad``) plus ``center_crop`` (plenoptic's
  tools function, used only by the fixtures: a crop of the central ``n x n`` pixels);
  ``po.simul`` -> :mod:`difflens.simulate`.
- Test images: plenoptic's conftest downloads ``test_images.tar.gz``. Here the bundled
  photographs stand in: ``curie.pgm`` is ``difflens.data.curie()`` (plenoptic's
  ``einstein_img`` fixture loads curie.pgm too, kept as it was) and ``color_wheel.jpg`` is
  scikit-image's colour astronaut photograph (its first 256 x 256 pixels, as the fixture crops).
- The fixtures and models of plenoptic's ``tests/conftest.py`` these tests use (``curie_img``,
  ``einstein_img``, ``einstein_img_small``, ``einstein_small_seq``, ``color_img``, and
  ``model`` for ``frontend.OnOff.nograd``, ``Identity`` and ``ColorModel``).
"""

from __future__ import annotations

import types

import pytest
import torch

import difflens
import difflens.plenoptic_names as _pn
from difflens import data

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")  # as plenoptic's conftest


def center_crop(image: torch.Tensor, output_size: int) -> torch.Tensor:
    h, w = image.shape[-2:]
    top, left = (h - output_size) // 2, (w - output_size) // 2
    return image[..., top:top + output_size, left:left + output_size]


tools = types.SimpleNamespace(**{name: getattr(difflens.tools, name) for name in difflens.tools.__all__})
tools.center_crop = center_crop
tools.set_seed = difflens.tools.optim.set_seed
po = types.SimpleNamespace(synth=_pn.synth, tools=tools, simul=difflens.simulate)


class ColorModel(torch.nn.Module):
    """Simple model that takes color image as input and outputs 2d conv (plenoptic's conftest)."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, 1)

    def forward(self, x):
        return self.conv(x)


def get_model(name):
    """The entries of plenoptic 1.1.0's ``conftest.get_model`` the geodesic tests use."""
    if name == "Identity":
        return po.simul.Identity().to(DEVICE)
    if name == "ColorModel":
        model = ColorModel().to(DEVICE)
        po.tools.remove_grad(model)
        return model
    if name == "frontend.OnOff.nograd":
        mdl = po.simul.OnOff((31, 31), pretrained=True, cache_filt=True).to(DEVICE)
        po.tools.remove_grad(mdl)
        return mdl
    raise KeyError(f"{name!r} is not ported with the geodesic tests")


@pytest.fixture(scope="package")
def model(request):
    return get_model(request.param)


@pytest.fixture(scope="package")
def curie_img():
    return data.curie().to(DEVICE)


@pytest.fixture(scope="package")
def einstein_img():
    return data.curie().to(DEVICE)


@pytest.fixture(scope="package")
def einstein_img_small(einstein_img):
    return po.tools.center_crop(einstein_img, 64).to(DEVICE)


@pytest.fixture(scope="package")
def einstein_small_seq(einstein_img_small):
    return po.tools.translation_sequence(einstein_img_small, 5)


@pytest.fixture(scope="package")
def color_img():
    from skimage.data import astronaut  # scikit-image, a test dependency, ships the colour original

    img = torch.from_numpy(astronaut().astype("float32") / 255).permute(2, 0, 1)[None].to(DEVICE)
    return img[..., :256, :256]
