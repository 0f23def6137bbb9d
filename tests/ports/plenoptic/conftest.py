"""plenoptic ports: cases that fail for a reason outside difflens, kept as strict xfails.

``peer_port`` itself is registered in pyproject.toml.
"""

import re

import pytest

# test_crosscorrs on the stand-in for metal.pgm (plenoptic downloads it; difflens.data.brick() stands
# in, see _compat_ps.py) at 3 and 4 scales: the cross-scale real correlations differ from
# torch.corrcoef by 1.8e-5 where the test allows 1e-5 + 2e-5 |x|. plenoptic 1.4 itself fails the same
# 42 cases on the same image (the same greatest difference, 1.8022e-5), so the tolerance was set on
# metal.pgm, not a bound the model's definition keeps on every image.
_STAND_IN_TOLERANCE = re.compile(r"test_crosscorrs\[metal-\d+-\d+-[34]\]")


# test_preserve_device[deviation_from_line] passes one image, not a sequence: its first and last
# frames coincide, so there is no line; plenoptic returns NaN distances (0 / 0), difflens raises a
# ValueError naming the problem. The test checks only the device of the result.
_ONE_FRAME = "test_preserve_device[deviation_from_line]"


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.name == _ONE_FRAME and "test_geodesic" in item.nodeid:
            item.add_marker(pytest.mark.xfail(
                reason="difflens refuses a one-frame sequence (no line to deviate from) where plenoptic "
                       "returns NaN", strict=True, raises=ValueError))
        if _STAND_IN_TOLERANCE.fullmatch(item.name):
            item.add_marker(pytest.mark.xfail(
                reason="plenoptic 1.4 fails this case too on the stand-in texture (tolerance set on "
                       "metal.pgm, which cannot be downloaded here)", strict=True, raises=AssertionError))
