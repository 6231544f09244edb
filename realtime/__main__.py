"""`python -m realtime` and the `realtime-enhance` command.

Signals are handled before anything heavy is imported. Importing NumPy, OpenCV, PyAV and
Numba takes a moment and cannot be interrupted cleanly (NumPy turns an interrupted import
into an ImportError with a page of advice), so Ctrl-C and SIGTERM are held back while it
runs and answered as soon as it ends.
"""
import signal
import sys

STOP = {signal.SIGINT, signal.SIGTERM}
CAN_HOLD = hasattr(signal, "pthread_sigmask")  # not on Windows: there an import may be interrupted


def terminate(signum: int, frame: object) -> None:
    """SIGTERM stops like Ctrl-C (the pipeline drains, the output is finished), on its own
    handler, so it works even where SIGINT is ignored (a job started in the background)."""
    raise KeyboardInterrupt


def hold(held: bool) -> None:
    if CAN_HOLD:
        signal.pthread_sigmask(signal.SIG_BLOCK if held else signal.SIG_UNBLOCK, STOP)


def run() -> int:
    signal.signal(signal.SIGTERM, terminate)
    interrupted = "realtime-enhance: interrupted while starting; nothing was written"
    hold(True)
    try:
        from .cli import main
    except KeyboardInterrupt:  # only where signals cannot be held
        print(interrupted, file=sys.stderr)
        return 130
    if CAN_HOLD and signal.sigpending() & STOP:
        print(interrupted, file=sys.stderr)
        return 130  # the held signal dies with the process
    try:
        hold(False)
        return main()
    except KeyboardInterrupt:  # between main's own handlers (they say what was written)
        return 130
    finally:
        hold(True)  # the run is over: a late Ctrl-C must not turn its exit status into a traceback


if __name__ == "__main__":
    sys.exit(run())
