"""A study interrupted, terminated or killed tells the truth about it, and --resume finishes it exactly.

Each test drives the real command line in a subprocess (``tests/studies_demo.py``
registers a two-phase training study) and sends it real signals.
"""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

import studies_demo  # noqa: F401
from difflens import cli
from difflens.studies import run_study
from difflens.studies.context import TIMING_KEY

TESTS = Path(__file__).parent
LAUNCH = ("import sys; sys.path.insert(0, {tests!r}); import studies_demo; from difflens.cli import main; "
          "sys.exit(main(sys.argv[1:]))")
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def _start(out: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", LAUNCH.format(tests=str(TESTS)), "run", "_train",
                             "--out", str(out), "--threads", "1", *args],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)


def _wait_for(proc: subprocess.Popen, marker: str, timeout: float = 60.0) -> str:
    seen, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen.append(line)
        if marker in line:
            return "".join(seen)
    proc.kill()
    raise AssertionError(f"never saw {marker!r}; stderr:\n{''.join(seen)}")


def _comparable(record: dict) -> dict:
    return {k: v for k, v in record.items() if not TIMING_KEY.search(k) and k not in ("run", "status")}


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_study_exits_130_says_where_and_resumes_to_the_same_numbers(tmp_path, sig):
    out = tmp_path / "run"
    proc = _start(out, "--set", "iterations=150", "--set", "delay=0.01")
    _wait_for(proc, "phase second: ")  # a progress line of the second phase: it is under way
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    record = json.loads((out / "metrics.json").read_text())
    assert record["status"] == "interrupted"
    stopped = record["run"]["stopped"]
    assert stopped["phase"] == "training, phase second" and stopped["signal"] == signal.Signals(sig).name
    assert 0 < stopped["step"] < stopped["steps"] == 150
    assert "second.final_loss" not in record and record["first.iterations"] == 150  # nothing unfinished shown
    page = (out / "index.html").read_text()
    assert "INTERRUPTED" in page and "--resume" in page
    assert not list(out.glob(".*.tmp*"))

    assert cli.main(["run", "_train", "--resume", "--out", str(out), "--quiet"]) == 0
    resumed = json.loads((out / "metrics.json").read_text())
    assert resumed["status"] == "complete" and "stopped" not in resumed["run"]
    fresh = run_study("_train", tmp_path / "fresh", verbose=False, options={"iterations": "150"}).record()
    assert _comparable(resumed) == _comparable(fresh)
    assert resumed["run"]["settings"]["iterations"] == 150


def test_killed_study_leaves_a_consistent_report(tmp_path):
    rng = random.Random(0)
    for trial in range(3):
        out = tmp_path / f"kill{trial}"
        proc = _start(out, "--set", "iterations=60", "--set", "figures=6")
        _wait_for(proc, "training, phase first")
        time.sleep(rng.uniform(0.0, 2.5))
        proc.kill()
        proc.wait(timeout=30)
        record = json.loads((out / "metrics.json").read_text())
        assert record["status"] in ("running", "complete")
        page = (out / "index.html").read_text()
        assert page.rstrip().endswith("</html>")
        if record["status"] == "running":
            assert "RUNNING" in page
        for png in out.glob("*.png"):
            with Image.open(png) as im:
                im.verify()
        for name in json.loads((out / ".difflens-files.json").read_text())["files"]:
            assert not name.endswith(".tmp")


def test_interrupted_tour_exits_130_and_its_landing_page_says_so(tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    out = tmp_path / "tour"
    proc = subprocess.Popen([sys.executable, "-c", LAUNCH.format(tests=str(TESTS)), "tour", "--only", "_demo",
                             "_train", "--out", str(out), "--threads", "1"],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
    _wait_for(proc, "training, phase first")
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode == 130
    index = (out / "index.html").read_text()
    assert "complete" in index and "interrupted" in index  # _demo finished, _train did not
    assert json.loads((out / "_train" / "metrics.json").read_text())["status"] == "interrupted"
