"""Run one study or the whole tour; a run either finishes or says where it stopped.

A study runs with SIGINT and SIGTERM turned into
:class:`~difflens.engine.Interrupted` (:func:`~difflens.engine.raise_on_signals`):
an optimisation in progress finishes its step and writes its checkpoint,
then the study ends at once. Its page and ``metrics.json`` then say
``"status": "interrupted"`` and where (phase, step of steps), and
``run_study(..., resume=True)`` (``difflens run STUDY --resume``) continues
it to the numbers an uninterrupted run gives.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Mapping

import torch

from difflens.engine import Interrupted, raise_on_signals

from .context import StudyContext
from .outdir import OutputFolder, OutputFolderError
from .registry import Study, get_study, list_studies
from .report import write_index, write_study_page
from .settings import PRESET_NAMES, SettingsError, StudySettings

__all__ = ["run_study", "run_tour", "resolve_device", "make_settings", "RunError"]


class RunError(ValueError):
    """A run cannot start as asked (device, settings, output folder); the message says why."""


def resolve_device(device: str | torch.device) -> torch.device:
    """``device`` as a ``torch.device`` that exists on this machine; :class:`RunError` otherwise."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise RunError(f"--device {device!r} is not a torch device (e.g. cpu, cuda, cuda:1, mps)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise RunError(f"--device {device}: CUDA is not available on this machine")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise RunError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise RunError(f"--device {device}: MPS is not available on this machine")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise RunError(f"--device {device}: difflens studies run on cpu, cuda or mps")
    return dev


def make_settings(entry: Study, preset: str = "default", options: Mapping[str, str] | None = None,
                  settings: StudySettings | Mapping[str, Any] | None = None) -> StudySettings:
    """The study's settings: a preset, then typed ``settings`` changes, then ``--set`` strings."""
    if preset not in PRESET_NAMES:
        raise SettingsError(f"unknown preset {preset!r}; presets: {', '.join(PRESET_NAMES)}")
    if isinstance(settings, StudySettings):
        if not isinstance(settings, entry.settings):
            raise SettingsError(f"study {entry.name} takes {entry.settings.__name__}, got {type(settings).__name__}")
        base = settings
    else:
        base = entry.settings.preset(preset).replace(**dict(settings or {}))
    return base.with_strings(dict(options or {}))


def _previous_run(out: Path) -> dict[str, Any]:
    try:
        record = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
        return record["run"]
    except (OSError, ValueError, KeyError, TypeError):
        raise RunError(f"--resume: {out} has no readable metrics.json of an earlier run to continue") from None


