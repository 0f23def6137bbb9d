"""Ctrl-C that lets the current step finish.

Inside :func:`deferred_interrupt`, a first SIGINT only sets a flag that the
loop reads after each completed step; a second SIGINT raises
``KeyboardInterrupt`` at once. Outside the main thread (where Python cannot
install signal handlers) the flag is never set and Ctrl-C behaves as usual.
"""

from __future__ import annotations

import signal
import sys
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

__all__ = ["deferred_interrupt"]


@contextmanager
def deferred_interrupt() -> Iterator[Callable[[], bool]]:
    """Yield a function telling whether Ctrl-C was pressed since entering."""
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    hit = [False]

    def handler(signum, frame):  # noqa: ARG001
        if hit[0]:
            raise KeyboardInterrupt
        hit[0] = True
        print("\ninterrupt: finishing the current step (Ctrl-C again to abort now)", file=sys.stderr)

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not allowed here (e.g. an embedded interpreter)
        yield lambda: False
        return
    try:
        yield lambda: hit[0]
    finally:
        signal.signal(signal.SIGINT, previous)
