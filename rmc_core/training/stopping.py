"""A cooperative stop for long loops.

The CLI sets `STOP` on SIGINT/SIGTERM; every training and prediction loop checks it each
step, so an interrupted run stops within one step and never begins a new artifact write.
Loops register while they run, so the one stopping them can wait until all have left.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

STOP = threading.Event()
_running = 0
_lock = threading.Condition()


class Stopped(Exception):
    """A loop left early because a stop was requested."""


def check(desc: str, step: int) -> None:
    if STOP.is_set():
        raise Stopped(f"{desc}: stopped at step {step}")


@contextmanager
def stoppable() -> Iterator[None]:
    """Mark a loop as running until it returns or raises."""
    global _running
    with _lock:
        _running += 1
    try:
        yield
    finally:
        with _lock:
            _running -= 1
            _lock.notify_all()


def wait_until_idle(timeout: float) -> bool:
    """Wait for every registered loop to leave; False if some are still running at `timeout`."""
    with _lock:
        return _lock.wait_for(lambda: _running == 0, timeout)
