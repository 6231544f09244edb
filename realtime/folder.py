"""A folder run: every image and video inside, names mirrored; serial, in worker
processes (`--jobs`, realtime.batch) or on Ray (`--ray`, realtime.distributed).

Outputs only ever appear finished (they are written under a temporary name), so an
output that exists was finished by an earlier run and is skipped unless `overwrite`:
a stopped folder run resumes where it stopped.
"""
from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .cores import cpu_count
from .runs import Job, Outcome, Run, check_not_input, job_kind, video_output
from .sinks import ImageSink, SinkError
from .sources import SourceError

log = logging.getLogger("realtime")


@dataclass
class FolderPlan:
    jobs: list[Job]
    done: list[Path]  # outputs that exist already (finished by an earlier run)
    unsupported: list[Path]  # neither images nor videos


def plan_folder(folder: Path, output: Path, overwrite: bool) -> FolderPlan:
    """Every image and video under `folder`, to be written under `output` with the same
    relative names."""
    check_not_input(folder, output, "output folder")
    inside = output.resolve()
    files = sorted(p for p in folder.rglob("*") if p.is_file() and inside not in p.resolve().parents)
    plan = FolderPlan([], [], [])
    targets = {}
    for path in files:
        kind = job_kind(path)
        if kind is None:
            plan.unsupported.append(path)
            continue
        target = output / path.relative_to(folder)
        targets[path] = video_output(target) if kind == "video" else target
    for path, target in unique_targets(targets).items():
        kind = job_kind(path)
        if target.exists() and not overwrite:
            plan.done.append(target)
        else:
            plan.jobs.append(Job(path, target, kind))
    if not plan.jobs and not plan.done:
        raise SourceError(f"{folder}: no images or videos inside")
    return plan


def unique_targets(targets: dict[Path, Path]) -> dict[Path, Path]:
    """Outputs that never collide: where two inputs would write one name (clip.gif and
    clip.mp4 both to clip.mp4), the one whose suffix changed keeps its own in the name
    (clip.gif.mp4), and the plan says so."""
    claimed: dict[Path, int] = {}
    for target in targets.values():
        claimed[target] = claimed.get(target, 0) + 1
    unique = {}
    for source, target in targets.items():
        if claimed[target] > 1 and source.suffix.lower() != target.suffix.lower():
            renamed = target.with_name(f"{source.name}{target.suffix}")
            log.info("%s is written as %s (%s is another input's output)", source.name, renamed.name, target.name)
            target = renamed
        unique[source] = target
    return unique


def default_jobs(files: int) -> int:
    """Workers that make this machine faster (measured on 2 cores: 2 workers do 8 short clips
    3-12 % sooner than 1, benchmarks/batch.py; one pipeline leaves cores idle while files
    open and close, and x264 and the engine scale less than linearly on many cores)."""
    cores = cpu_count()
    return max(1, min(files, cores if cores <= 4 else cores // 2))


def enhance_folder(folder: Path, output: Path, run: Run, jobs: int | None = None, ray: str | None = None,
                   overwrite: bool = False) -> int:
    """Every image and video under `folder`, written under `output`; returns the failures.
    jobs: worker processes (None: default_jobs); ray: a Ray address ("" for $RAY_ADDRESS
    or a local cluster), None for this machine."""
    plan = plan_folder(folder, output, overwrite)
    if plan.unsupported:
        names = ", ".join(str(p.relative_to(folder)) for p in plan.unsupported[:5])
        more = f" and {len(plan.unsupported) - 5} more" if len(plan.unsupported) > 5 else ""
        log.warning("left alone (neither images nor videos): %s%s", names, more)
    if plan.done:
        log.info("%d output(s) already finished by an earlier run, skipped (--overwrite to redo them)", len(plan.done))
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SinkError(f"{output}: cannot make the output folder ({exc.strerror})") from None
    workers = jobs or default_jobs(sum(job.kind == "video" for job in plan.jobs))
    if ray is not None or (workers > 1 and len(plan.jobs) > 1):
        return run_parallel(plan.jobs, run, workers, ray)
    return run_serial(plan.jobs, folder, output, run)


def run_serial(jobs: list[Job], folder: Path, output: Path, run: Run) -> int:
    """In this process: the images as one pipeline, then each video."""
    images = [job.source for job in jobs if job.kind == "image"]
    failures = len(run.images(images, folder, ImageSink(root=output, show_both=run.settings.side_by_side))) if images else 0
    for job in (j for j in jobs if j.kind == "video"):
        try:
            run.job(job)
        except (SourceError, SinkError) as exc:
            log.warning("%s", exc)
            failures += 1
    return failures


def run_parallel(jobs: list[Job], run: Run, workers: int, ray: str | None) -> int:
    """In worker processes, or on a Ray cluster; returns the failures."""
    start = time.monotonic()
    if ray is not None:
        from .distributed import run_on_ray

        outcomes = run_on_ray(jobs, run.settings, ray, finished=run.finished)
    else:
        from .batch import run_in_processes

        outcomes = run_in_processes(jobs, run.settings, workers, run.finished)
    failed = [o for o in outcomes if o.error]
    for outcome in failed:
        log.warning("%s", outcome.error)
    say_done(outcomes, len(jobs), start, run.settings.quiet)
    return len(failed)


def say_done(outcomes: list[Outcome], jobs: int, start: float, quiet: bool, how: str = "") -> None:
    if quiet:
        return
    frames = sum(o.frames for o in outcomes)
    done = sum(not o.error for o in outcomes)
    print(f"{done} of {jobs} files, {frames} frames in {time.monotonic() - start:.1f} s{how}", file=sys.stderr)
