"""Sweeps on the local process pool: the run grid, aggregation, retries, skipping and bad input."""

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import studies_demo  # noqa: F401  (registers _demo and _train)
from scipy import stats

from difflens.studies.outdir import OutputFolderError
from difflens.studies.sweep import SweepError, aggregate, parse_grid, parse_seeds, sweep

HERE = str(Path(__file__).parent)


def _run(out, seeds="0-2", **kw):
    kw.setdefault("jobs", 2)
    return sweep("_demo", out, seeds, imports=["studies_demo"], verbose=False, **kw)


def test_grid_runs_and_summary_statistics(tmp_path):
    s = _run(tmp_path / "sw", "0-3", grid={"scale": ["0.5", "2"]})
    assert [r["status"] for r in s.runs] == ["complete"] * 8
    names = sorted(p.name for p in (tmp_path / "sw" / "runs").iterdir())
    assert names == sorted(f"scale-{v}_seed-{k}" for v in ("0.5", "2") for k in range(4))
    for name in names:  # each run folder is a whole `difflens run` folder
        m = json.loads((tmp_path / "sw" / "runs" / name / "metrics.json").read_text())
        assert m["status"] == "complete" and (tmp_path / "sw" / "runs" / name / "index.html").is_file()
        assert m["run"]["settings"]["scale"] == float(name.split("_")[0][6:])
    firsts = [json.loads((tmp_path / "sw" / "runs" / f"scale-2_seed-{k}" / "metrics.json").read_text())["first"]
              for k in range(4)]
    row = s.table("first")["scale=2"]
    assert row["n"] == 4 and row["mean"] == pytest.approx(np.mean(firsts))
    assert row["std"] == pytest.approx(np.std(firsts, ddof=1))
    lo, hi = stats.t.interval(0.95, 3, loc=np.mean(firsts), scale=stats.sem(firsts))
    assert (row["ci_low"], row["ci_high"]) == (pytest.approx(lo), pytest.approx(hi))
    assert (row["min"], row["max"]) == (min(firsts), max(firsts))
    # two grid values: a paired comparison; the demo's draw does not depend on the scale
    comp = {c["metric"]: c for c in s.comparison}
    assert comp["scale"]["difference"] == pytest.approx(1.5) and comp["scale"]["paired"]
    assert comp["first"]["difference"] == 0.0
    summary = json.loads((tmp_path / "sw" / "summary.json").read_text())
    assert summary["progress"]["complete"] == 8 and summary["progress"]["total"] == 8
    csv = (tmp_path / "sw" / "summary.csv").read_text().splitlines()
    assert csv[0].startswith("group,metric,n,mean,std,ci_low,ci_high,min,max") and len(csv) == 1 + len(s.rows)
    page = (tmp_path / "sw" / "index.html").read_text()
    assert "strip_first.png" in page and (tmp_path / "sw" / "strip_first.png").is_file()
    assert "scale=2 − scale=0.5" in page


def test_rerun_skips_finished_runs_and_adds_new_seeds(tmp_path):
    _run(tmp_path / "sw", "0-1")
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "sw" / "runs").glob("*/metrics.json")}
    s = _run(tmp_path / "sw", "0-2")
    assert [r.get("skipped", False) for r in s.runs] == [True, True, False]
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())
    assert s.table("first")["all"]["n"] == 3


def test_failing_runs_are_retried_then_reported_while_others_finish(tmp_path):
    s = _run(tmp_path / "sw", "0-1", grid={"fail": ["false", "true"]}, retries=1)
    by = {(r["group"], r["seed"]): r for r in s.runs}
    assert all(by[("fail=false", k)]["status"] == "complete" for k in (0, 1))
    for k in (0, 1):
        r = by[("fail=true", k)]
        assert r["status"] == "failed" and r["attempts"] == 2 and "asked to fail" in r["error"]
    assert not s.complete
    assert "asked to fail" in (tmp_path / "sw" / "index.html").read_text()


def test_aggregate_ignores_non_numbers_and_unfinished_runs(tmp_path):
    run = tmp_path / "runs" / "a"
    run.mkdir(parents=True)
    (run / "metrics.json").write_text(json.dumps({"x": 2.0, "flag": True, "name": "s", "v": [1, 2],
                                                  "status": "complete", "run": {}}))
    s = aggregate(tmp_path, [{"name": "a", "seed": 0, "group": "all", "status": "complete"},
                             {"name": "b", "seed": 1, "group": "all", "status": "failed"}])
    assert [(r["metric"], r["n"], r["mean"]) for r in s.rows] == [("x", 1, 2.0)]
    assert math.isnan(s.rows[0]["std"])


