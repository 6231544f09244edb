"""`python -m realtime` and the `realtime-enhance` command.

Signals are handled before anything heavy is imported (realtime.signals says why).
"""
import sys

from .signals import exit_status, hold, pending_stop, stop_on_sigterm


def run() -> int:
    stop_on_sigterm()
    interrupted = "realtime-enhance: interrupted while starting; nothing was written"
    hold(True)
    try:
        from .cli import main
    except KeyboardInterrupt as stop:  # only where signals cannot be held
        print(interrupted, file=sys.stderr)
        return exit_status(stop)
    signum = pending_stop()
    if signum is not None:
        print(interrupted, file=sys.stderr)
        return exit_status(signum)  # the held signal dies with the process
    try:
        hold(False)
        return main()
    except KeyboardInterrupt as stop:  # between main's own handlers (they say what was written)
        return exit_status(stop)
    finally:
        hold(True)  # the run is over: a late Ctrl-C must not turn its exit status into a traceback


if __name__ == "__main__":
    sys.exit(run())
