"""difflens: differentiable models and the optimisations that run through them.

Subpackages load on first use (``difflens.synthesize``, ``difflens.dynamics``,
...), so ``import difflens`` stays cheap. plenoptic's top-level names work
too, so its tutorials run with ``import difflens as po``: ``difflens.synth``
(= ``synthesize``), ``difflens.simul`` (= ``simulate``), ``difflens.imshow``,
``difflens.animshow``, ``difflens.to_numpy`` and ``difflens.load_images``.
``difflens.sweep`` runs a study over seeds and settings (:mod:`difflens.studies.sweep`).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_SUBPACKAGES = ("engine", "synthesize", "simulate", "metric", "dynamics", "gp", "draw", "data", "plot",
                "studies", "tools", "cli")
_SHORTCUTS = {"imshow": ("difflens.plot", "imshow"), "animshow": ("difflens.plot", "animshow"),
              "pyrshow": ("difflens.plot", "pyrshow"),
              "to_numpy": ("difflens.tools.signal", "to_numpy"),
              "load_images": ("difflens.data.images", "load_images"),
              "sweep": ("difflens.studies.sweep", "sweep"),
              # plenoptic's short names (difflens.plenoptic_names joins each method with its plots)
              "synth": ("difflens.plenoptic_names", "synth"), "simul": ("difflens.plenoptic_names", "simul")}

__all__ = [*_SUBPACKAGES, *_SHORTCUTS]


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        module = importlib.import_module(f"difflens.{name}")
        globals()[name] = module
        return module
    if name in _SHORTCUTS:
        module_name, attr = _SHORTCUTS[name]
        value = getattr(importlib.import_module(module_name), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'difflens' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
