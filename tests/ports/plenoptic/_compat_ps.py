"""Mapping layer for the ported plenoptic 1.1.0 Portilla-Simoncelli and MetamerCTF tests.

What it maps, and nothing more:

- ``po.simul.PortillaSimoncelli``: difflens's model with the private names plenoptic's tests
  read (``_necessary_stats_mask`` set to ``None`` returns every statistic and records
  ``_pack_info``; ``_necessary_stats_dict``, ``_representation_scales``, ``_compute_pyr_coeffs``,
  ``_compute_intermediate_representations``, ``_double_phase_pyr_coeffs``), and
  ``plot_representation`` / ``update_plot`` as calls of ``difflens.plot.plot_ps_representation``
  / ``update_ps_representation`` (difflens models have no plotting methods). The numbers are
  difflens's.
- ``po.synth.MetamerCTF``: difflens's; ``po.tools.set_seed``, ``po.tools.optim.l2_norm``: difflens's.
- Test images: plenoptic downloads ``test_images.tar.gz``; ``einstein.pgm`` and ``curie.pgm`` are
  bundled (``_compat_pyramids.load_images``); ``metal.pgm`` -> ``difflens.data.brick()`` and
  ``nuts.pgm`` -> ``difflens.data.gravel()`` (bundled textures standing in for the two missing ones).
- Downloaded fixtures: ``portilla_simoncelli_test_vectors`` (stored plenoptic outputs) and
  ``portilla_simoncelli_scales`` (stored ``_representation_scales``) are written, for the one case
  the test runs, from installed plenoptic 1.4.0 (float64) into a temporary folder in the file
  layout the test reads. The MATLAB vectors and the stored synthesis are not available offline:
  those tests skip (reasons in docs/textures.md).
"""

from __future__ import annotations

import pathlib
import types
from collections import OrderedDict

import numpy as np
import pytest
import torch

import difflens
from difflens import data
from difflens.plot import plot_ps_representation, update_ps_representation
from difflens.simulate import PortillaSimoncelli as _DifflensPS
from difflens.simulate.portilla_simoncelli import double_phase
from difflens.synthesize import MetamerCTF

from . import _compat_pyramids as _pyr
from ._compat_pyramids import DEVICE, IMG_DIR, curie_img, einstein_img, get_model  # noqa: F401

_EXTRA = {"metal.pgm": data.brick, "nuts.pgm": data.gravel}


def load_images(paths, as_gray: bool = True):
    name = pathlib.Path(paths).name
    if name in _EXTRA and as_gray:
        return _EXTRA[name]()
    return _pyr.load_images(paths, as_gray)


class PortillaSimoncelli(_DifflensPS):
    """difflens's model with the private attributes plenoptic 1.1.0's tests use."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._prune = True
        self._pack_info = None

    @property
    def _necessary_stats_mask(self):
        return self.necessary_index if self._prune else None

    @_necessary_stats_mask.setter
    def _necessary_stats_mask(self, value):
        if value is not None:
            raise ValueError("the ported tests only set _necessary_stats_mask to None")
        self._prune = False

    @property
    def _necessary_stats_dict(self):
        return OrderedDict((k, torch.as_tensor(v)) for k, v in self.necessary.items())

    @property
    def _representation_scales(self):
        return self.representation_scales

    def forward(self, image, scales=None):
        if self._prune:
            return super().forward(image, scales)
        shapes = [() if k == "var_highpass_residual" else shp for k, shp in self.statistic_shapes.items()
                  if int(np.prod(shp)) > 0]
        self._pack_info = shapes
        return self.all_statistics(image)

    def _compute_pyr_coeffs(self, image):
        coeffs = self.pyramid(image)
        low = coeffs["residual_lowpass"]
        coeffs["residual_lowpass"] = low - low.mean((-2, -1), keepdim=True)
        bands = [coeffs[i] for i in range(self.n_scales)]
        return coeffs, bands, coeffs["residual_highpass"], coeffs["residual_lowpass"]

    @staticmethod
    def _compute_intermediate_representations(bands):
        mags = [z.abs() for z in bands]
        return [m - m.mean((-2, -1), keepdim=True) for m in mags], [z.real for z in bands]

    @staticmethod
    def _double_phase_pyr_coeffs(bands):
        return double_phase(bands)

    def plot_representation(self, data, ax=None, figsize=None, ylim=None, batch_idx=0, title=None):
        return plot_ps_representation(self, data, ax=ax, figsize=figsize, ylim=ylim, batch_idx=batch_idx,
                                      title=title)

    def update_plot(self, axes, data, batch_idx=0):
        return update_ps_representation(self, axes, data, batch_idx)


def _params(request):
    return request.node.callspec.params


@pytest.fixture()
def portilla_simoncelli_test_vectors(request, tmp_path):
    """The stored output of the case being run, written from plenoptic 1.4.0 (float64)."""
    import plenoptic

    p = _params(request)
    im0 = load_images(IMG_DIR / "256" / f"{p['im']}.pgm").to(torch.float64)
    model = plenoptic.simul.PortillaSimoncelli(im0.shape[-2:], n_scales=p["n_scales"],
                                               n_orientations=p["n_orientations"],
                                               spatial_corr_width=p["spatial_corr_width"]).to(torch.float64)
    name = f"{p['im']}_scales-{p['n_scales']}_ori-{p['n_orientations']}_spat-{p['spatial_corr_width']}.npy"
    np.save(tmp_path / name, model(im0).numpy())
    return str(tmp_path)


@pytest.fixture()
def portilla_simoncelli_scales(request, tmp_path):
    """The stored ``_representation_scales`` of the case being run, from plenoptic 1.4.0."""
    import plenoptic

    p = _params(request)
    model = plenoptic.simul.PortillaSimoncelli([256, 256], n_scales=p["n_scales"],
                                               n_orientations=p["n_orientations"],
                                               spatial_corr_width=p["spatial_corr_width"])
    key = f"scale-{p['n_scales']}_ori-{p['n_orientations']}_width-{p['spatial_corr_width']}"
    path = tmp_path / "scales.npz"
    np.savez(path, **{key: model._representation_scales})
    return str(path)


@pytest.fixture()
def portilla_simoncelli_matlab_test_vectors():
    pytest.skip("MATLAB test vectors are downloaded from OSF by plenoptic (not available offline); "
                "test_ps_torch_output compares with plenoptic 1.4 instead")


@pytest.fixture()
def portilla_simoncelli_synthesize():
    pytest.skip("the stored synthesis (portilla_simoncelli_synthesize_torch_v1.12.0_ps-refactor-2.npz) is "
                "downloaded from OSF (not available offline); MetamerCTF against plenoptic 1.4: "
                "tests/test_metamer_ctf.py")


@pytest.fixture(scope="package")
def model(request):
    return get_model(request.param)


def set_seed(seed=None):
    difflens.tools.optim.set_seed(seed)


simul = types.SimpleNamespace(PortillaSimoncelli=PortillaSimoncelli,
                              SteerablePyramidFreq=_pyr.SteerablePyramidFreq)
synth = types.SimpleNamespace(MetamerCTF=MetamerCTF)
tools = types.SimpleNamespace(set_seed=set_seed, optim=difflens.tools.optim)
po = types.SimpleNamespace(simul=simul, synth=synth, tools=tools, load_images=load_images,
                           to_numpy=difflens.tools.signal.to_numpy)
