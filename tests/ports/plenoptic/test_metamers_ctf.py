# Mechanical port of plenoptic 1.1.0 tests/test_metamers.py (github.com/plenoptic-org/plenoptic, tag 1.1.0):
# the MetamerCTF test (TestMetamers.test_coarse_to_fine), unchanged. Changes: `import plenoptic as po`
# and `from conftest import ...` -> the mapping layers (_compat_ps.py, _compat_pyramids.py: the SPyr
# model of plenoptic's conftest over difflens's pyramid), the peer_port mark.
import matplotlib
matplotlib.use('agg')
import os.path as op  # noqa: E402

import pytest  # noqa: E402

from ._compat_ps import DEVICE, einstein_img, model, po  # noqa: F401,E402  (fixtures)

pytestmark = pytest.mark.peer_port


class TestMetamers(object):

    @pytest.mark.parametrize('model', ['SPyr'], indirect=True)
    @pytest.mark.parametrize('coarse_to_fine', ['separate', 'together'])
    def test_coarse_to_fine(self, einstein_img, model, coarse_to_fine, tmp_path):
        metamer = po.synth.MetamerCTF(einstein_img, model, coarse_to_fine=coarse_to_fine)
        metamer.synthesize(max_iter=5, stop_iters_to_check=1,
                           change_scale_criterion=10, ctf_iters_to_check=1)
        assert len(metamer.scales_finished) > 0, "Didn't actually switch scales!"

        metamer.save(op.join(tmp_path, 'test_metamer_ctf.pt'))
        metamer_copy = po.synth.MetamerCTF(einstein_img, model,
                                           coarse_to_fine=coarse_to_fine)
        metamer_copy.load(op.join(tmp_path, "test_metamer_ctf.pt"),
                          map_location=DEVICE)
        # check the ctf-related attributes all saved correctly
        for k in ['coarse_to_fine', 'scales', 'scales_loss', 'scales_timing',
                  'scales_finished']:
            if not getattr(metamer, k) == (getattr(metamer_copy, k)):
                raise ValueError("Something went wrong with saving and loading! %s not the same"
                                 % k)
        # check we can resume
        metamer.synthesize(max_iter=5, stop_iters_to_check=1,
                           change_scale_criterion=10, ctf_iters_to_check=1)
