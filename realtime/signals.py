"""How a run is stopped: Ctrl-C and SIGTERM end it cleanly (the pipeline drains, the
output is finished); signals are held back while the heavy imports run.

Importing NumPy, OpenCV, PyAV and Numba takes a moment and cannot be interrupted cleanly
(NumPy turns an interrupted import into an ImportError with a page of advice), so
`__main__` holds Ctrl-C and SIGTERM while it imports and answers them as soon as it ends.
This module imports nothing heavy.
"""
from __future__ import annotations

import signal

STOP = {signal.SIGINT, signal.SIGTERM}
CAN_HOLD = hasattr(signal, "pthread_sigmask")  # not on Windows: there an import may be interrupted


def terminate(signum: int, frame: object) -> None:
    """SIGTERM stops like Ctrl-C, on its own handler, so it works even where SIGINT is
    ignored (a job started in the background)."""
    raise KeyboardInterrupt


def stop_on_sigterm() -> None:
    signal.signal(signal.SIGTERM, terminate)


def hold(held: bool) -> None:
    """Hold back (or let through) Ctrl-C and SIGTERM."""
    if CAN_HOLD:
        signal.pthread_sigmask(signal.SIG_BLOCK if held else signal.SIG_UNBLOCK, STOP)


def stop_pending() -> bool:
    """Whether a held Ctrl-C or SIGTERM is waiting."""
    return CAN_HOLD and bool(signal.sigpending() & STOP)
