"""The textures study at a tiny size: complete, metrics present, same seed same numbers."""

import json

from difflens.studies import run_study
from difflens.studies.context import TIMING_KEY

TINY = {"textures": ("gravel",), "size": 32, "n_scales": 2, "spatial_corr_width": 3, "lbfgs_steps": 2,
        "mad_size": 32, "mad_iterations": 3}


def comparable(record):
    return {k: v for k, v in record.items() if not TIMING_KEY.search(k) and k != "run"}


def test_textures_study_tiny_runs_and_repeats(tmp_path):
    first = run_study("textures", tmp_path / "a", seed=3, settings=TINY, verbose=False).record()
    assert first["status"] == "complete"
    assert first["ps_iterations_gravel"] == 2
    assert first["ps_loss_gravel"] < first["ps_initial_loss_gravel"]
    for key in ("mad_best_ssim_ssim", "mad_worst_ssim_ssim", "mad_best_mse_mse", "mad_worst_mse_mse",
                "ps_seconds_gravel"):
        assert key in first
    assert first["mad_best_ssim_ssim"] > first["mad_worst_ssim_ssim"]
    assert first["mad_best_mse_mse"] < first["mad_worst_mse_mse"]
    files = {p.name for p in (tmp_path / "a").iterdir()}
    assert {"texture_metamers.png", "texture_losses.png", "pyramid_coefficients.png", "mad_images.png",
            "metrics.json"} <= files
    second = run_study("textures", tmp_path / "b", seed=3, settings=TINY, verbose=False).record()
    assert comparable(first) == comparable(second)
    assert json.loads((tmp_path / "a" / "metrics.json").read_text())["status"] == "complete"
