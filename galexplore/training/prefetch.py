"""Reading ahead in a background thread: the next batches are made while the caller uses this one.

A thread, not a process: it shares the open survey, starts in microseconds, and costs no extra
core where the work it does mostly runs outside the GIL (numpy's ufunc loops release it; an
HDF5 read holds it for about a millisecond per batch). Items come out in the order the
iterable yields them; an exception raised while making one is raised again in the caller, at
that item, with its type, message and traceback.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

__all__ = ["prefetch"]

Item = TypeVar("Item")

_POLL_S = 0.1  # how often a blocked reader checks whether the caller has stopped listening


class _Failed:
    """The reader's exception, carried through the queue to be raised in the caller."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


_DONE = object()


def prefetch(items: Iterable[Item], depth: int = 2) -> Iterator[Item]:
    """`items`, made by a background thread up to `depth` ahead of the caller.

    Closing the iterator early (a `break`, an exception in the caller) stops the thread before
    it makes more than the items already queued and one more.
    """
    if depth < 1:
        raise ValueError(f"prefetch depth = {depth}; expected at least 1")
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(value: object) -> bool:
        while not stop.is_set():
            try:
                ready.put(value, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for item in items:
                if not offer(item):
                    return
        except BaseException as exc:  # handed to the caller, raised there
            offer(_Failed(exc))
            return
        offer(_DONE)

    reader = threading.Thread(target=read, name="galexplore-prefetch", daemon=True)
    reader.start()
    try:
        while True:
            value = ready.get()
            if value is _DONE:
                return
            if isinstance(value, _Failed):
                value.error.add_note("(raised while reading ahead in a background thread)")
                raise value.error
            yield value
    finally:
        stop.set()
        reader.join()
