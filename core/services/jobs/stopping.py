"""Stopping a running chunk when its job is cancelled: between two Dynamics requests, never inside a write.

The engine runs a chunk in one thread (a chunk sends its requests one after another) and registers a
check for it (``watching``): the job row says whether a cancel was asked. The check runs right before each
Dynamics request the thread sends (the workspace client's ``before_send`` hook calls ``before_request``,
as the shared budget's 429 pause does) and raises :class:`JobCancelled`, so the request is not sent and
the chunk ends ``cancelled``: nothing it read is lost, nothing was written.

Once the chunk sends its first write (``begin_writes``, called by the bulk writes, which check one last
time) the check is dropped for the rest of the run: a chunk that has begun writing finishes its writes
and reports each record ``created`` / ``updated`` / ``failed`` as usual. Stopping in the middle would
leave records whose write may or may not have reached Dynamics (a bulk call's halves, an activity
created but not yet closed), which the counts could not tell apart.

Thread-scoped state (``threading.local``): interactive calls on the same workspace client, from other
threads, never see a chunk's check.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class JobCancelled(Exception):
    """The chunk's job was cancelled: stop before the next Dynamics request."""


_local = threading.local()


@contextmanager
def watching(check: Callable[[], None]) -> Iterator[None]:
    """Run ``check`` (which raises ``JobCancelled``) before each Dynamics request of this thread, until
    the block ends or the run begins writing."""
    _local.check = check
    try:
        yield
    finally:
        _local.check = None


def before_request() -> None:
    """The ``before_send`` hook part: the running chunk's check, if it has one."""
    check: Callable[[], None] | None = getattr(_local, "check", None)
    if check is not None:
        check()


def begin_writes() -> None:
    """The run is about to send its first write: check a last time, then never again in this run."""
    check: Callable[[], None] | None = getattr(_local, "check", None)
    if check is not None:
        _local.check = None
        check()
