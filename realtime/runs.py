"""The runs layer: how one input is enhanced, for every driver.

The command line, folder runs, worker processes and Ray tasks all go through here:
`Settings` (made once from the arguments; frozen, so it pickles as is for workers),
`Run` (the engine, loaded on first use, the outputs finished so far, where progress
goes) with one method per kind of input, `Job` (one file of a folder, image or video
decided once), `Progress` (the one progress bar) and `collect` (the one wait / report /
cancel loop of the parallel drivers). Nothing here knows of argparse.
"""
from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterable

from .controls import Controls
from .pipeline import Pipeline, Stats
from .sinks import ImageSink, PreviewSink, SinkError, VideoFileSink, VirtualCameraSink
from .sources import (
    IMAGE_SUFFIXES, STDIN, VIDEO_SUFFIXES, CameraSource, DemoSource, ImageSource, SourceError, VideoFileSource,
    estimate_frames,
)

log = logging.getLogger("realtime")


def tell(line: str) -> None:
    """A line for the user on stderr; said nowhere when stderr is gone (the terminal was
    closed: SIGHUP), so that the run still finishes its files."""
    try:
        print(line, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


def quiet_native_libraries(verbose: bool) -> None:
    """OpenCV's own log lines (decoder warnings, "can't encode" errors) and SVT-AV1's
    banner stay off stderr unless -v: every failure is said once, in our words."""
    import cv2

    if not verbose:
        os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1: errors only (read when an encoder starts)

    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_INFO if verbose else cv2.utils.logging.LOG_LEVEL_SILENT)


class UsageError(Exception):
    """The request cannot be carried out as asked (exit status 2); the message says why."""


@dataclass(frozen=True)
class Settings:
    """Everything a run is told: the engine's, the encoder's and the live outputs'.

    threads: cores for the engine and encoder (None: all). record: the live run's
    recording (-o). serve: [HOST:]PORT of the browser view; serve_token already read
    from its file; serve_hosts: extra host names browsers may use."""

    weights: Path | None = None
    backend: str = "auto"
    strength: float = 1.0
    exposure: float | None = None
    denoise: str | float = "auto"
    codec: str | None = None
    crf: int = 18
    preset: str = "veryfast"
    side_by_side: bool = False
    queue_size: int = 4
    threads: int | None = None
    quiet: bool = False
    camera_size: tuple[int, int] | None = None
    fps: float | None = None  # the camera's rate to ask for; the rate of a raw H.264/HEVC stream
    record: Path | None = None
    virtual_cam: bool = False
    serve: str | None = None
    serve_token: str | None = None
    serve_hosts: tuple[str, ...] = ()
    preview: bool = True

    def for_worker(self, threads: int) -> "Settings":
        """A worker's copy: quiet (the driver shows progress), with its share of the cores."""
        return replace(self, quiet=True, threads=threads)


@dataclass(frozen=True)
class Job:
    """One file of a folder run: enhance `source` into `target`."""

    source: Path
    target: Path
    kind: str  # "image" or "video": job_kind(source)


def job_kind(path: Path) -> str | None:
    """"image", "video" (animated GIFs included) or None, by the name's suffix."""
    suffix = path.suffix.lower()
    return "image" if suffix in IMAGE_SUFFIXES else "video" if suffix in VIDEO_SUFFIXES else None


def video_output(path: Path) -> Path:
    """An animated GIF is written as MP4; other videos keep their container."""
    return path.with_suffix(".mp4") if path.suffix.lower() == ".gif" else path


@dataclass
class Outcome:
    """What became of one job: the frames written, or why it failed."""

    source: Path
    target: Path
    frames: int = 0
    error: str | None = None


