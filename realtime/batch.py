"""A folder on all cores: its files run in worker processes at once (`--jobs N`).

Each worker runs the same per-file pipeline as a single run (cli.enhance_video and the
image pipeline), with its engine's and encoder's threads sized so that the workers
together use the machine's cores and no more. Workers report the frames they write to
one progress bar in the main process; a file that fails is reported at the end with its
reason, and the others go on.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import queue
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from .backends.cpu import cpu_count

#: The arguments a worker needs (the rest are the main process's).
_WORKER = {"weights", "backend", "codec", "crf", "preset", "side_by_side", "denoise", "strength", "exposure",
           "queue_size", "verbose"}


@dataclass
class Outcome:
    """What became of one file: its frames, or why it failed."""

    source: Path
    target: Path
    frames: int = 0
    error: str | None = None


def threads_per_worker(jobs: int) -> int:
    return max(1, cpu_count() // jobs)


def worker_args(args: argparse.Namespace, jobs: int) -> dict:
    """The run's settings for a worker: picklable, quiet, with its share of the cores."""
    settings = {k: v for k, v in vars(args).items() if k in _WORKER}
    return {**settings, "quiet": True, "threads": threads_per_worker(jobs)}


# --- in the worker processes -------------------------------------------------------------------

_state: dict = {}


def _start_worker(settings: dict, progress: "multiprocessing.Queue") -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process decides; it ends the pool
    from .cli import LazyEnhancer

    args = argparse.Namespace(**settings, finished=[])
    _state.update(args=args, engine=LazyEnhancer(args), progress=progress)


def _enhance(index: int, job) -> Outcome:
    """One file, in a worker: the same pipeline as a single run."""
    from .cli import ImageSink, enhance_images, enhance_video
    from .sinks import SinkError
    from .sources import SourceError

    args, engine, progress = _state["args"], _state["engine"], _state["progress"]
    written = [0]

    def report(frames: int) -> None:
        if frames != written[0]:
            progress.put((index, frames - written[0]))
            written[0] = frames

    args.report = report
    outcome = Outcome(job.source, job.target)
    try:
        job.target.parent.mkdir(parents=True, exist_ok=True)
        if job.kind == "image":
            failed = enhance_images([job.source], job.source.parent, ImageSink(path=job.target), engine, args)
            outcome.error = f"{job.source}: not a readable image" if failed else None
            report(1)
        else:
            enhance_video(str(job.source), job.target, engine, args, keep_incomplete_partial=True)
    except (SourceError, SinkError) as exc:
        outcome.error = str(exc)
    except Exception as exc:  # noqa: BLE001 - reported with the file, the others go on
        outcome.error = f"{job.source}: {exc.__class__.__name__}: {exc}"
    outcome.frames = written[0]
    return outcome


# --- in the main process ---------------------------------------------------------------------------


def frame_total(jobs: list) -> int:
    """Frames the jobs will write, as their headers announce (for the progress bar)."""
    import av

    total = 0
    for job in jobs:
        if job.kind == "image":
            total += 1
            continue
        try:
            with av.open(str(job.source)) as container:
                stream = container.streams.video[0]
                total += stream.frames or int((container.duration or 0) / av.time_base * float(stream.average_rate or 30))
        except Exception:  # noqa: BLE001 - the worker will say what is wrong with it
            pass
    return total


def run_parallel(jobs: list, args: argparse.Namespace, workers: int) -> list[Outcome]:
    """Run `jobs` (cli.Job) in `workers` processes; an aggregated bar on stderr."""
    context = multiprocessing.get_context("spawn")  # a clean interpreter: no inherited threads or locks
    progress = context.Queue()
    bar = _bar(frame_total(jobs), len(jobs), args)
    outcomes: list[Outcome] = []
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker,
                             initargs=(worker_args(args, workers), progress)) as pool:
        pending: dict[Future, int] = {pool.submit(_enhance, i, job): i for i, job in enumerate(jobs)}
        try:
            while pending:
                done, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                _drain(progress, bar)
                for future in done:
                    del pending[future]
                    outcomes.append(future.result())
                    if bar is not None:
                        bar.set_postfix(files=f"{len(outcomes)}/{len(jobs)}", refresh=False)
        except KeyboardInterrupt:
            for future in pending:
                future.cancel()
            _stop_workers(pool)
            raise
        finally:
            _drain(progress, bar)
            if bar is not None:
                bar.close()
    return outcomes


def _bar(frames: int, files: int, args: argparse.Namespace):
    if args.quiet or not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    return tqdm(total=frames or None, desc=f"{files} files", unit="frame", dynamic_ncols=True, leave=False)


def _drain(progress: "multiprocessing.Queue", bar) -> None:
    while True:
        try:
            _, frames = progress.get_nowait()
        except queue.Empty:
            return
        if bar is not None:
            bar.update(frames)


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """Ctrl-C: the workers' pipelines stop as on SIGTERM (their outputs keep partial names)."""
    import signal

    for process in list(getattr(pool, "_processes", {}).values()):
        try:
            os.kill(process.pid, signal.SIGTERM)
        except (ProcessLookupError, AttributeError):
            pass
    deadline = time.monotonic() + 10
    for process in list(getattr(pool, "_processes", {}).values()):
        process.join(max(0.0, deadline - time.monotonic()))
