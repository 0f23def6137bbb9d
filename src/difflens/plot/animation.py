"""Write matplotlib animations to disk: MP4 when ffmpeg is available, GIF otherwise."""

from __future__ import annotations

import shutil
from pathlib import Path

from difflens.tools.io import atomic_write

__all__ = ["save_animation", "ffmpeg_available"]


def ffmpeg_available() -> bool:
    """Whether an ``ffmpeg`` executable is on the PATH."""
    return shutil.which("ffmpeg") is not None


def save_animation(anim, path: str | Path, fps: int = 10, fmt: str | None = None) -> Path:
    """Save ``anim`` (a ``matplotlib.animation.Animation``) and return the written path.

    ``fmt`` is ``"gif"``, ``"mp4"`` or ``None`` (MP4 if ffmpeg exists, else GIF;
    a suffix on ``path`` wins). GIFs are written with Pillow, so no external
    program is needed. The file is written atomically (an interrupted save leaves
    no partial file). The figure is closed afterwards.
    """
    import matplotlib.pyplot as plt
    from matplotlib.animation import FFMpegWriter, PillowWriter

    path = Path(path)
    if fmt is None:
        fmt = path.suffix.lstrip(".").lower() or ("mp4" if ffmpeg_available() else "gif")
    if fmt not in ("gif", "mp4"):
        raise ValueError(f"animation format must be 'gif' or 'mp4', got {fmt!r}")
    if fmt == "mp4" and not ffmpeg_available():
        raise RuntimeError("writing MP4 needs ffmpeg on the PATH; use fmt='gif' instead")
    path = path.with_suffix(f".{fmt}")
    writer = PillowWriter(fps=fps) if fmt == "gif" else FFMpegWriter(fps=fps)
    atomic_write(path, lambda tmp: anim.save(tmp, writer=writer), keep_suffix=True)
    fig = getattr(anim, "_fig", None)
    if fig is not None:
        plt.close(fig)
    return path
