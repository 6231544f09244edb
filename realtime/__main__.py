"""`python -m realtime` and the `realtime-enhance` command.

Signals are handled before anything heavy is imported: importing NumPy, OpenCV, PyAV and
Numba takes a moment, and Ctrl-C or SIGTERM then must end the run quietly.
"""
import signal
import sys


def terminate(signum: int, frame: object) -> None:
    """SIGTERM stops like Ctrl-C (the pipeline drains, the output is finished), on its own
    handler, so it works even where SIGINT is ignored (a job started in the background)."""
    raise KeyboardInterrupt


def run() -> int:
    signal.signal(signal.SIGTERM, terminate)
    try:
        from .cli import main
    except KeyboardInterrupt:
        print("realtime-enhance: interrupted while starting; nothing was written", file=sys.stderr)
        return 130
    try:
        return main()
    except KeyboardInterrupt:  # between main's own handlers (they say what was written)
        return 130


if __name__ == "__main__":
    sys.exit(run())
