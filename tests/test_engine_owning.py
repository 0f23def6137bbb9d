"""The engine's owner-facing surface: configure, resumable runs, elapsed time, signals, progress lines."""

import io
import os
import signal
import subprocess
import sys

import pytest
import torch

from difflens.engine import Interrupted, LossChange, Optimization, raise_on_signals
from difflens.engine.progress import LineProgress, make_progress
from difflens.tools.io import CheckpointError, load_file, save_file
from difflens.tools.rng import default_generator

TARGET = torch.tensor([1.0, -2.0, 3.0, 0.5], dtype=torch.float64)


def quadratic(**kw):
    x = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    return x, Optimization([x], lambda: ((x - TARGET) ** 2).sum(), **kw)


def test_configure_changes_only_what_is_given_and_validates():
    x, opt = quadratic(stop_rules=[LossChange(1e-3)], check_every=2)
    opt.configure(progress="fit")
    assert opt.progress == "fit" and len(opt.stop_rules) == 1 and opt.check_every == 2
    opt.configure(stop_rules=[], snapshot_every=5)
    opt.run(10)
    assert opt.stop_rules == [] and opt.history.snapshot_iterations == [0, 5, 10]
    with pytest.raises(ValueError, match="snapshot_every cannot change"):
        opt.configure(snapshot_every=3)
    with pytest.raises(TypeError, match="StopRule"):
        opt.configure(stop_rules=[object()])
    with pytest.raises(ValueError, match="check_every"):
        opt.configure(check_every=0)


def test_run_resume_finishes_the_recorded_run_exactly(tmp_path):
    path = tmp_path / "ck.pt"

    def stop_at_7(o):
        if o.iteration == 7:
            os.kill(os.getpid(), signal.SIGINT)

    x, opt = quadratic(optimizer=lambda p: torch.optim.Adam(p, lr=0.1), callbacks=[stop_at_7], checkpoint_path=path)
    opt.run(30)
    assert opt.stop_reason == "interrupted" and opt.iteration == 7 and not opt.finished
    y, again = quadratic(optimizer=lambda p: torch.optim.Adam(p, lr=0.1), checkpoint_path=path)
    again.run(30, resume=True)  # runs the 23 that were left, not 30 more
    z, whole = quadratic(optimizer=lambda p: torch.optim.Adam(p, lr=0.1))
    whole.run(30)
    assert again.iteration == 30 and torch.equal(y, z) and torch.equal(again.history.loss, whole.history.loss)
    assert again.finished
    w, done = quadratic(optimizer=lambda p: torch.optim.Adam(p, lr=0.1), checkpoint_path=path)
    done.run(30, resume=True)  # a finished run is loaded, not run again
    assert done.iteration == 30 and torch.equal(w, z)
    with pytest.raises(ValueError, match="checkpoint_path"):
        quadratic()[1].run(3, resume=True)


def test_elapsed_seconds_accumulate_in_history_and_survive_save(tmp_path):
    x, opt = quadratic()
    opt.run(5)
    first = opt.history.seconds
    assert first > 0
    opt.run(5)
    assert opt.history.seconds > first
    opt.save(tmp_path / "a.pt")
    y, again = quadratic()
    again.load(tmp_path / "a.pt")
    assert again.history.seconds == opt.history.seconds


def test_loss_without_a_graph_is_named():
    x = torch.zeros(3, requires_grad=True)
    opt = Optimization([x], lambda: torch.tensor(1.0))
    with pytest.raises(ValueError, match="does not depend on the parameters"):
        opt.run(1)
    opt = Optimization([x], lambda: (x.detach() ** 2).sum())
    with pytest.raises(ValueError, match="no autograd graph"):
        opt.run(1)


def test_signal_inside_raise_on_signals_stops_after_the_step_with_where(tmp_path):
    def term_at_4(o):
        if o.iteration == 4:
            os.kill(os.getpid(), signal.SIGTERM)

    path = tmp_path / "ck.pt"
    x, opt = quadratic(callbacks=[term_at_4], checkpoint_path=path, progress="demo fit")
    with raise_on_signals(), pytest.raises(Interrupted) as info:
        opt.run(20)
        pytest.fail("the run must not return")
    exc = info.value
    assert exc.signal_name == "SIGTERM" and (exc.iteration, exc.max_iter) == (4, 20)
    assert exc.description == "demo fit"
    assert load_file(path)["iteration"] == 4  # the checkpoint was written before the exception left
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_sigterm_outside_a_study_saves_then_terminates_as_usual(tmp_path):
    path = tmp_path / "ck.pt"
    code = f"""
import os, signal, torch
from difflens.engine import Optimization
x = torch.zeros(2, requires_grad=True)
def cb(o):
    if o.iteration == 3:
        os.kill(os.getpid(), signal.SIGTERM)
opt = Optimization([x], lambda: (x - 1).pow(2).sum(), callbacks=[cb], checkpoint_path={str(path)!r})
opt.run(50)
print("went on after SIGTERM")
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGTERM and "went on" not in proc.stdout
    assert load_file(path)["iteration"] == 3


def test_progress_in_a_log_is_a_line_every_tenth_not_carriage_returns():
    stream = io.StringIO()
    bar = make_progress("fit", "x", 0, 200, stream=stream)
    assert isinstance(bar, LineProgress)
    for i in range(1, 201):
        bar.update(i, 1.0 / i)
    bar.close()
    text = stream.getvalue()
    assert "\r" not in text and len(text.splitlines()) == 10
    assert text.splitlines()[-1].startswith("fit: 200/200 (100%)")
    assert make_progress(False, "x", 0, 10) is None


def test_save_file_tags_and_refuses_other_formats(tmp_path):
    p = save_file({"a": torch.ones(2)}, tmp_path / "f.pt", format="demo", version=2)
    assert load_file(p, format="demo", version=2)["a"].sum() == 2
    with pytest.raises(CheckpointError, match="not a 'other'"):
        load_file(p, format="other")
    with pytest.raises(CheckpointError, match="reads up to version 1"):
        load_file(p, format="demo", version=1)
    (tmp_path / "bad.pt").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="not a readable"):
        load_file(tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="reserved"):
        save_file({"format": 1}, tmp_path / "g.pt", format="x", version=1)


def test_default_generator_is_fresh_seeded_and_passes_given_ones_through():
    g = torch.Generator().manual_seed(5)
    assert default_generator(g) is g
    a = torch.rand(3, generator=default_generator())
    torch.rand(10)  # the global generator does not matter
    assert torch.equal(a, torch.rand(3, generator=default_generator()))
    with pytest.raises(TypeError, match="torch.Generator"):
        default_generator(3)