class RunEngine:
    """The run's engine, loaded on first use (bad input fails before the model loads).
    Images get the per-frame Enhancer with its photo filter; video and live streams the
    VideoEnhancer around it (temporal denoise and smoothed curves; the pipeline resets it
    for each stream). `checkpoint`: an already loaded Checkpoint (Ray ships one to every
    task), else settings.weights is read."""

    def __init__(self, settings: Settings, checkpoint=None) -> None:
        self.settings = settings
        self.checkpoint = checkpoint
        self.controls = Controls(strength=settings.strength, exposure=settings.exposure)
        self.enhancer = None
        self.video_enhancer = None

    def get(self):
        if self.enhancer is None:
            from .engine import Enhancer

            weights = self.checkpoint if self.checkpoint is not None else self.settings.weights
            self.enhancer = Enhancer(weights, backend=self.settings.backend, controls=self.controls,
                                     threads=self.settings.threads)
            log.debug("engine: %s backend, %s", self.enhancer.backend.name, self.enhancer.config)
        return self.enhancer

    def photos(self):
        """Photographs: the Enhancer with its edge-preserving filter (Enhancer.enhance_photo)."""
        return self.get().enhance_photo

    def video(self):
        if self.video_enhancer is None:
            from .temporal import VideoEnhancer

            self.video_enhancer = VideoEnhancer(self.get(), denoise=self.settings.denoise)
        return self.video_enhancer

    def close(self) -> None:
        if self.video_enhancer is not None:
            self.video_enhancer.close()
        elif self.enhancer is not None:
            self.enhancer.close()


