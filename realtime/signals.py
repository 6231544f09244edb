"""How a run is stopped: Ctrl-C and SIGTERM end it cleanly (the pipeline drains, the
output is finished); signals are held back while the heavy imports run.

Importing NumPy, OpenCV, PyAV and Numba takes a moment and cannot be interrupted cleanly
(NumPy turns an interrupted import into an ImportError with a page of advice), so
`__main__` holds Ctrl-C and SIGTERM while it imports and answers them as soon as it ends.
This module imports nothing heavy.
"""
from __future__ import annotations

import signal

#: SIGTERM (a service manager, `kill`) and SIGHUP (the terminal or ssh session closed)
#: stop a run as Ctrl-C does.
ENDING = [signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
STOP = {signal.SIGINT, *ENDING}
CAN_HOLD = hasattr(signal, "pthread_sigmask")  # not on Windows: there an import may be interrupted


class Stopped(KeyboardInterrupt):
    """A stop asked for by a signal other than Ctrl-C; `signum` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def terminate(signum: int, frame: object) -> None:
    """SIGTERM and SIGHUP stop like Ctrl-C, on their own handler, so that they work even
    where SIGINT is ignored (a job started in the background)."""
    raise Stopped(signum)


def stop_on_sigterm() -> None:
    """SIGTERM and SIGHUP stop the run, unless the process was started with them ignored:
    `nohup` ignores SIGHUP so that a run outlives its terminal, and so must we."""
    for signum in set(ENDING) & stopping():
        signal.signal(signum, terminate)


def exit_status(stop: KeyboardInterrupt | int) -> int:
    """129 for SIGHUP (128 + its number, as shells report it), else 130 (interrupted).
    stop: the interruption, or the number of the signal that asked for it."""
    signum = stop if isinstance(stop, int) else getattr(stop, "signum", None)
    return 129 if signum == getattr(signal, "SIGHUP", None) else 130


def stopping() -> set[int]:
    """The signals that stop a run: those of STOP the process was not started ignoring
    (a blocked signal is kept pending even when ignored, so the ignored ones are not held)."""
    return {signum for signum in STOP if signal.getsignal(signum) != signal.SIG_IGN}


def hold(held: bool) -> None:
    """Hold back (or let through) Ctrl-C, SIGTERM and SIGHUP."""
    if CAN_HOLD:
        signal.pthread_sigmask(signal.SIG_BLOCK if held else signal.SIG_UNBLOCK, stopping())


def pending_stop() -> int | None:
    """The number of a held Ctrl-C, SIGTERM or SIGHUP that is waiting, or None."""
    pending = signal.sigpending() & stopping() if CAN_HOLD else set()
    return int(min(pending)) if pending else None
