"""Child processes of tests and benches must not outlive them."""

from __future__ import annotations

import contextlib
import signal
import sys


def die_with_parent() -> None:
    """``preexec_fn`` for a child process: SIGTERM it when its parent dies, even by SIGKILL (Linux only;
    elsewhere a no-op). The parent is the thread that started it, so start children from the main thread.
    """
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(Exception):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
