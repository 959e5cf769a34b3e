"""Stopping cleanly: Ctrl-C or a scheduler's SIGTERM ends a run after its last saved epoch, never inside one."""

from __future__ import annotations

from contextlib import contextmanager

from fgvctune.errors import FgvctuneError


class Interrupted(FgvctuneError):
    exit_code = 130


def reclaim_ctrl_c() -> None:
    """MindSpore's runtime installs a native SIGINT handler (again at every graph run) that turns
    Ctrl-C into SIGTERM; make SIGTERM (and so Ctrl-C, and a scheduler's stop) raise
    KeyboardInterrupt, so the run stops cleanly after its last saved epoch."""
    import signal
    import threading

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, interrupt)


@contextmanager
def interrupts_deferred():
    """Hold Ctrl-C and SIGTERM until the block is done, then raise KeyboardInterrupt."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = {
        sig: signal.signal(sig, lambda signum, frame: caught.append(signum)) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if caught:
        raise KeyboardInterrupt
