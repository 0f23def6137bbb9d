"""The real studies at tiny sizes: same seed, same numbers under CPU load; a real interrupt resumes exactly."""

import json
import os
import signal
import subprocess
import sys

import pytest

from difflens.studies import run_study
from difflens.studies.context import TIMING_KEY

TINY = {
    "probe": {"gaussian_iterations": 15, "center_surround_iterations": 15, "gain_control_iterations": 15,
              "store_every": 5},
    "lorenz": {"n_train": 3, "n_val": 2, "n_test": 4, "train_samples": 150, "test_lt": 2.0, "hidden": 16,
               "iterations": 40, "batch": 16, "snapshots": 2, "lyap_traj": 2, "lyap_steps": 20,
               "emu_lyap_steps": 20, "free_steps": 300, "greybox_noise": (0.0,), "greybox_traj": 1,
               "greybox_samples": 41, "ftle_ics": 1, "ftle_horizons": (0.5,)},
    "gp": {"grid_step": 0.25, "n_draws": 2, "fit_points": 10, "fit_iterations": 20},
    "draw": {"gesture_epochs": 1, "cluster_epochs": 1, "static_epochs": 1, "kmeans_restarts": 1},
    "assim": {"experiments": 1, "cycles": 20, "extkf_cycles": 10, "var4d_cycles": 2, "l96_cycles": 12,
              "climatology_cycles": 50, "pf_particles": 20, "emulator_iterations": 5, "emulator_hidden": 8,
              "emulator_cycles": 10, "gp_points": 30, "gp_long_points": 50},
    "neural_process": {"kernels": ("se",), "models": ("cnp", "convcnp"), "steps": 20, "eval_tasks": 16,
                       "curve_points": 1, "crossover_sizes": (10, 40), "digit_steps": 4, "digit_size": 8,
                       "ar_tasks": 4},
    "control": {"lqr_horizon": 5, "fit_steps": 20, "transitions": 500, "train_steps": 3, "ramp": 3,
                "eval_starts": 8, "mpc_starts": 1, "mpc_horizon": 3, "mpc_steps": 3, "lorenz_starts": 2,
                "lorenz_time": 1.1, "lorenz_fit_steps": 5, "lorenz_horizon": 2, "target_train_steps": 2,
                "ensemble_members": 2, "ensemble_fit_steps": 3, "ensemble_transitions": 200},
}


def comparable(record: dict) -> dict:
    """metrics.json without wall-clock timings (the only values allowed to differ between runs at one seed)."""
    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if not TIMING_KEY.search(k)}
        return value

    return {k: strip(v) for k, v in record.items() if not TIMING_KEY.search(k)}


@pytest.fixture
def cpu_load():
    """Two busy processes: the machine is loaded while the second run goes."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    yield
    for p in procs:
        p.kill()
        p.wait()


@pytest.mark.parametrize("name", sorted(TINY))
def test_same_seed_gives_identical_metrics_even_under_cpu_load(tmp_path, name, request):
    first = run_study(name, tmp_path / "a", seed=1, settings=TINY[name], verbose=False).record()
    request.getfixturevalue("cpu_load")
    second = run_study(name, tmp_path / "b", seed=1, settings=TINY[name], verbose=False).record()
    assert first["status"] == second["status"] == "complete"
    assert comparable(first) == comparable(second)
    assert len(comparable(first)) > 5


def test_lorenz_interrupted_during_training_exits_130_and_resumes_to_the_same_numbers(tmp_path):
    settings = {**TINY["lorenz"], "iterations": 400}
    sets = [f"{k}={','.join(map(str, v)) if isinstance(v, tuple) else v}" for k, v in settings.items()]
    out = tmp_path / "lorenz"
    argv = [sys.executable, "-m", "difflens.cli", "run", "lorenz", "--out", str(out), "--threads", "1"]
    for item in sets:
        argv += ["--set", item]
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if line.startswith("training emulator: 80/400"):
            proc.send_signal(signal.SIGINT)
            break
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, "".join(seen) + err
    record = json.loads((out / "metrics.json").read_text())
    assert record["status"] == "interrupted"
    assert record["run"]["stopped"]["phase"] == "training the emulator"
    assert 80 <= record["run"]["stopped"]["step"] < 400 and "vpt_median_lyapunov_times" not in record
    assert "INTERRUPTED" in (out / "index.html").read_text()

    resumed = run_study("lorenz", out, resume=True, verbose=False).record()
    fresh = run_study("lorenz", tmp_path / "fresh", settings=settings, verbose=False).record()
    assert resumed["status"] == "complete"
    assert comparable(resumed) == comparable(fresh)
