"""The study runner and command line: reports, settings, output folders, misuse."""

import dataclasses
import json

import pytest
import torch

import studies_demo  # noqa: F401  (registers the demo studies)
from difflens import cli
from difflens.studies import get_study, list_studies, run_study, run_tour, study
from difflens.studies.outdir import MANIFEST, OutputFolderError
from difflens.studies.runner import RunError
from difflens.studies.settings import SettingsError


def test_registry_lists_and_rejects_unknown():
    assert "_demo" in [s.name for s in list_studies()]
    with pytest.raises(KeyError, match="known studies"):
        get_study("no-such-study")
    with pytest.raises(ValueError, match="already registered"):
        study("_demo", title="again", settings=studies_demo.DemoSettings)(lambda ctx: None)
    with pytest.raises(TypeError, match="StudySettings subclass"):
        study("_nosettings", title="x", settings=dict)


def test_run_study_writes_page_metrics_and_figures(tmp_path):
    ctx = run_study("_demo", tmp_path, seed=3, verbose=False, options={"scale": "2.5"})
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    expected = torch.rand(3, generator=torch.Generator().manual_seed(3))
    assert metrics["first"] == pytest.approx(float(expected[0]))
    assert metrics["vector"] == pytest.approx(expected.tolist())
    assert metrics["scale"] == 2.5 and "seconds" in metrics
    assert metrics["status"] == "complete"
    assert metrics["run"] == {"study": "_demo", "seed": 3, "preset": "default", "device": "cpu",
                              "settings": {"scale": 2.5, "fail": False}}
    page = (tmp_path / "index.html").read_text()
    assert "line.png" in page and "a table" in page and (tmp_path / "line.png").stat().st_size > 0
    assert ctx.seed == 3
    assert not list(tmp_path.glob(".*.tmp*"))


def test_presets_and_typed_settings():
    entry = get_study("_demo")
    assert entry.settings.preset("quick").scale == 0.5
    with pytest.raises(SettingsError, match="unknown preset"):
        entry.settings.preset("huge")
    with pytest.raises(SettingsError, match="valid settings: scale, fail"):
        entry.settings().with_strings({"sclae": "1"})
    with pytest.raises(SettingsError, match="not a valid number"):
        entry.settings().with_strings({"scale": "big"})
    with pytest.raises(SettingsError, match="below its minimum"):
        entry.settings().with_strings({"scale": "-1"})
    with pytest.raises(SettingsError, match="not a valid true/false"):
        entry.settings().with_strings({"fail": "maybe"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.settings().scale = 3.0


def test_every_real_study_has_checked_presets():
    for entry in list_studies():
        if entry.name.startswith("_"):
            continue
        for preset in ("quick", "default", "full"):
            s = entry.settings.preset(preset)
            assert entry.settings.from_dict(s.to_dict()) == s  # what --resume reads back
        assert entry.headline and entry.figure, entry.name
        text = entry.settings.describe()
        assert all(name in text for name in entry.settings.names())


def test_failing_study_still_writes_what_it_had(tmp_path):
    with pytest.raises(RuntimeError, match="boom"):
        run_study("_broken", tmp_path, verbose=False)
    record = json.loads((tmp_path / "metrics.json").read_text())
    assert record["before_error"] == 1 and record["status"] == "failed"
    assert "boom" in record["run"]["stopped"]["error"]
    assert "FAILED" in (tmp_path / "index.html").read_text()


def test_tour_landing_page_has_headlines_and_thumbnails(tmp_path):
    entries = run_tour(tmp_path, only=["_demo", "_broken"], verbose=False)
    assert {e["name"]: e["status"] for e in entries} == {"_demo": "complete", "_broken": "failed"}
    index = (tmp_path / "index.html").read_text()
    assert "_demo/index.html" in index and "boom" in index
    assert "<img src='_demo/line.png'" in index and "first draw" in index
    assert json.loads((tmp_path / "_demo" / "metrics.json").read_text())["scale"] == 0.5  # quick preset


def test_cli_run_list_and_one_line_errors(tmp_path, capsys):
    assert cli.main(["run", "_demo", "--out", str(tmp_path / "d"), "--quiet", "--set", "scale=3"]) == 0
    assert json.loads((tmp_path / "d" / "metrics.json").read_text())["scale"] == 3.0
    assert cli.main(["list"]) == 0 and "_demo" in capsys.readouterr().out
    bad = [(["run", "nope"], "unknown study"),
           (["run", "_demo", "--set", "novalue"], "KEY=VALUE"),
           (["run", "_demo", "--set", "foo=bar"], "unknown setting 'foo'; valid settings: scale, fail"),
           (["run", "_demo", "--set", "scale=abc"], "not a valid number"),
           (["run", "_demo", "--set", "scale=-2"], "below its minimum"),
           (["run", "_demo", "--device", "banana"], "not a torch device"),
           (["run", "_demo", "--device", "cuda:7"], "cuda"),
           (["run", "_demo", "--threads", "0"], "--threads"),
           (["run", "_demo", "--seed", "-1", "--out", str(tmp_path / "s")], "--seed"),
           (["run", "_demo", "--resume", "--out", str(tmp_path / "never")], "--resume")]
    for argv, message in bad:
        assert cli.main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1 and "Traceback" not in err, (argv, err)
    afile = tmp_path / "afile"
    afile.write_text("mine")
    for out in (afile, afile / "sub"):
        assert cli.main(["run", "_demo", "--out", str(out), "--quiet"]) == 2
        assert "is a file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["run", "_demo", "--quick", "--full"])


def test_run_help_lists_settings_with_defaults(capsys):
    assert cli.main(["run", "_demo", "--help"]) == 0
    out = capsys.readouterr().out
    assert "scale (number, >= 0): a scale [default 1, quick 0.5]" in out
    assert "--resume" in out


def test_out_refuses_a_users_folder_and_never_replaces_their_files(tmp_path, capsys):
    user = tmp_path / "mine"
    user.mkdir()
    files = {"index.html": b"<p>my page</p>", "metrics.json": b'{"mine": 1}', "notes.txt": b"keep"}
    for name, data in files.items():
        (user / name).write_bytes(data)
    assert cli.main(["run", "_demo", "--out", str(user), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "not written by difflens" in err and "--overwrite" in err
    # --overwrite writes beside the user's files but never over one of them
    assert cli.main(["run", "_demo", "--out", str(user), "--quiet", "--overwrite"]) == 2
    assert "was not written by difflens" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in user.iterdir() if p.name in files} == files
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_bytes(b"keep")
    assert cli.main(["run", "_demo", "--out", str(other), "--quiet", "--overwrite"]) == 0
    assert (other / "notes.txt").read_bytes() == b"keep" and (other / "index.html").is_file()
    # running again into difflens's own folder replaces its run, still not the user's file
    assert cli.main(["run", "_demo", "--out", str(other), "--quiet", "--set", "scale=4"]) == 0
    assert json.loads((other / "metrics.json").read_text())["scale"] == 4.0
    assert (other / "notes.txt").read_bytes() == b"keep"
    assert "notes.txt" not in json.loads((other / MANIFEST).read_text())["files"]


def test_output_folder_refusal_message_names_the_way_out(tmp_path):
    (tmp_path / "x.txt").write_text("x")
    with pytest.raises(OutputFolderError, match="add --overwrite"):
        run_study("_demo", tmp_path, verbose=False)
    with pytest.raises(RunError, match="drop --seed"):
        run_study("_demo", tmp_path, seed=2, resume=True, verbose=False)
