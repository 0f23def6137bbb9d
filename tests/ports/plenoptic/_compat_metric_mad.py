"""Mapping layer for the ported plenoptic 1.1.0 metric and MAD tests: plenoptic's names over difflens.

What it maps, and nothing more:

- ``po.metric`` -> :mod:`difflens.metric`; ``po.synth.MADCompetition`` -> difflens's;
  ``po.tools.optim`` (``l2_norm``, ``set_seed``), ``po.tools.add_noise`` (difflens.data.add_noise, with
  its default generator) and ``po.tools.data.load_images`` -> difflens's.
- Test images: plenoptic's conftest downloads ``test_images.tar.gz``. Here ``IMG_DIR`` is a
  temporary folder written once from the bundled photographs: ``256/einstein.pgm`` and
  ``256/curie.pgm`` (8-bit PGM of ``difflens.data.einstein()`` / ``curie()``) and ``mixed/``
  (einstein at 256 px and a 128 px crop: images of different sizes).
- ``po.data.fetch_data`` (the SSIM/MS-SSIM reference images and MATLAB values,
  ``plenoptic-test-files.tar.gz``) cannot be downloaded here: the fixtures that need them skip.
- The fixtures of plenoptic's ``tests/conftest.py`` these tests use (``curie_img``,
  ``einstein_img`` -- which loads curie.pgm there too, kept as it was -- and ``model`` for
  ``frontend.OnOff``).
"""

from __future__ import annotations

import pathlib
import tempfile
import types

import numpy as np
import pytest
import torch
from PIL import Image

import difflens
from difflens import data, metric
from difflens.simulate import OnOff
from difflens.synthesize import MADCompetition
from difflens.tools import optim

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")  # as plenoptic's conftest


def _write_test_images() -> pathlib.Path:
    root = pathlib.Path(tempfile.mkdtemp(prefix="difflens-plenoptic-test-images-"))
    (root / "256").mkdir()
    (root / "mixed").mkdir()

    def save(img: torch.Tensor, path: pathlib.Path) -> None:
        Image.fromarray(np.round(img[0, 0].numpy() * 255).astype(np.uint8)).save(path)

    save(data.einstein(), root / "256" / "einstein.pgm")
    save(data.curie(), root / "256" / "curie.pgm")
    save(data.einstein(), root / "mixed" / "einstein.pgm")
    save(data.einstein()[..., :128, :128], root / "mixed" / "einstein_crop.pgm")
    return root


IMG_DIR = _write_test_images()


def fetch_data(name: str):
    pytest.skip(f"plenoptic's {name} is downloaded by plenoptic's tests; not bundled with difflens and "
                "no download is allowed here")


tools = types.SimpleNamespace(optim=optim, add_noise=data.add_noise, data=types.SimpleNamespace(load_images=data.load_images),
                              set_seed=optim.set_seed, remove_grad=difflens.tools.validate.remove_grad)
synth = types.SimpleNamespace(MADCompetition=MADCompetition)
simul = types.SimpleNamespace(OnOff=OnOff)
po = types.SimpleNamespace(metric=metric, synth=synth, tools=tools, simul=simul, load_images=data.load_images,
                           data=types.SimpleNamespace(fetch_data=fetch_data))


# ---- the fixtures of plenoptic 1.1.0's tests/conftest.py that these tests use
@pytest.fixture(scope="package")
def curie_img():
    return po.load_images(IMG_DIR / "256" / "curie.pgm").to(DEVICE)


@pytest.fixture(scope="package")
def einstein_img():
    return po.load_images(IMG_DIR / "256" / "curie.pgm").to(DEVICE)


def get_model(name):
    """The ``frontend.OnOff`` entry of plenoptic 1.1.0's ``conftest.get_model``."""
    if name == "frontend.OnOff":
        return po.simul.OnOff((31, 31), pretrained=True, cache_filt=True).to(DEVICE)
    raise KeyError(f"{name!r} is not ported with the metric tests")


@pytest.fixture(scope="package")
def model(request):
    return get_model(request.param)
