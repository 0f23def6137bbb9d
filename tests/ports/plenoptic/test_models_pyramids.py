# Mechanical port of plenoptic 1.1.0 tests/test_models.py (github.com/plenoptic-org/plenoptic, tag 1.1.0).
# Changes: `import plenoptic as po`, `from conftest import ...` and plenoptic's to_numpy -> the mapping
# layer (_compat_pyramids.py: plenoptic's names over difflens, bundled images instead of the downloaded
# test_images.tar.gz, the conftest fixtures these tests use), the peer_port mark; only the pyramid parts of the file: ALL_MODELS
# restricted to the two pyramids (the other models are other ports' subjects), the device tests and
# TestLaplacianPyramid. Data, tolerances
# and assertions are plenoptic's; pass count and failure causes: docs/textures.md, "Pyramids".
import os

import numpy as np
import pyrtools as pt
import pytest
import torch

from ._compat_pyramids import DEVICE, basic_stim, curie_img, einstein_img, model, po  # noqa: F401  (fixtures)

pytestmark = pytest.mark.peer_port
os.environ['CUBLAS_WORKSPACE_CONFIG'] = ':4096:8'


ALL_MODELS = [
    "LPyr",
    "SPyr",
]




@pytest.mark.parametrize("model", ALL_MODELS, indirect=True)
@pytest.mark.skipif(DEVICE.type == 'cpu', reason="Can only test on cuda")
def test_cuda(model, einstein_img):
    model.cuda()
    model(einstein_img)
    # make sure it ends on same device it started, since it might be a fixture
    model.to(DEVICE)

@pytest.mark.parametrize("model", ALL_MODELS, indirect=True)
@pytest.mark.skipif(DEVICE.type == 'cpu', reason="Can only test on cuda")
def test_cpu_and_back(model, einstein_img):
    model.cpu()
    model.cuda()
    model(einstein_img)
    # make sure it ends on same device it started, since it might be a fixture
    model.to(DEVICE)

@pytest.mark.parametrize("model", ALL_MODELS, indirect=True)
@pytest.mark.skipif(DEVICE.type == 'cpu', reason="Can only test on cuda")
def test_cuda_and_back(model, einstein_img):
    model.cuda()
    model.cpu()
    model(einstein_img.cpu())
    # make sure it ends on same device it started, since it might be a fixture
    einstein_img.to(DEVICE)
    model.to(DEVICE)

@pytest.mark.parametrize("model", ALL_MODELS, indirect=True)
def test_cpu(model, einstein_img):
    model.cpu()
    model(einstein_img.cpu())
    # make sure it ends on same device it started, since it might be a fixture
    einstein_img.to(DEVICE)
    model.to(DEVICE)

@pytest.mark.parametrize("model", ALL_MODELS, indirect=True)
def test_validate_model(model):
    po.tools.remove_grad(model)
    po.tools.validate.validate_model(model, device=DEVICE,
                                     image_shape=(1, 1, 256, 256))


class TestLaplacianPyramid(object):

    def test_grad(self, basic_stim):
        lpyr = po.simul.LaplacianPyramid().to(DEVICE)
        y = lpyr.forward(basic_stim)
        assert y[0].requires_grad

    @pytest.mark.parametrize("n_scales", [3, 4, 5, 6])
    def test_synthesis(self, curie_img, n_scales):
        img = curie_img[:, :, 0:253, 0:234]  # Original 256x256 shape is not good for testing padding
        lpyr = po.simul.LaplacianPyramid(n_scales=n_scales).to(DEVICE)
        y = lpyr.forward(img)
        img_recon = lpyr.recon_pyr(y)
        assert torch.allclose(img, img_recon)

    @pytest.mark.parametrize("n_scales", [3, 4, 5, 6])
    def test_match_pyrtools(self, curie_img, n_scales):
        img = curie_img[:, :, 0:253, 0:234]
        lpyr_po = po.simul.LaplacianPyramid(n_scales=n_scales).to(DEVICE)
        y_po = lpyr_po(img)
        lpyr_pt = pt.pyramids.LaplacianPyramid(img.squeeze().cpu(), height=n_scales)
        y_pt = [lpyr_pt.pyr_coeffs[(i, 0)] for i in range(n_scales)]
        assert len(y_po) == len(y_pt)
        for x_po, x_pt in zip(y_po, y_pt):
            x_po = x_po.squeeze().detach().cpu().numpy()
            assert np.abs(x_po - x_pt)[:-2, :-2].max() < 1e-5
            # The pyrtools implementation `pt.upConv performs`` padding after upsampling.
            # Our implementation `po.tools.upsample_convolve`` performs padding before upsampling,
            # and, depending on the parity of the image, sometimes performs additional zero padding
            # after upsampling up to one row/column. This causes inconsistency on the right and
            # bottom edges, so they are exluded in the comparison.
