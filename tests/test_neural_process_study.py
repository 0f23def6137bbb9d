"""The neural_process study at tiny settings: it completes, reports the required metrics, and repeats exactly."""

import pytest

from difflens.studies import run_study
from difflens.studies.context import TIMING_KEY

TINY = {"kernels": ("se",), "models": ("cnp", "acnp", "lnp", "convcnp"), "steps": 20, "eval_tasks": 16,
        "curve_points": 1, "crossover_sizes": (10, 40), "digit_steps": 4, "digit_size": 8, "ar_tasks": 4,
        "convcnp_kernel_steps": ("se=12", "matern52=30")}


def comparable(record):
    return {k: v for k, v in record.items() if not TIMING_KEY.search(k) and k != "run"}


def test_tiny_study_completes_with_the_required_metrics_and_repeats(tmp_path):
    first = run_study("neural_process", tmp_path / "a", seed=3, settings=TINY, verbose=False).record()
    assert first["status"] == "complete"
    for key in ("ll_oracle_se", "ll_cnp_se", "ll_convcnp_se", "ll_gap_convcnp_se", "coverage_2sigma_convcnp_se",
                "ll_acnp_se", "ll_ar_convcnp_se", "ll_oracle_joint_se", "ll_is_lnp_se"):
        assert isinstance(first[key], float), key
    assert first["ll_gap_convcnp_se"] == pytest.approx(first["ll_oracle_se"] - first["ll_convcnp_se"], abs=1e-9)
    assert 0 <= first["coverage_2sigma_convcnp_se"] <= 1
    assert first["gap_curve_convcnp_se"][-1][0] == 12  # convcnp_kernel_steps, not steps
    assert first["gap_curve_cnp_se"][-1][0] == 20
    # the gap curve has its curve_points evaluations even when steps / curve_points is no multiple of 50
    curve = run_study("neural_process", tmp_path / "e", seed=3, verbose=False, settings={
        **TINY, "models": ("cnp",), "steps": 130, "curve_points": 2, "ar_tasks": 0, "digit_steps": 0,
        "crossover_sizes": (10,)}).record()["gap_curve_cnp_se"]
    assert [it for it, _ in curve] == [50, 100, 130]
    second = run_study("neural_process", tmp_path / "b", seed=3, settings=TINY, verbose=False).record()
    assert comparable(first) == comparable(second)


def test_unknown_kernel_is_named(tmp_path):
    with pytest.raises(ValueError, match="unknown kernel 'rbf'"):
        run_study("neural_process", tmp_path / "c", settings={**TINY, "kernels": ("rbf",)}, verbose=False)


@pytest.mark.parametrize("entry", ["rbf=10", "se=", "se=ten", "se=0", "se"])
def test_malformed_convcnp_kernel_steps_are_named(tmp_path, entry):
    with pytest.raises(ValueError, match="convcnp_kernel_steps entry"):
        run_study("neural_process", tmp_path / "d", settings={**TINY, "convcnp_kernel_steps": (entry,)}, verbose=False)
