import json

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from difflens import cli  # noqa: E402
from difflens.studies import get_study, list_studies, run_study, run_tour, study  # noqa: E402


@study("_demo", title="Demo study", order=999)
def _demo(ctx):
    g = ctx.generator()
    ctx.heading("numbers")
    x = torch.rand(3, generator=g)
    ctx.metric("first", x[0])
    ctx.metric("vector", x)
    ctx.metric("scale", ctx.option("scale", 1.0, float))
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    ctx.figure("line", fig, "a line")
    ctx.table([[1, 2.5]], ["a", "b"], "a table")
    if ctx.option("fail", False, bool):
        raise RuntimeError("asked to fail")


@study("_broken", title="Broken study", order=1000)
def _broken(ctx):
    ctx.metric("before_error", 1)
    raise RuntimeError("boom")


def test_registry_lists_and_rejects_unknown():
    assert "_demo" in [s.name for s in list_studies()]
    with pytest.raises(KeyError, match="known studies"):
        get_study("no-such-study")
    with pytest.raises(ValueError, match="already registered"):
        study("_demo", title="again")(lambda ctx: None)


def test_run_study_writes_page_metrics_and_figures(tmp_path):
    ctx = run_study("_demo", tmp_path, seed=3, verbose=False, options={"scale": "2.5"})
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    expected = torch.rand(3, generator=torch.Generator().manual_seed(3))
    assert metrics["first"] == pytest.approx(float(expected[0]))
    assert metrics["vector"] == pytest.approx(expected.tolist())
    assert metrics["scale"] == 2.5 and "seconds" in metrics
    page = (tmp_path / "index.html").read_text()
    assert "line.png" in page and "a table" in page and (tmp_path / "line.png").stat().st_size > 0
    assert ctx.seed == 3


def test_failing_study_still_writes_what_it_had(tmp_path):
    with pytest.raises(RuntimeError, match="boom"):
        run_study("_broken", tmp_path, verbose=False)
    assert json.loads((tmp_path / "metrics.json").read_text())["before_error"] == 1


def test_tour_reports_failures_and_writes_index(tmp_path):
    entries = run_tour(tmp_path, only=["_demo", "_broken"], verbose=False)
    status = {e["name"]: e["ok"] for e in entries}
    assert status == {"_demo": True, "_broken": False}
    index = (tmp_path / "index.html").read_text()
    assert "_demo/index.html" in index and "boom" in index


def test_cli_run_list_and_errors(tmp_path, capsys):
    assert cli.main(["run", "_demo", "--out", str(tmp_path / "d"), "--quiet", "--set", "scale=3"]) == 0
    assert json.loads((tmp_path / "d" / "metrics.json").read_text())["scale"] == 3.0
    assert cli.main(["list"]) == 0 and "_demo" in capsys.readouterr().out
    assert cli.main(["run", "nope"]) == 2
    assert "unknown study" in capsys.readouterr().err
    assert cli.main(["run", "_demo", "--set", "novalue"]) == 2
    with pytest.raises(SystemExit):
        cli.main(["run", "_demo", "--quick", "--full"])
