"""Files difflens writes: atomic writes and the one save-file format.

Every difflens save file (an optimisation checkpoint, a Metamer, a Gaussian
process, a trained emulator) is one ``torch.save`` archive of plain data
written atomically by :func:`save_file` and read back by :func:`load_file`
with ``weights_only=True``, so loading never runs pickled code. Each file
carries a ``format`` tag naming what it holds and a ``version``; a file of
another format, a newer version, or a truncated or corrupt file raises
:class:`CheckpointError` with a message naming the problem.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

__all__ = ["atomic_write", "atomic_write_text", "atomic_torch_save", "save_file", "load_file",
           "CheckpointError"]


class CheckpointError(ValueError):
    """A save file does not fit the object it is loaded into, or is not a readable difflens file."""


def atomic_write(path: str | os.PathLike, write: Callable[[str], None], keep_suffix: bool = False) -> Path:
    """Call ``write(tmp_path)`` then rename the temporary file onto ``path``.

    The temporary file (``.NAME.XXXX.tmp``, with ``path``'s suffix appended when
    ``keep_suffix`` is set, for writers that choose a format by extension)
    lives in the same folder, so the final ``os.replace`` is atomic on POSIX
    and Windows; on any error (Ctrl-C included) the temporary file is removed
    and the previous ``path`` (if any) is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = ".tmp" + (path.suffix if keep_suffix else "")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)

    return atomic_write(path, write)


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save(obj, path)`` atomically (no format tag: prefer :func:`save_file`)."""
    return atomic_write(path, lambda tmp: torch.save(obj, tmp))


def save_file(payload: Mapping[str, Any], path: str | os.PathLike, *, format: str, version: int) -> Path:
    """Write ``payload`` (plain data and tensors) with its ``format`` tag and ``version``, atomically.

    Parameters
    ----------
    payload : mapping
        What to save: tensors, numbers, strings, lists and dicts of them (what
        ``torch.load(weights_only=True)`` reads back). Keys ``format`` and
        ``version`` are reserved.
    path : path-like
        Destination; its folder is created.
    format : str
        What the file holds, e.g. ``"difflens.engine.Optimization"``.
    version : int
        The layout's version; :func:`load_file` refuses newer ones.
    """
    if "format" in payload or "version" in payload:
        raise ValueError("payload keys 'format' and 'version' are reserved for save_file")
    return atomic_torch_save({"format": format, "version": int(version), **payload}, path)


def load_file(path: str | os.PathLike, *, format: str | None = None, version: int | None = None,
              map_location: Any = None) -> dict[str, Any]:
    """Read a :func:`save_file` file (``weights_only=True``) and check its tag.

    Parameters
    ----------
    path : path-like
        The file.
    format : str, optional
        The expected format tag; a file with another tag raises :class:`CheckpointError`.
    version : int, optional
        The newest layout the caller reads; a file with a higher version raises.
    map_location : optional
        As for ``torch.load``.

    Returns
    -------
    dict
        The payload, ``format`` and ``version`` included.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    CheckpointError
        Truncated, corrupt, not a difflens save file, of another format, or too new.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no save file at {path}")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # truncated zip, pickle garbage, ...
        raise CheckpointError(f"{path} is not a readable difflens save file ({type(exc).__name__}: {exc})") from exc
    if not isinstance(data, dict) or "format" not in data:
        raise CheckpointError(f"{path} is not a difflens save file (no 'format' tag)")
    if format is not None and data["format"] != format:
        raise CheckpointError(f"{path} holds a {data['format']!r}, not a {format!r}")
    if version is not None and int(data.get("version", 0)) > version:
        raise CheckpointError(f"{path} has version {data['version']} of {data['format']!r}; this difflens "
                              f"reads up to version {version}")
    return data
