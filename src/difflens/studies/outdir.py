"""Output folders that never lose a user's file.

difflens records every file it writes into a folder in that folder's
manifest, ``.difflens-files.json``. The rules:

- a missing or empty folder is used as it is;
- a folder holding an earlier difflens run (it has a manifest) is continued
  with ``resume=True``, else replaced: the files the manifest lists are
  removed first, and nothing else in the folder is touched;
- a non-empty folder difflens did not write is refused unless
  ``overwrite=True``, and even then no file difflens did not write is ever
  replaced: :meth:`OutputFolder.path_for` refuses such a name.

Temporary files left by a killed write (``.NAME.*.tmp``) are removed when the
folder is opened.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from difflens.tools.io import atomic_write, atomic_write_text

__all__ = ["OutputFolder", "OutputFolderError", "MANIFEST"]

MANIFEST = ".difflens-files.json"


class OutputFolderError(ValueError):
    """The output folder cannot be used as asked; the message says how to proceed."""


class OutputFolder:
    """A folder difflens writes into, with its manifest of difflens-written files.

    Parameters
    ----------
    path : path-like
        The folder (created when missing).
    resume : bool
        Continue an earlier difflens run in this folder (else an earlier run is replaced).
    overwrite : bool
        Write into a non-empty folder of other files (never replacing them).
    """

    def __init__(self, path: str | os.PathLike, *, resume: bool = False, overwrite: bool = False) -> None:
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise OutputFolderError(f"--out {self.path} is a file, not a folder")
        self.files: set[str] = set()
        manifest = self.path / MANIFEST
        entries = sorted(p.name for p in self.path.iterdir()) if self.path.is_dir() else []
        if manifest.is_file():
            self.files = set(_read_manifest(manifest))
            if not resume:
                self._remove_listed()
        elif entries and not overwrite:
            raise OutputFolderError(
                f"{self.path} is not empty and was not written by difflens ({len(entries)} entries, e.g. "
                f"{entries[0]!r}); choose another --out, or add --overwrite to write beside those files "
                "(difflens never replaces a file it did not write)")
        elif resume:
            raise OutputFolderError(f"--resume: {self.path} holds no difflens run to continue")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self._save_manifest()
        except PermissionError:
            raise OutputFolderError(f"--out {self.path} is not writable") from None
        for tmp in self.path.glob(".*.tmp*"):
            tmp.unlink(missing_ok=True)

    def owns(self, name: str) -> bool:
        """Whether difflens wrote ``name`` (a path relative to the folder)."""
        return name in self.files

    def path_for(self, name: str) -> Path:
        """The path to write ``name`` to, recorded as difflens's; refuses a user's existing file.

        A ``name`` ending in ``/`` is a folder that holds only difflens's files (checkpoints).
        """
        target = self.path / name
        if target.exists() and name not in self.files:
            raise OutputFolderError(f"{target} exists and was not written by difflens; it is left alone "
                                    "(move it or choose another --out)")
        if name not in self.files:
            self.files.add(name)
            self._save_manifest()
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def write_text(self, name: str, text: str) -> Path:
        """Write ``text`` to ``name`` atomically."""
        return atomic_write_text(self.path_for(name), text)

    def write(self, name: str, write) -> Path:
        """Write ``name`` atomically through ``write(tmp_path)``."""
        return atomic_write(self.path_for(name), write)

    def _remove_listed(self) -> None:
        for name in sorted(self.files, key=lambda n: -n.rstrip("/").count("/")):
            p = self.path / name
            if name.endswith("/") and p.is_dir():  # a folder difflens made for its own files
                shutil.rmtree(p)
            elif p.is_file():
                p.unlink()
        for parent in sorted({(self.path / n).parent for n in self.files}, key=lambda q: -len(q.parts)):
            if parent != self.path and parent.is_dir() and not any(parent.iterdir()):
                parent.rmdir()
        self.files = set()

    def _save_manifest(self) -> None:
        atomic_write_text(self.path / MANIFEST, json.dumps({"written_by": "difflens", "files": sorted(self.files)},
                                                           indent=1))


def _read_manifest(path: Path) -> list[str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        files = data["files"]
    except (ValueError, KeyError, TypeError):
        raise OutputFolderError(f"{path} is not a difflens manifest; the folder's files are left alone") from None
    if not isinstance(files, list) or not all(isinstance(f, str) and ".." not in Path(f).parts for f in files):
        raise OutputFolderError(f"{path} is not a difflens manifest; the folder's files are left alone")
    return files
