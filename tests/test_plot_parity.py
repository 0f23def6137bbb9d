"""plenoptic's layout arguments (fig, axes_idx, width_ratios, included_plots) on the metamer and MAD figures."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest
import torch

import difflens.plenoptic_names as po
from difflens.plot import metamer as met_plots
from difflens.plot import save_animation
from difflens.synthesize import Metamer


def blur(x):
    return torch.nn.functional.avg_pool2d(x, 2)


@pytest.fixture(scope="module")
def met():
    img = torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    m = Metamer(img, blur, generator=torch.Generator().manual_seed(1))
    m.synthesize(max_iter=4, store_progress=2, stop_criterion=0.0, progress=False)
    return m


def test_metamer_status_into_an_existing_figure_at_given_axes(met):
    fig, axes = plt.subplots(1, 3)
    fig, axes_idx = met_plots.plot_synthesis_status(met, fig=fig, axes_idx={"plot_loss": 0, "display_metamer": 2},
                                                    included_plots=["display_metamer", "plot_loss"])
    assert axes_idx == {"plot_loss": 0, "display_metamer": 2, "misc": [1]}
    assert axes[0].get_title() == "loss" and axes[2].get_title() == "metamer" and not axes[1].has_data()
    with pytest.raises(ValueError, match="width_ratios contained value"):
        met_plots.plot_synthesis_status(met, width_ratios={"loss": 2})
    with pytest.raises(ValueError, match="no valid index"):
        met_plots.plot_synthesis_status(met, fig=plt.figure(), axes_idx={"plot_loss": 5},
                                        included_plots=["plot_loss"])
    plt.close("all")


def test_metamer_width_ratios_and_animation_into_a_figure(met, tmp_path):
    fig, _ = met_plots.plot_synthesis_status(met, included_plots=["display_metamer", "plot_loss"],
                                                    width_ratios={"plot_loss": 3.0})
    w0, w1 = fig.axes[0].get_subplotspec().get_gridspec().get_width_ratios()
    assert w1 / w0 == pytest.approx(3.0)
    fig2, _ = plt.subplots(1, 2)
    anim = po.synth.metamer.animate(met, fig=fig2, axes_idx={"plot_loss": 1, "display_metamer": 0},
                                    included_plots=["display_metamer", "plot_loss"])
    assert anim._fig is fig2 and save_animation(anim, tmp_path / "a.gif").stat().st_size > 0
    assert fig2.axes[1].get_title() == "loss"
    plt.close("all")