def run_study(
    name: str,
    out: str | Path,
    seed: int | None = None,
    preset: str | None = None,
    device: str | torch.device = "cpu",
    verbose: bool = True,
    options: Mapping[str, str] | None = None,
    settings: StudySettings | Mapping[str, Any] | None = None,
    resume: bool = False,
    overwrite: bool = False,
) -> StudyContext:
    """Run the study ``name`` into ``out``: ``index.html``, ``metrics.json``, figures, checkpoints.

    Parameters
    ----------
    name : str
        A registered study (``difflens list``).
    out : path-like
        Its output folder (see :class:`~difflens.studies.outdir.OutputFolder` for what may be there).
    seed : int, optional
        Base seed (>= 0). Default 0.
    preset : str, optional
        ``"quick"``, ``"default"`` (the default) or ``"full"``.
    device : str or torch.device
        Where the study computes.
    verbose : bool
        Progress on stderr.
    options : mapping of str to str, optional
        ``--set KEY=VALUE`` strings, parsed and checked against the study's settings.
    settings : StudySettings or mapping, optional
        Typed settings (an instance, or changes to the preset).
    resume : bool
        Continue the interrupted run in ``out`` with its recorded seed, preset and
        settings (none of those may be given); finished phases are loaded from
        their checkpoints.
    overwrite : bool
        Write into a non-empty folder difflens did not write (never over its files). An
        earlier difflens run in ``out`` is replaced without it, unless ``resume``.

    Raises
    ------
    RunError, SettingsError, OutputFolderError
        Before anything runs, when the run cannot start as asked.
    Interrupted
        After SIGINT/SIGTERM; the folder says ``"status": "interrupted"``.
    """
    entry = get_study(name)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise RunError(f"--seed must be an integer >= 0, got {seed!r}")
    dev = resolve_device(device)
    out = Path(out)
    if resume:
        if options or settings or seed is not None or preset is not None:
            raise RunError("--resume continues a run with its recorded seed and settings; "
                           "drop --seed, --quick/--full and --set")
        previous = _previous_run(out)
        if previous.get("study") != name:
            raise RunError(f"--resume: {out} holds a run of study {previous.get('study')!r}, not {name!r}")
        seed, preset = int(previous["seed"]), previous["preset"]
        chosen = entry.settings.from_dict(previous["settings"])
    else:
        seed, preset = seed or 0, preset or "default"
        chosen = make_settings(entry, preset, options, settings)
    folder = OutputFolder(out, resume=resume, overwrite=overwrite)
    start = time.perf_counter()

    def update(c: StudyContext) -> None:
        c.write_metrics()
        write_study_page(c, entry, time.perf_counter() - start)

    ctx = StudyContext(name, folder, chosen, seed=seed, preset=preset, device=dev, verbose=verbose,
                       resume=resume, on_update=update)
    ctx.update()
    try:
        with raise_on_signals():
            entry.run(ctx)
    except Interrupted as exc:
        ctx.status = "interrupted"
        ctx.stopped = {"signal": exc.signal_name, "phase": ctx.phase_name, "step": exc.iteration,
                       "steps": exc.max_iter, "optimisation": exc.description}
        raise
    except BaseException as exc:
        ctx.status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        ctx.stopped = {"phase": ctx.phase_name, "error": f"{type(exc).__name__}: {exc}"}
        raise
    else:
        ctx.status = "complete"
    finally:
        ctx.metrics["seconds"] = round(time.perf_counter() - start, 3)
        ctx.update()
    return ctx


def run_tour(out: str | Path = "difflens-report", seed: int = 0, device: str = "cpu",
             verbose: bool = True, only: list[str] | None = None, overwrite: bool = False,
             resume: bool = False) -> list[dict]:
    """Run every registered study at quick settings into ``out/NAME`` and write ``out/index.html``.

    A failing study is reported in the index and the tour goes on; an
    interrupt stops the tour (re-raised) after the index says so. With
    ``resume``, studies whose folder holds an earlier run continue it; the
    others run afresh.
    """
    dev = resolve_device(device)
    root = OutputFolder(out, resume=resume, overwrite=overwrite)
    entries: list[dict] = []
    chosen = [e for e in list_studies() if not only or e.name in only]
    try:
        for entry in chosen:
            start = time.perf_counter()
            record = {"name": entry.name, "title": entry.title, "status": "running", "error": "",
                      "headline": entry.headline, "figure": entry.figure}
            sub = Path(out) / entry.name
            again = resume and (sub / "metrics.json").is_file()
            try:
                run_study(entry.name, sub, seed=None if again else seed, preset=None if again else "quick",
                          device=dev, verbose=verbose, resume=again, overwrite=overwrite)
                record["status"] = "complete"
            except KeyboardInterrupt:
                record.update(status="interrupted", error="interrupted")
                entries.append({**record, "seconds": time.perf_counter() - start})
                raise
            except OutputFolderError:
                raise
            except Exception as exc:  # the tour goes on; the error is in the index
                traceback.print_exc(file=sys.stderr)
                record.update(status="failed", error=f"{type(exc).__name__}: {exc}")
            entries.append({**record, "seconds": time.perf_counter() - start})
            write_index(root, entries, pending=[e.name for e in chosen[len(entries):]])
    finally:
        write_index(root, entries, pending=[e.name for e in chosen[len(entries):]])
    return entries
