"""A folder on all cores: its files run in worker processes at once (`--jobs N`).

Each worker runs the same per-file pipeline as a single run (runs.Run.job), with its
engine's and encoder's threads sized so that the workers together use the machine's
cores and no more. Workers report the frames they write to one progress bar in the main
process; a file that fails is reported at the end with its reason, and the others go on.
"""
from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import sys
import time
from pathlib import Path
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

from .cores import cpu_count
from .runs import FrameReporter, Job, Outcome, Run, Settings, collect


def threads_per_worker(jobs: int) -> int:
    return max(1, cpu_count() // jobs)


# --- in the worker processes -------------------------------------------------------------------


def end_with_parent(parent: int) -> None:
    """A worker must not outlive the run: on Linux the kernel sends it SIGTERM when its
    parent dies, even by SIGKILL (prctl PR_SET_PDEATHSIG); elsewhere the pool's own
    broken-pipe handling ends it once the parent's queues are gone."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)

_worker: dict = {}


def _start_worker(settings: Settings, progress: "multiprocessing.Queue", parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process decides; it ends the pool
    end_with_parent(parent)
    _worker.update(progress=progress, run=Run(settings))


def _enhance(index: int, job: Job) -> int:
    """One file, in a worker: the same pipeline as a single run; returns its frames."""
    run = _worker["run"]
    reporter = FrameReporter(lambda frames: _worker["progress"].put((index, frames)))
    run.on_frames = reporter
    try:
        return run.job(job)
    finally:
        reporter.flush()


# --- in the main process ---------------------------------------------------------------------------


def run_in_processes(jobs: list[Job], settings: Settings, workers: int,
                     finished: list[Path] | None = None) -> list[Outcome]:
    """Run `jobs` in `workers` processes; one bar on stderr for all of them. finished:
    each output is added as soon as it is done."""
    context = multiprocessing.get_context("spawn")  # a clean interpreter: no inherited threads or locks
    progress = context.Queue()

    def poll() -> int:
        frames = 0
        while True:
            try:
                frames += progress.get_nowait()[1]
            except queue.Empty:
                return frames

    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                             initargs=(settings.for_worker(threads_per_worker(workers)), progress, os.getpid())) as pool:
        pending: dict[Future, int] = {pool.submit(_enhance, i, job): i for i, job in enumerate(jobs)}

        def cancel(futures: list[Future]) -> None:
            # No Future.cancel(): the pool marks every future broken once its workers are
            # gone, and Python 3.11's pool fails on one that was cancelled before that.
            _stop_workers()

        return collect(jobs, pending, lambda futures: wait(futures, timeout=0.2, return_when=FIRST_COMPLETED)[0],
                       Future.result, poll, cancel, settings.quiet, finished)


def _stop_workers() -> None:
    """Ctrl-C: the workers are sent SIGTERM (their outputs keep partial names) and awaited."""
    processes = multiprocessing.active_children()  # the pool's workers: this process has no others
    for process in processes:
        try:
            os.kill(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 10
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
