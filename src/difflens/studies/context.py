"""What a study receives: where to write, its seed and settings, and a report builder.

Figures, animations, tables and metrics go through the context so every study
gets the same report layout and ``metrics.json``; a study never writes HTML.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import torch

from difflens.tools.io import atomic_write_text

__all__ = ["StudyContext", "ReportItem"]


@dataclass
class ReportItem:
    """One block of a study's page: ``kind`` is figure, animation, table, text or heading."""

    kind: str
    payload: dict[str, Any]


@dataclass
class StudyContext:
    """Everything a study needs to run and report.

    Attributes
    ----------
    name: the study's registry name.
    out: the study's own output folder (created).
    seed: the seed given on the command line; use :meth:`generator` for draws.
    quick: quick settings (the tour); full: the seed document's full scale.
    device: where tensors go. verbose: whether to print progress.
    options: study-specific ``KEY=VALUE`` settings from ``difflens run STUDY --set KEY=VALUE``
    (read them with :meth:`option`).
    """

    name: str
    out: Path
    seed: int = 0
    quick: bool = False
    full: bool = False
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    verbose: bool = True
    options: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    items: list[ReportItem] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.device = torch.device(self.device)

    # -- randomness -----------------------------------------------------------
    def generator(self, offset: int = 0, device: torch.device | str | None = None) -> torch.Generator:
        """A fresh ``torch.Generator`` seeded with ``seed + offset`` (on ``device``, default CPU)."""
        g = torch.Generator(device=device or "cpu")
        g.manual_seed(int(self.seed) + int(offset))
        return g

    def option(self, key: str, default: Any = None, type: Any = str) -> Any:
        """The ``--set key=value`` option converted by ``type``, or ``default`` when absent."""
        if key not in self.options:
            return default
        try:
            return type(self.options[key])
        except (TypeError, ValueError):
            raise ValueError(f"option {key}={self.options[key]!r} is not a valid {type.__name__}") from None

    # -- progress -------------------------------------------------------------
    def log(self, message: str) -> None:
        """Print a timestamped line to stderr (when verbose)."""
        if self.verbose:
            elapsed = time.perf_counter() - self.started
            print(f"[{self.name} {elapsed:6.1f}s] {message}", file=sys.stderr, flush=True)

    @property
    def progress(self) -> bool:
        """Whether long steps should draw a progress bar."""
        return self.verbose

    # -- report items ---------------------------------------------------------
    def heading(self, text: str) -> None:
        self.items.append(ReportItem("heading", {"text": text}))

    def text(self, text: str) -> None:
        """A paragraph of plain text (HTML-escaped in the report)."""
        self.items.append(ReportItem("text", {"text": text}))

    def figure(self, name: str, fig, caption: str = "", dpi: int = 100) -> Path:
        """Save a matplotlib figure as ``name.png``, close it and add it to the report."""
        import matplotlib.pyplot as plt

        path = self.out / f"{_slug(name)}.png"
        fig.savefig(path, dpi=dpi, bbox_inches="tight")
        plt.close(fig)
        self.items.append(ReportItem("figure", {"path": path.name, "caption": caption}))
        return path

    def animation(self, name: str, anim, caption: str = "", fps: int = 10) -> Path:
        """Save a matplotlib animation (GIF, or MP4 when ffmpeg exists) and add it to the report."""
        from difflens.plot.animation import save_animation

        path = save_animation(anim, self.out / _slug(name), fps=fps)
        self.items.append(ReportItem("animation", {"path": path.name, "caption": caption}))
        return path

    def table(self, rows: Sequence[Sequence[Any]], headers: Sequence[str], caption: str = "") -> None:
        self.items.append(
            ReportItem("table", {"rows": [list(r) for r in rows], "headers": list(headers), "caption": caption})
        )

    def metric(self, key: str, value: Any) -> None:
        """Record one value for ``metrics.json`` (tensors and NumPy values are converted)."""
        self.metrics[key] = _jsonable(value)

    def update_metrics(self, values: dict[str, Any]) -> None:
        for k, v in values.items():
            self.metric(k, v)

    # -- output ---------------------------------------------------------------
    def write_metrics(self) -> Path:
        path = self.out / "metrics.json"
        atomic_write_text(path, json.dumps(self.metrics, indent=2, sort_keys=True, allow_nan=True))
        return path


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


def iter_items(items: Iterable[ReportItem], kind: str) -> list[ReportItem]:
    return [i for i in items if i.kind == kind]
