"""The registry of runnable studies.

A study is a function ``fn(ctx: StudyContext) -> None`` registered under a
short name with its settings class (a frozen :class:`StudySettings` dataclass
with quick / default / full presets), the headline metrics a reader comes for
and its main figure (both shown on the tour's landing page). Every module in
:mod:`difflens.studies` is imported on first use of the registry, so adding a
study is adding one file with a ``@study(...)`` decorated function; nothing
else needs editing.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from .settings import StudySettings

if TYPE_CHECKING:  # pragma: no cover
    from .context import StudyContext

__all__ = ["Study", "study", "get_study", "list_studies"]


@dataclass(frozen=True)
class Study:
    """A registered study.

    Attributes
    ----------
    name, title, description : str
        Registry name, one-line title, a paragraph for its page.
    run : callable
        ``run(ctx)``.
    settings : type
        Its :class:`StudySettings` subclass.
    headline : tuple of (metric key, label)
        The few metrics the landing page shows.
    figure : str or None
        Name of the main figure (its thumbnail on the landing page).
    order : int
        Position in the tour.
    """

    name: str
    title: str
    description: str
    run: Callable[["StudyContext"], None]
    settings: type[StudySettings]
    headline: tuple[tuple[str, str], ...] = ()
    figure: str | None = None
    order: int = 100


_REGISTRY: dict[str, Study] = {}
_DISCOVERED = False


def study(name: str, title: str, settings: type[StudySettings], description: str = "",
          headline: tuple[tuple[str, str], ...] = (), figure: str | None = None, order: int = 100):
    """Register ``fn(ctx)`` as the study ``name`` (``order`` sorts the tour)."""
    if not (isinstance(settings, type) and issubclass(settings, StudySettings)):
        raise TypeError(f"study {name!r}: settings must be a StudySettings subclass, got {settings!r}")

    def decorate(fn: Callable[["StudyContext"], None]):
        if name in _REGISTRY and _REGISTRY[name].run is not fn:
            raise ValueError(f"a study named {name!r} is already registered")
        _REGISTRY[name] = Study(name, title, description or (fn.__doc__ or "").strip(), fn, settings,
                                tuple(headline), figure, order)
        return fn

    return decorate


def _discover() -> None:
    global _DISCOVERED
    if _DISCOVERED:
        return
    from difflens import studies as package

    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("_") or info.name in {"registry", "context", "report", "runner", "settings",
                                                      "outdir", "sweep"}:
            continue
        importlib.import_module(f"{package.__name__}.{info.name}")
    _DISCOVERED = True


def list_studies() -> list[Study]:
    """All registered studies in tour order."""
    _discover()
    return sorted(_REGISTRY.values(), key=lambda s: (s.order, s.name))


def get_study(name: str) -> Study:
    """The study called ``name``; a ``KeyError`` listing the known names otherwise."""
    _discover()
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(s.name for s in list_studies()) or "(none)"
        raise KeyError(f"unknown study {name!r}; known studies: {known}") from None
