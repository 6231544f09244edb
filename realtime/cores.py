"""The cores this process may use: one answer for the engine, the encoder and the drivers."""
from __future__ import annotations

import os


def cpu_count() -> int:
    """Cores this process may run on (the affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
