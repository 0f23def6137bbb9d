"""What a study receives: its settings, seed, device, and a report that is always consistent.

Figures, animations, tables and metrics go through the context, so every
study gets the same page layout and ``metrics.json``; a study never writes
HTML or files of its own. Every write is atomic and recorded in the output
folder's manifest (:mod:`difflens.studies.outdir`), and the page and
``metrics.json`` are rewritten after each section, so a run killed at any
moment leaves a viewable partial report whose ``status`` says it did not finish.
"""

from __future__ import annotations

import json
import math
import re
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch

from difflens.tools.rng import default_generator

from .outdir import OutputFolder
from .settings import StudySettings

__all__ = ["StudyContext", "ReportItem", "TIMING_KEY", "RESERVED_METRICS", "limit_threads"]

# metrics whose names match this are wall-clock timings: the only values allowed to differ between
# two runs at one seed
TIMING_KEY = re.compile(r"(seconds|_ms_|ms_per)")
RESERVED_METRICS = ("status", "run")


@dataclass
class ReportItem:
    """One block of a study's page: ``kind`` is figure, animation, table, text or heading."""

    kind: str
    payload: dict[str, Any]


class StudyContext:
    """Everything a study needs to run and report.

    Parameters
    ----------
    name : str
        The study's registry name.
    folder : OutputFolder
        Where the study writes (its manifest guards the user's files).
    settings : StudySettings
        The study's settings (a frozen dataclass; see :mod:`difflens.studies.settings`).
    seed : int
        Base seed; every draw uses :meth:`generator`.
    preset : str
        ``"quick"``, ``"default"`` or ``"full"``: which preset the settings started from.
    device : torch.device
        Where tensors go.
    verbose : bool
        Print progress lines and bars to stderr.
    resume : bool
        Continue an interrupted run: owners load their checkpoints from :meth:`checkpoint`.
    on_update : callable, optional
        ``fn(ctx)`` writing the page and ``metrics.json``; called after each section.
    """

    def __init__(self, name: str, folder: OutputFolder, settings: StudySettings, *, seed: int = 0,
                 preset: str = "default", device: torch.device | str = "cpu", verbose: bool = True,
                 resume: bool = False, on_update: Callable[["StudyContext"], None] | None = None) -> None:
        self.name = name
        self.folder = folder
        self.settings = settings
        self.seed = int(seed)
        self.preset = preset
        self.device = torch.device(device)
        self.verbose = verbose
        self.resume = resume
        self.metrics: dict[str, Any] = {}
        self.items: list[ReportItem] = []
        self.status = "running"
        self.phase_name: str | None = None
        self.stopped: dict[str, Any] = {}  # where an interrupted or failed run stopped
        self.started = time.perf_counter()
        self._on_update = on_update

    @property
    def out(self) -> Path:
        """The study's output folder."""
        return self.folder.path

    @property
    def quick(self) -> bool:
        return self.preset == "quick"

    @property
    def full(self) -> bool:
        return self.preset == "full"

    # -- randomness -----------------------------------------------------------
    def generator(self, offset: int = 0, device: torch.device | str | None = None) -> torch.Generator:
        """A fresh ``torch.Generator`` seeded with ``seed + offset`` (on ``device``, default CPU)."""
        return default_generator(device=device, seed=self.seed + int(offset))

    # -- progress and phases -------------------------------------------------------
    def log(self, message: str) -> None:
        """Print a timestamped line to stderr (when verbose)."""
        if self.verbose:
            elapsed = time.perf_counter() - self.started
            print(f"[{self.name} {elapsed:6.1f}s] {message}", file=sys.stderr, flush=True)

    @property
    def progress(self) -> bool:
        """Whether long steps should report progress (a bar on a terminal, lines in a log)."""
        return self.verbose

    def progress_label(self, label: str) -> str | bool:
        """``label`` when progress is on, else ``False`` (what owners' ``progress=`` takes)."""
        return label if self.verbose else False

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Mark a stretch of work: an interrupt inside it is reported as ``phase=name``."""
        outer, self.phase_name = self.phase_name, name
        self.log(name)
        yield  # on an exception phase_name stays: the runner reports where the run stopped
        self.phase_name = outer
        self.update()

    def checkpoint(self, name: str) -> Path:
        """The checkpoint file of the long phase ``name`` (engine owners' ``checkpoint_path``)."""
        return self.folder.path_for(f"checkpoints/{_slug(name)}.pt")

    def checkpoint_dir(self, name: str) -> Path:
        """A folder for the checkpoints of a multi-phase pipeline ``name`` (its ``checkpoint_dir``)."""
        path = self.folder.path_for(f"checkpoints/{_slug(name)}/")
        path.mkdir(parents=True, exist_ok=True)
        return path

    # -- report items ---------------------------------------------------------
    def heading(self, text: str) -> None:
        """Start a section; the report written so far is brought up to date first."""
        self.update()
        self.phase_name = text
        self.items.append(ReportItem("heading", {"text": text}))

    def text(self, text: str) -> None:
        """A paragraph of plain text (HTML-escaped in the report)."""
        self.items.append(ReportItem("text", {"text": text}))

    def figure(self, name: str, fig, caption: str = "", dpi: int = 100) -> Path:
        """Save a matplotlib figure as ``name.png`` atomically, close it and add it to the report."""
        import matplotlib.pyplot as plt

        try:
            path = self.folder.write(f"{_slug(name)}.png",
                                     lambda tmp: fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight"))
        finally:
            plt.close(fig)
        self.items.append(ReportItem("figure", {"path": path.name, "caption": caption}))
        self.update()
        return path

    def animation(self, name: str, anim, caption: str = "", fps: int = 10) -> Path:
        """Save a matplotlib animation (GIF, or MP4 when ffmpeg exists) atomically and add it."""
        from difflens.plot.animation import ffmpeg_available, save_animation

        suffix = ".mp4" if ffmpeg_available() else ".gif"
        path = save_animation(anim, self.folder.path_for(_slug(name) + suffix), fps=fps)
        self.items.append(ReportItem("animation", {"path": path.name, "caption": caption}))
        self.update()
        return path

    def table(self, rows: Sequence[Sequence[Any]], headers: Sequence[str], caption: str = "") -> None:
        """Add a table (``rows`` of cells under ``headers``) to the study's page."""
        self.items.append(
            ReportItem("table", {"rows": [list(r) for r in rows], "headers": list(headers), "caption": caption})
        )

    def metric(self, key: str, value: Any) -> None:
        """Record one value for ``metrics.json`` (tensors and NumPy values are converted)."""
        if key in RESERVED_METRICS:
            raise ValueError(f"metric name {key!r} is reserved for the run's own record")
        self.metrics[key] = _jsonable(value)

    def update_metrics(self, values: dict[str, Any]) -> None:
        """Record every ``key: value`` of ``values`` with :meth:`metric`."""
        for k, v in values.items():
            self.metric(k, v)

    # -- output ---------------------------------------------------------------
    def record(self) -> dict[str, Any]:
        """``metrics.json``'s content: the metrics, ``status`` and the run's description."""
        run = {"study": self.name, "seed": self.seed, "preset": self.preset, "device": str(self.device),
               "settings": self.settings.to_dict()}
        if self.stopped:
            run["stopped"] = dict(self.stopped)
        return {**self.metrics, "status": self.status, "run": run}

    def update(self) -> None:
        """Rewrite the page and ``metrics.json`` with what the study reported so far."""
        if self._on_update is not None:
            self._on_update(self)

    def write_metrics(self) -> Path:
        """Write :meth:`record` to ``metrics.json`` in the output folder; returns its path."""
        text = json.dumps(self.record(), indent=2, sort_keys=True, allow_nan=True)
        return self.folder.write_text("metrics.json", text)


@contextmanager
def limit_threads(n: int) -> Iterator[None]:
    """Run small-tensor loops on at most ``n`` intra-op threads (the previous count is restored after)."""
    old = torch.get_num_threads()
    torch.set_num_threads(max(1, min(n, old)))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _slug(name: str) -> str:
    keep = [c if c.isalnum() or c in "-_." else "_" for c in name.strip()]
    return "".join(keep) or "item"


def _jsonable(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        return value.item() if value.numel() == 1 else value.tolist()
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):  # NumPy scalars and arrays
        return value.tolist()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value
