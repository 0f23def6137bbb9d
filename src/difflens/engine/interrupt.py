"""Ctrl-C and SIGTERM that let the current step finish.

Inside :func:`deferred_interrupt`, a first SIGINT or SIGTERM only sets a flag
that the loop reads after each completed step; a second one raises
``KeyboardInterrupt`` at once. When the block ends, the signal is passed on to
whatever handled it before:

- Python's own SIGINT handler (a plain script or notebook): nothing more
  happens; :meth:`Optimization.run` returns with ``stop_reason="interrupted"``.
- the default SIGTERM action: the process terminates as it would have, after
  the engine has written its checkpoint.
- a Python function, such as the handler :func:`raise_on_signals` installs for
  a study: it is called, and typically raises :class:`Interrupted`, so the
  caller never goes on with half-finished work.

Outside the main thread (where Python cannot install signal handlers) the flag
is never set and signals behave as usual.
"""

from __future__ import annotations

import signal
import sys
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

__all__ = ["deferred_interrupt", "raise_on_signals", "Interrupted", "SIGNALS"]

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """The run was asked to stop by a signal.

    Attributes
    ----------
    signum : int
        The signal (``signal.SIGINT`` or ``signal.SIGTERM``).
    iteration, max_iter : int or None
        Where the optimisation that was running stopped, and the iteration it
        was running to (``None`` when the signal came outside any optimisation).
    description : str or None
        The running optimisation's progress label.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)
        self.iteration: int | None = None
        self.max_iter: int | None = None
        self.description: str | None = None

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum).name


@contextmanager
def deferred_interrupt() -> Iterator[Callable[[], bool]]:
    """Yield a function telling whether SIGINT or SIGTERM arrived since entering."""
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    hit: list[int] = []

    def handler(signum, frame):  # noqa: ARG001
        if hit:
            raise KeyboardInterrupt
        hit.append(signum)
        print(f"\n{signal.Signals(signum).name}: finishing the current step (again to abort now)",
              file=sys.stderr, flush=True)

    previous = {}
    try:
        for s in SIGNALS:
            previous[s] = signal.signal(s, handler)
    except ValueError:  # not allowed here (e.g. an embedded interpreter)
        for s, h in previous.items():
            signal.signal(s, h)
        yield lambda: False
        return
    try:
        yield lambda: bool(hit)
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    if hit:
        _pass_on(hit[0], previous[hit[0]])


def _pass_on(signum: int, before) -> None:
    if callable(before) and before is not signal.default_int_handler:
        before(signum, None)
    elif before == signal.SIG_DFL and signum != signal.SIGINT:
        signal.raise_signal(signum)  # terminate as the default action would have


@contextmanager
def raise_on_signals() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM raise :class:`Interrupted` (main thread only).

    An optimisation running inside the block finishes its step, writes its
    checkpoint and then lets the :class:`Interrupted` through, so nothing after
    it runs on unfinished results.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):  # noqa: ARG001
        raise Interrupted(signum)

    previous = {s: signal.signal(s, handler) for s in SIGNALS}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
