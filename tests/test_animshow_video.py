"""animshow with plenoptic 1.4's videos: 5-D (batch, channel, time, height, width) tensors and lists of them."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from difflens.plot import animshow


def _shown(anim, t):
    """The arrays the animation's panels show at frame ``t``."""
    anim._func(t)
    return [ax.images[-1].get_array() for ax in anim._fig.axes]


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def _video(*shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def test_each_batch_element_is_a_panel_and_frame_t_shows_video_t():
    video = _video(3, 1, 5, 12, 10)
    anim = animshow(video)
    assert len(anim._fig.axes) == 3 and anim._save_count == 5
    for t in (0, 2, 4):
        for b, shown in enumerate(_shown(anim, t)):
            np.testing.assert_array_equal(shown, video[b, 0, t].numpy())


def test_channels_batch_and_channel_idx():
    video = _video(2, 3, 4, 8, 8)
    assert len(animshow(video)._fig.axes) == 6  # every (batch, channel) pair
    anim = animshow(video, batch_idx=1, channel_idx=2)
    assert len(anim._fig.axes) == 1
    np.testing.assert_array_equal(_shown(anim, 3)[0], video[1, 2, 3].numpy())


def test_as_rgb_shows_channels_as_colour():
    video = _video(2, 3, 4, 8, 8) * 1.2 - 0.1  # some values outside [0, 1]: clipped as plenoptic's
    anim = animshow(video, as_rgb=True)
    assert len(anim._fig.axes) == 2
    shown = _shown(anim, 1)
    for b in range(2):
        expected = np.clip(video[b, :, 1].permute(1, 2, 0).numpy(), 0, 1)
        np.testing.assert_array_equal(shown[b], expected)
    with pytest.raises(ValueError, match="3 or 4 channels"):
        animshow(_video(1, 2, 4, 8, 8), as_rgb=True)


def test_list_of_videos_of_different_sizes():
    videos = [_video(1, 1, 4, 16, 16, seed=1), _video(2, 1, 4, 8, 8, seed=2)]
    anim = animshow(videos, title=["big", "small 0", "small 1"])
    assert len(anim._fig.axes) == 3
    shown = _shown(anim, 2)
    np.testing.assert_array_equal(shown[0], videos[0][0, 0, 2].numpy())
    np.testing.assert_array_equal(shown[2], videos[1][1, 0, 2].numpy())
    assert anim._fig.axes[1].get_title().startswith("small 0")
    with pytest.raises(ValueError, match=r"\[4, 3\] frames"):
        animshow([_video(1, 1, 4, 8, 8), _video(1, 1, 3, 8, 8)])


def test_same_panels_and_frames_as_plenoptic():
    po = pytest.importorskip("plenoptic")
    video = _video(2, 1, 6, 12, 10, seed=3)
    ours, theirs = animshow(video, zoom=1), po.animshow(video)
    assert len(ours._fig.axes) == len(theirs._fig.axes) == 2
    for t in (0, 5):
        for a, b in zip(_shown(ours, t), _shown(theirs, t)):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-7)
    assert [ax.get_title() for ax in ours._fig.axes] == [ax.get_title() for ax in theirs._fig.axes]


def test_complex_video_gives_two_panels_per_band():
    video = torch.complex(_video(1, 1, 3, 8, 8, seed=4), _video(1, 1, 3, 8, 8, seed=5))
    anim = animshow(video, plot_complex="rectangular")
    assert len(anim._fig.axes) == 2
    real, imag = _shown(anim, 1)
    np.testing.assert_array_equal(real, video[0, 0, 1].real.double().numpy())
    np.testing.assert_array_equal(imag, video[0, 0, 1].imag.double().numpy())


@pytest.mark.parametrize("bad", [torch.rand(8, 8), torch.rand(1, 1, 1, 2, 8, 8), np.zeros(5)])
def test_bad_ndim_names_the_accepted_layouts(bad):
    with pytest.raises(ValueError, match=r"5-D \(batch, channel, time, height, width\).*time-first"):
        animshow(bad)


def test_other_bad_input():
    with pytest.raises(ValueError, match="mixes 5-D videos"):
        animshow([_video(1, 1, 3, 8, 8), torch.rand(8, 8)])
    with pytest.raises(ValueError, match="no frames"):
        animshow(torch.rand(1, 1, 0, 8, 8))
    with pytest.raises(ValueError, match="empty"):
        animshow([])
