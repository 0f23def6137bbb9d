"""Progress of a long run: a bar on a terminal, a line every few percent in a log.

A tqdm bar's carriage returns turn a log file into one enormous line; when
stderr is not a terminal, :func:`make_progress` prints a plain line instead
each time another ``every`` fraction of the run is done.
"""

from __future__ import annotations

import sys
import time
from typing import IO, Any

__all__ = ["make_progress", "LineProgress", "BarProgress"]


class BarProgress:
    """A tqdm bar over iterations ``start..target``."""

    def __init__(self, desc: str, start: int, target: int, stream: IO[str], value_name: str = "loss") -> None:
        from tqdm.auto import tqdm

        self.value_name = value_name
        self._bar = tqdm(total=target, initial=start, desc=desc, leave=False, dynamic_ncols=True, file=stream)

    def update(self, iteration: int, loss: float) -> None:
        self._bar.update(iteration - self._bar.n)
        self._bar.set_postfix({self.value_name: f"{loss:.4g}"}, refresh=False)

    def close(self) -> None:
        self._bar.close()


class LineProgress:
    """One ``desc: i/n (p%) loss=… elapsed`` line each time another ``every`` of the run is done."""

    def __init__(self, desc: str, start: int, target: int, stream: IO[str], value_name: str = "loss",
                 every: float = 0.1) -> None:
        self.desc, self.start, self.target, self.stream = desc, start, target, stream
        self.value_name = value_name
        self.step = max(1, round((target - start) * every))
        self.next = start + self.step
        self.t0 = time.perf_counter()
        self.last: tuple[int, float] | None = None
        self.printed = start

    def update(self, iteration: int, loss: float) -> None:
        self.last = (iteration, loss)
        if iteration >= self.next:
            self._line(iteration, loss)
            while self.next <= iteration:
                self.next += self.step

    def _line(self, iteration: int, loss: float) -> None:
        self.printed = iteration
        pct = 100 * iteration / max(self.target, 1)
        print(f"{self.desc}: {iteration}/{self.target} ({pct:.0f}%) {self.value_name}={loss:.4g} "
              f"{time.perf_counter() - self.t0:.1f}s", file=self.stream, flush=True)

    def close(self) -> None:
        """Say where the run ended, unless the last line already did."""
        if self.last is not None and self.last[0] != self.printed:
            self._line(*self.last)


def make_progress(progress: bool | str, default_desc: str, start: int, target: int,
                  stream: IO[str] | None = None, value_name: str = "loss") -> Any:
    """``None`` when ``progress`` is false; else a bar (terminal) or a :class:`LineProgress` (log).

    Either has ``update(iteration, value)`` (``value`` shown as ``value_name``) and ``close()``.
    """
    if not progress:
        return None
    stream = stream if stream is not None else sys.stderr
    desc = progress if isinstance(progress, str) else default_desc
    is_tty = getattr(stream, "isatty", lambda: False)()
    return (BarProgress if is_tty else LineProgress)(desc, start, target, stream, value_name)