@pytest.mark.parametrize("call, match", [
    (lambda o: sweep("nope", o, "0"), "unknown study 'nope'"),
    (lambda o: _run(o, grid={"bogus": ["1"]}), "bogus"),
    (lambda o: _run(o, grid={"scale": ["1", "big"]}), "scale"),
    (lambda o: _run(o, grid={"scale": [-1.0]}), "scale"),
    (lambda o: _run(o, grid={"seed": ["1"]}), "--seeds"),
    (lambda o: _run(o, grid={"scale": ["1"]}, options={"scale": "2"}), "both swept"),
    (lambda o: _run(o, "3-1"), "empty"),
    (lambda o: _run(o, "a-b"), "--seeds"),
    (lambda o: _run(o, backend="slurm"), "--backend"),
    (lambda o: _run(o, retries=-1), "retries"),
    (lambda o: _run(o, address="127.0.0.1:1"), "--address is for --backend ray"),
])
def test_bad_input_is_refused_before_any_run(tmp_path, call, match):
    with pytest.raises((KeyError, SweepError, ValueError), match=match):
        call(tmp_path / "sw")
    assert not (tmp_path / "sw").exists()


def test_out_holding_another_sweep_or_a_study_run_is_refused(tmp_path):
    _run(tmp_path / "sw", "0", grid={"scale": ["1"]})
    with pytest.raises(SweepError, match="holds another sweep"):
        _run(tmp_path / "sw", "0", grid={"scale": ["2"]})
    with pytest.raises(SweepError, match="holds another sweep"):
        _run(tmp_path / "sw", "0", preset="quick", grid={"scale": ["1"]})
    from difflens.studies import run_study

    run_study("_demo", tmp_path / "single", verbose=False)
    with pytest.raises(SweepError, match="single study run"):
        _run(tmp_path / "single", "0")
    (tmp_path / "user").mkdir()
    (tmp_path / "user" / "notes.txt").write_text("mine")
    with pytest.raises(OutputFolderError, match="not written by difflens"):
        _run(tmp_path / "user", "0")


def test_parsers():
    assert parse_seeds("0-3,7,2") == [0, 1, 2, 3, 7]
    assert parse_seeds(range(3)) == [0, 1, 2] and parse_seeds(5) == [5]
    with pytest.raises(SweepError):
        parse_seeds([-1])
    assert parse_grid(["a=1,2", "b=x"]) == {"a": ["1", "2"], "b": ["x"]}
    with pytest.raises(SweepError, match="KEY=V1,V2"):
        parse_grid(["a"])


def _cli(args, **kw):
    code = (f"import sys; sys.path.insert(0, {HERE!r}); import studies_demo; from difflens.cli import main; "
            f"sys.exit(main({args!r}))")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, **kw)


def test_cli_interrupt_then_rerun_resumes_and_reruns_nothing_finished(tmp_path):
    out = tmp_path / "sw"
    args = ["sweep", "_train", "--seeds", "0-1", "--quick", "--set", "delay=0.03", "--set", "figures=0",
            "--jobs", "1", "--out", str(out), "--quiet"]
    proc = _cli(args)
    first = out / "runs" / "seed-0" / "metrics.json"
    deadline = time.time() + 40
    while time.time() < deadline:  # wait for seed 0 to finish and seed 1 to be under way
        try:
            if json.loads(first.read_text())["status"] == "complete" and \
                    (out / "runs" / "seed-1" / "metrics.json").is_file():
                break
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.1)
    time.sleep(0.8)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    second = json.loads((out / "runs" / "seed-1" / "metrics.json").read_text())
    assert second["status"] == "interrupted", second
    done = first.stat().st_mtime_ns
    proc = _cli(args)
    _, err = proc.communicate(timeout=90)
    assert proc.returncode == 0, err
    assert first.stat().st_mtime_ns == done  # not re-run
    summary = json.loads((out / "summary.json").read_text())
    assert [r["status"] for r in summary["runs"]] == ["complete"] * 2
    assert summary["runs"][0].get("skipped") and not summary["runs"][1].get("skipped")
    # the resumed run's numbers equal an uninterrupted run's
    from difflens.studies import run_study

    ref = run_study("_train", tmp_path / "ref", seed=1, preset="quick", verbose=False,
                    options={"delay": "0", "figures": "0"}).metrics
    resumed = json.loads((out / "runs" / "seed-1" / "metrics.json").read_text())
    for key in ("first.final_loss", "first.weights", "second.final_loss", "second.weights"):
        assert resumed[key] == ref[key], key


def test_cli_misuse_is_one_line_exit_2(tmp_path):
    proc = _cli(["sweep", "_demo", "--grid", "nope=1,2", "--out", str(tmp_path / "x")])
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and err.strip().count("\n") == 0 and "nope" in err
    proc = _cli(["sweep", "_demo", "--backend", "ray", "--address", "127.0.0.1:1", "--out", str(tmp_path / "x")])
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and err.strip().count("\n") == 0 and "127.0.0.1:1" in err, err
    assert not (tmp_path / "x").exists()


def test_ray_backend_without_ray_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(SweepError, match=r"pip install 'difflens\[ray\]'"):
        _run(tmp_path / "sw", backend="ray")
    assert not (tmp_path / "sw").exists()
