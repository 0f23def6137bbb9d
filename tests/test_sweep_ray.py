"""Sweeps through a real local Ray cluster (two worker CPUs): results equal the local pool's, a killed worker
loses only its run, which is resumed; skipped when Ray is not installed."""

import json
import signal
import threading
import time

import pytest

ray = pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")

import studies_demo  # noqa: F401  (registers _train)

from difflens.studies.sweep import sweep

SETTINGS = {"iterations": 40, "delay": 0.02, "figures": 0}


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    try:
        yield
    finally:
        ray.shutdown()


def _untimed(path):
    m = json.loads(path.read_text())
    return {k: v for k, v in m.items() if "seconds" not in k and k != "run"}


def _killer(out, killed):
    """Kill (SIGKILL) one Ray worker in a run once seed 1 has written a checkpoint."""
    deadline = time.time() + 60
    while time.time() < deadline and not killed:
        if list((out / "runs" / "seed-1").glob("**/*first*.pt")):
            for p in psutil.process_iter(["cmdline"]):
                cmd = " ".join(p.info["cmdline"] or [])
                if cmd.startswith("ray::execute_run"):
                    metrics = out / "runs" / "seed-1" / "metrics.json"
                    if metrics.is_file() and json.loads(metrics.read_text())["status"] == "running":
                        p.send_signal(signal.SIGKILL)
                        killed.append(p.pid)
                        return
        time.sleep(0.02)


def test_ray_sweep_survives_a_killed_worker_and_equals_local(cluster, tmp_path):
    local = sweep("_train", tmp_path / "local", "0-2", settings=SETTINGS, jobs=2, verbose=False)
    assert local.complete
    killed = []
    watcher = threading.Thread(target=_killer, args=(tmp_path / "ray", killed), daemon=True)
    watcher.start()
    remote = sweep("_train", tmp_path / "ray", "0-2", settings=SETTINGS, backend="ray", verbose=False)
    watcher.join(timeout=5)
    assert killed, "no Ray worker was killed"
    assert remote.complete, remote.runs
    assert sorted(r["attempts"] for r in remote.runs) == [1, 1, 2]  # only the killed run ran again
    for seed in range(3):
        name = f"seed-{seed}"
        assert _untimed(tmp_path / "ray" / "runs" / name / "metrics.json") == \
            _untimed(tmp_path / "local" / "runs" / name / "metrics.json"), name
    strip = lambda s: [(r["group"], r["metric"], r["values"]) for r in s.rows if "seconds" not in r["metric"]]
    assert strip(remote) == strip(local)


def test_ray_rerun_reruns_nothing_finished(cluster, tmp_path):
    s = sweep("_train", tmp_path / "sw", "0-1", settings=SETTINGS, backend="ray", verbose=False)
    assert s.complete
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "sw" / "runs").glob("*/metrics.json")}
    again = sweep("_train", tmp_path / "sw", "0-1", settings=SETTINGS, backend="ray", verbose=False)
    assert all(r.get("skipped") for r in again.runs)
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())


def test_ray_resources_no_node_has_are_refused(cluster, tmp_path):
    from difflens.studies.sweep import SweepError

    with pytest.raises(SweepError, match="no run would start"):
        sweep("_train", tmp_path / "sw", "0", settings=SETTINGS, backend="ray", gpus_per_run=1, verbose=False)
    assert not (tmp_path / "sw").exists()
