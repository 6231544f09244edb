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
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

from .cores import cpu_count
from .runs import FrameReporter, Job, Outcome, Run, Settings, collect


def threads_per_worker(jobs: int) -> int:
    return max(1, cpu_count() // jobs)


# --- in the worker processes -------------------------------------------------------------------

_worker: dict = {}


def _start_worker(settings: Settings, progress: "multiprocessing.Queue") -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process decides; it ends the pool
    _worker.update(settings=settings, progress=progress, run=Run(settings))


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


def run_in_processes(jobs: list[Job], settings: Settings, workers: int) -> list[Outcome]:
    """Run `jobs` in `workers` processes; one bar on stderr for all of them."""
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
                             initargs=(settings.for_worker(threads_per_worker(workers)), progress)) as pool:
        pending: dict[Future, int] = {pool.submit(_enhance, i, job): i for i, job in enumerate(jobs)}

        def cancel(futures: list[Future]) -> None:
            for future in futures:
                future.cancel()
            _stop_workers()

        return collect(jobs, pending, lambda futures: wait(futures, timeout=0.2, return_when=FIRST_COMPLETED)[0],
                       Future.result, poll, cancel, settings.quiet)


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
