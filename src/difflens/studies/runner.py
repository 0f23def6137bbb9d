"""Run one study or the whole tour and write their reports."""

from __future__ import annotations

import sys
import time
import traceback
from pathlib import Path

import torch

from .context import StudyContext
from .registry import get_study, list_studies
from .report import write_index, write_study_page

__all__ = ["run_study", "run_tour"]


def run_study(
    name: str,
    out: str | Path,
    seed: int = 0,
    quick: bool = False,
    full: bool = False,
    device: str | torch.device = "cpu",
    verbose: bool = True,
    options: dict[str, str] | None = None,
) -> StudyContext:
    """Run the study ``name`` into ``out`` and write ``index.html`` and ``metrics.json``.

    Whatever the study reported before an error or Ctrl-C is still written.
    """
    if quick and full:
        raise ValueError("choose at most one of quick and full")
    entry = get_study(name)
    ctx = StudyContext(name=name, out=Path(out), seed=seed, quick=quick, full=full,
                       device=torch.device(device), verbose=verbose, options=dict(options or {}))
    start = time.perf_counter()
    try:
        entry.run(ctx)
    finally:
        seconds = time.perf_counter() - start
        ctx.metrics.setdefault("seconds", round(seconds, 3))
        ctx.write_metrics()
        write_study_page(ctx, entry.title, entry.description, seconds)
    return ctx


def run_tour(out: str | Path = "difflens-report", seed: int = 0, device: str = "cpu",
             verbose: bool = True, only: list[str] | None = None) -> list[dict]:
    """Run every registered study at quick settings into ``out/NAME`` and write ``out/index.html``.

    A failing study is reported in the index and the tour goes on; Ctrl-C stops
    the tour but still writes the index of what finished.
    """
    out = Path(out)
    entries: list[dict] = []
    try:
        for entry in list_studies():
            if only and entry.name not in only:
                continue
            start = time.perf_counter()
            record = {"name": entry.name, "title": entry.title, "ok": True, "error": ""}
            try:
                run_study(entry.name, out / entry.name, seed=seed, quick=True, device=device, verbose=verbose)
            except KeyboardInterrupt:
                record.update(ok=False, error="interrupted")
                entries.append({**record, "seconds": time.perf_counter() - start})
                raise
            except Exception as exc:  # the tour goes on; the error is in the index
                traceback.print_exc(file=sys.stderr)
                record.update(ok=False, error=f"{type(exc).__name__}: {exc}")
            entries.append({**record, "seconds": time.perf_counter() - start})
    finally:
        write_index(out, entries)
    return entries