class Progress:
    """The progress bar (tqdm, on stderr when it is a terminal): frames, fps, ETA; for one
    file, a folder, workers and Ray alike."""

    def __init__(self, total: int, label: str, enabled: bool = True) -> None:
        self.bar = None
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total or None, desc=label, unit="frame", dynamic_ncols=True, leave=False)

    def advance(self, frames: int) -> None:
        if self.bar is not None:
            self.bar.update(frames)

    def show(self, written: int, **postfix) -> None:
        """The frames written so far (and e.g. dropped=N beside them)."""
        if self.bar is not None:
            self.bar.update(written - self.bar.n)
            self.note(**postfix)

    def note(self, **postfix) -> None:
        """Figures beside the bar, e.g. files="3/8"."""
        if self.bar is not None and postfix:
            self.bar.set_postfix(**postfix, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            try:
                self.bar.close()
            except (OSError, ValueError):  # stderr is gone (SIGHUP)
                pass
            self.bar = None


class FrameReporter:
    """Turns "frames written so far" into increments sent to a driver's progress queue,
    at least `every` frames apart; `flush` sends the rest."""

    def __init__(self, send: Callable[[int], None], every: int = 1) -> None:
        self.send, self.every, self.sent, self.written = send, every, 0, 0

    def __call__(self, written: int) -> None:
        self.written = written
        if written - self.sent >= self.every:
            self.flush()

    def flush(self) -> None:
        if self.written > self.sent:
            self.send(self.written - self.sent)
            self.sent = self.written


def same_file(a: Path, b: Path) -> bool:
    """Whether two names are one file: the same inode (hard links, symlinks, ./ or case
    variants on case-insensitive filesystems), or the same resolved path."""
    try:
        return a.resolve() == b.resolve() or (b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def check_not_input(source: Path, output: Path, what: str = "output") -> None:
    if same_file(source, output):
        raise UsageError(f"{output}: {what} would overwrite the input")


class Run:
    """The runs of one invocation, or of one worker: its settings, its engine, the
    outputs finished so far (a stopped run's included) and, for a worker, where the frames
    it writes are reported (instead of a bar of its own)."""

    def __init__(self, settings: Settings, checkpoint=None, on_frames: Callable[[int], None] | None = None) -> None:
        self.settings = settings
        self.engine = RunEngine(settings, checkpoint)
        self.on_frames = on_frames
        self.finished: list[Path] = []

    def close(self) -> None:
        self.engine.close()

    # --- one pipeline -------------------------------------------------------------------------

    def pipeline(self, pipeline: Pipeline, total: int, label: str) -> Stats:
        progress = Progress(total, label, not self.settings.quiet and self.on_frames is None)

        def tick(stats: Stats) -> None:
            progress.show(stats.written, **({"dropped": stats.dropped} if stats.dropped else {}))
            if self.on_frames is not None:
                self.on_frames(stats.written)

        try:
            return pipeline.run(on_tick=tick)
        except KeyboardInterrupt:
            progress.close()
            tell(f"realtime-enhance: {label}: interrupted after {pipeline.stats.written} frames")
            raise
        finally:
            progress.close()
            self.finished.extend(sink.path for sink in pipeline.sinks if isinstance(getattr(sink, "path", None), Path))

    def summary(self, label: str, stats: Stats) -> None:
        if self.settings.quiet:
            return
        line = f"{label}: {stats.written} frames at {stats.fps:.1f} fps"
        if stats.dropped:
            line += f", {stats.dropped} dropped to stay live"
        print(line, file=sys.stderr)

    # --- the kinds of input -------------------------------------------------------------------

    def video(self, spec: str, output: Path, keep_incomplete_partial: bool = False) -> Stats:
        """A video file (or stdin) into `output`: every frame, its timestamps, the other streams."""
        if spec != STDIN:
            check_not_input(Path(spec), output)
        s = self.settings
        source = VideoFileSource(spec, rate=s.fps)
        try:
            sink = VideoFileSink(output, source.info, s.codec, s.crf, s.preset, show_both=s.side_by_side,
                                 threads=s.threads or 0, keep_incomplete_partial=keep_incomplete_partial)
        except Exception:
            source.close()
            raise
        log.debug("%s: %dx%d, %s, %d-bit%s", source.label, source.width, source.height, source.colour, source.bits,
                  f" (untagged: assumed {source.colour.guessed})" if source.colour.guessed else "")
        stats = self.pipeline(Pipeline(source, self.engine.video(), [sink], s.queue_size), source.frame_count,
                              Path(source.label).name)
        self.summary(f"{source.label} -> {output}", stats)
        if source.damage:
            log.warning("%s: %s", source.label, source.damage.describe(source.fps))
        if stats.source_error:
            raise SourceError(stats.source_error)
        return stats

    def images(self, paths: list[Path], root: Path, sink: ImageSink) -> dict[Path, str]:
        """Photos through the photo path; returns those that could not be enhanced, with
        why (each is logged)."""
        source = ImageSource(paths, root)
        stats = self.pipeline(Pipeline(source, self.engine.photos(), [sink], self.settings.queue_size), len(paths),
                              "images")
        self.summary(f"{len(paths)} images", stats)
        return {path: source.reasons.get(path, f"{path}: not a readable image") for path in source.failed}

    def image(self, path: Path, output: Path) -> None:
        failed = self.images([path], path.parent, ImageSink(path=output, show_both=self.settings.side_by_side))
        if failed:
            raise SourceError(failed[path])

    def camera(self, spec: str) -> Stats:
        """A camera or live stream, to the live outputs, until it ends or the run is stopped."""
        source = CameraSource(spec, self.settings.camera_size, self.settings.fps)
        log.info("camera %s: %dx%d at %.1f fps", spec, source.width, source.height, source.fps)
        stats = self.stream(source, f"camera {spec}")
        if stats.source_error:  # the stream ended by itself (unplugged, network lost): flushed, but a failure
            raise SourceError(stats.source_error)
        return stats

    def stream(self, source, label: str) -> Stats:
        """A live source to the live outputs (recording, window, browser, virtual camera)."""
        try:
            sinks = live_sinks(source.info, self.settings, self.engine.controls)
        except Exception:
            source.close()
            raise
        stats = self.pipeline(Pipeline(source, self.engine.video(), sinks, self.settings.queue_size), 0, label)
        self.summary(label, stats)
        return stats

    def demo(self, output: Path | None) -> None:
        """The generated low-light clip: written before | after to a file, or, with a browser
        view or virtual camera, played live (looping at its frame rate) until stopped."""
        s = self.settings
        if s.serve or s.virtual_cam:
            self.stream(DemoSource(live=True), "demo")
            return
        output = output or Path("demo.mp4")
        source = DemoSource()
        sink = VideoFileSink(output, source.info, s.codec, s.crf, s.preset, show_both=True)
        stats = self.pipeline(Pipeline(source, self.engine.video(), [sink], s.queue_size), source.frame_count, "demo")
        self.summary(f"demo (left: generated low-light input, right: enhanced) -> {output}", stats)

    def job(self, job: Job) -> int:
        """One file of a folder (in this process, a worker or a Ray task); returns the frames
        written. A failure raises (SourceError, SinkError)."""
        job.target.parent.mkdir(parents=True, exist_ok=True)
        if job.kind == "image":
            self.image(job.source, job.target)
            if self.on_frames is not None:
                self.on_frames(1)
            return 1
        return self.video(str(job.source), job.target, keep_incomplete_partial=True).written


def live_sinks(info, settings: Settings, controls: Controls) -> list:
    """The sinks of a live run: recording, preview window, browser view, virtual camera."""
    sinks: list = []
    try:
        if settings.record:
            sinks.append(VideoFileSink(settings.record, info, settings.codec, settings.crf, settings.preset,
                                       show_both=settings.side_by_side))
        if settings.virtual_cam:
            sinks.append(VirtualCameraSink(info.width, info.height, info.fps))
        if settings.serve:
            sinks.append(browser_sink(settings, controls))
        if settings.preview:
            sinks.append(PreviewSink(settings.side_by_side, controls))
        if not sinks:
            raise UsageError("--no-preview without -o, --serve or --virtual-cam would show and save nothing")
    except Exception:
        for sink in sinks:
            sink.close(complete=False)
        raise
    return sinks


def browser_sink(settings: Settings, controls: Controls):
    """The browser view. Beyond loopback a token is required: without one, one is made and
    its address printed once (it is not logged anywhere else)."""
    import secrets

    from .browser import BrowserSink, is_loopback, parse_address

    address = parse_address(settings.serve)
    token, made = settings.serve_token, False
    if token is None and not is_loopback(address[0]):
        token, made = secrets.token_urlsafe(18), True
    server = BrowserSink(address, controls, token, hosts=settings.serve_hosts)
    if made:
        print(f"realtime-enhance: {address[0]} is reachable from the network: made a token for this run; "
              f"watch at {server.url}", file=sys.stderr)
    elif not settings.quiet:
        print(f"realtime-enhance: watch at {server.url}", file=sys.stderr)
    return server


def failure_text(job: Job, exc: BaseException) -> str:
    """One line for a job that failed: the message of our own errors, else the file, the
    error's class and its last line."""
    if isinstance(exc, (SourceError, SinkError)):
        return str(exc)
    lines = str(exc).strip().splitlines()
    return f"{job.source}: {exc.__class__.__name__}: {lines[-1] if lines else ''}"


def collect(jobs: list[Job], pending: dict, wait: Callable[[list], Iterable], result: Callable,
            poll: Callable[[], int], cancel: Callable[[list], None], quiet: bool,
            finished: list[Path] | None = None) -> list[Outcome]:
    """The parallel drivers' loop: wait for the jobs' tasks, show the frames their workers
    report, turn each task's result into an Outcome (its frames, or its error's line); on
    Ctrl-C cancel what is left.

    pending: task -> index in jobs. wait(tasks) -> the finished ones (waits at most ~0.2 s);
    result(task) -> frames, or raises the task's error; poll() -> frames reported since
    the last call. finished: each output is added as soon as its job succeeds (an
    interrupted run can say what it finished)."""
    total = sum(1 if job.kind == "image" else estimate_frames(job.source) for job in jobs)
    progress = Progress(total, f"{len(jobs)} files", not quiet)
    outcomes = {i: Outcome(job.source, job.target) for i, job in enumerate(jobs)}
    files_done = 0
    try:
        while pending:
            done = wait(list(pending))
            progress.advance(poll())
            for task in done:
                index = pending.pop(task)
                try:
                    outcomes[index].frames = result(task)
                    if finished is not None:
                        finished.append(jobs[index].target)
                except Exception as exc:  # noqa: BLE001 - reported with its file; the others go on
                    outcomes[index].error = failure_text(jobs[index], exc)
                files_done += 1
                progress.note(files=f"{files_done}/{len(jobs)}")
    except KeyboardInterrupt:
        for task in wait(list(pending)):  # finished while the signal came: they count
            try:
                result(task)
            except Exception:  # noqa: BLE001 - it failed; nothing to count
                continue
            if finished is not None:
                finished.append(jobs[pending[task]].target)
        cancel(list(pending))
        raise
    finally:
        progress.advance(poll())
        progress.close()
    return [outcomes[i] for i in range(len(jobs))]
