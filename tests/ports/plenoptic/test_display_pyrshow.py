# Mechanical port of plenoptic 1.1.0 tests/test_display.py (github.com/plenoptic-org/plenoptic, tag 1.1.0).
# Changes: `import plenoptic as po`, `from conftest import ...` and plenoptic's to_numpy -> the mapping
# layer (_compat_pyramids.py: plenoptic's names over difflens, bundled images instead of the downloaded
# test_images.tar.gz, the conftest fixtures these tests use), the peer_port mark; only TestDisplay.steerpyr and
# TestDisplay.test_pyrshow (the rest of the file is other ports' subject). Data, tolerances
# and assertions are plenoptic's; pass count and failure causes: docs/textures.md, "Pyramids".
import matplotlib as mpl
# use the html backend, so we don't need to have ffmpeg
mpl.rcParams['animation.writer'] = 'html'
mpl.use('agg')
import pytest
import matplotlib.pyplot as plt
import torch
import numpy as np
from ._compat_pyramids import DEVICE, curie_img, po  # noqa: F401  (fixture)

pytestmark = pytest.mark.peer_port


class TestDisplay(object):

    @pytest.fixture(scope='class', params=['complex', 'not-complex'])
    def steerpyr(self, request):
        if request.param == 'complex':
            is_complex = True
        elif request.param == 'not-complex':
            is_complex = False
        return po.simul.SteerablePyramidFreq((32, 32), height=2, order=1, is_complex=is_complex).to(DEVICE)

    @pytest.mark.parametrize('channel_idx', [None, 0, [0, 1]])
    @pytest.mark.parametrize('batch_idx', [None, 0, [0, 1]])
    @pytest.mark.parametrize('show_residuals', [True, False])
    def test_pyrshow(self, steerpyr, channel_idx, batch_idx, show_residuals,
                     curie_img):
        fails = False
        if not isinstance(channel_idx, int) or not isinstance(batch_idx, int):
            fails = True
        n_axes = 4
        if steerpyr.is_complex:
            n_axes *= 2
        if show_residuals:
            n_axes += 2
        img = curie_img.clone()
        img = img[..., :steerpyr.lo0mask.shape[-2], :steerpyr.lo0mask.shape[-1]]
        coeffs = steerpyr(img)
        if not fails:
            # unfortunately, can't figure out how to properly parametrize this
            # and use the steerpyr fixture
            for comp in ['rectangular', 'polar', 'logpolar']:
                fig = po.pyrshow(coeffs, show_residuals=show_residuals,
                                 plot_complex=comp, batch_idx=batch_idx,
                                 channel_idx=channel_idx)
                # get all the axes that have an image (so, get all non-empty
                # axes)
                axes = [ax for ax in fig.axes if ax.images]
                if len(axes) != n_axes:
                    raise Exception(f"Created {len(fig.axes)} axes, but expected {n_axes}!")
                plt.close('all')
        else:
            with pytest.raises(TypeError):
                po.pyrshow(coeffs, batch_idx=batch_idx, channel_idx=channel_idx)

