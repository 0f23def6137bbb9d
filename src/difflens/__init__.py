"""difflens: differentiable models and the optimisations that run through them.

Subpackages load on first use (``difflens.synthesize``, ``difflens.dynamics``,
...), so ``import difflens`` stays cheap. plenoptic's top-level names work
too, so its tutorials run with ``import difflens as po``: ``difflens.synth``
(= ``synthesize``), ``difflens.simul`` (= ``simulate``), ``difflens.imshow``,
``difflens.animshow``, ``difflens.to_numpy`` and ``difflens.load_images``.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

__version__ = "0.1.0"

_SUBPACKAGES = ("engine", "synthesize", "simulate", "dynamics", "gp", "draw", "data", "plot",
                "studies", "tools", "cli")
_ALIASES = {"synth": "synthesize", "simul": "simulate"}  # plenoptic's short names
_SHORTCUTS = {"imshow": ("difflens.plot", "imshow"), "animshow": ("difflens.plot", "animshow"),
              "to_numpy": ("difflens.tools.signal", "to_numpy")}

__all__ = [*_SUBPACKAGES, *_ALIASES, *_SHORTCUTS, "load_images"]


def load_images(paths: str | os.PathLike | Iterable[str | os.PathLike], as_gray: bool = True,
                sorted_key: Callable[[Path], Any] | None = None) -> Any:
    """Image files as one ``(N, C, H, W)`` float32 tensor in [0, 1] (plenoptic's ``po.load_images``).

    Parameters
    ----------
    paths : path-like or iterable of path-likes
        One image file, a folder (its image files, sorted by name, or by
        ``sorted_key``; other files are skipped), or a list of files.
    as_gray : bool
        One gray channel (default); ``False`` gives three.
    sorted_key : callable, optional
        Key ``Path -> sortable`` ordering a folder's files; only with a folder.

    Returns
    -------
    Tensor
        ``(N, 1 or 3, H, W)`` float32. See :func:`difflens.data.load_images`.

    Raises
    ------
    ValueError
        ``sorted_key`` given with a file or a list of files; unreadable or unequal images.
    FileNotFoundError
        A named file does not exist.
    """
    from difflens.data import images

    if sorted_key is not None:
        if isinstance(paths, (str, os.PathLike)) and Path(paths).is_dir():
            folder = Path(paths)
            paths = sorted((p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
                            and p.suffix.lower() in images.IMAGE_SUFFIXES), key=sorted_key)
            if not paths:
                raise ValueError(f"folder {folder} contains no image files")
        else:
            raise ValueError("sorted_key only goes with a folder; a file or a list of files keeps its order")
    return images.load_images(paths, as_gray=as_gray)


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES or name in _ALIASES:
        module = importlib.import_module(f"difflens.{_ALIASES.get(name, name)}")
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
