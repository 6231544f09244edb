"""The `realtime-enhance` command: a thin layer over sources, Enhancer, sinks and Pipeline.

Exit codes: 0 success, 1 runtime failure, 2 usage error, 130 interrupted.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from . import __version__
from .backends import BACKENDS, BackendUnavailable
from .backends.cpu import cpu_count
from .checkpoint import CheckpointError
from .pipeline import Pipeline, Stats
from .controls import MAX_STRENGTH, Controls
from .sinks import (
    CRF_CODECS, X26X_PRESETS, ImageSink, PreviewSink, SinkError, VideoFileSink, VirtualCameraSink, default_codec,
)
from .sources import (
    IMAGE_SUFFIXES, STDIN, CameraSource, DemoSource, ImageSource, SourceError, VideoFileSource, is_live,
)

log = logging.getLogger("realtime")

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
VIDEO_SUFFIXES = {".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".ts", ".mts", ".flv", ".wmv", ".mpg", ".mpeg"}

EXAMPLES = """\
examples:
  realtime-enhance --demo -o demo.mp4           make a dark test clip, write before|after
  realtime-enhance night.mp4 -o bright.mp4      every frame, timestamps and audio kept
  realtime-enhance --webcam 0                   live preview (b: before/after, q: quit)
  realtime-enhance --webcam 0 --no-preview -o rec.mp4
  realtime-enhance --webcam 0 --virtual-cam     be brighter in video calls (a camera other apps open)
  realtime-enhance --webcam 0 --serve 8080 --no-preview   watch from a browser: http://127.0.0.1:8080/
  realtime-enhance rtsp://camera/stream -o rec.mkv
  realtime-enhance photo.jpg -o photo_bright.png
  realtime-enhance shots/ -o bright/            every image and video inside, names mirrored
  realtime-enhance export model.onnx            the per-frame model for inference servers (docs/DEPLOY.md)

exit codes: 0 success, 1 failure, 2 usage error, 130 interrupted
"""


class UsageError(Exception):
    pass


class ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not the whole usage block
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 1280x720, got {text!r}") from None
    if w < 1 or h < 1:
        raise argparse.ArgumentTypeError(f"size must be positive, got {text!r}")
    return w, h


def parse_denoise(text: str) -> str | float:
    if text in ("auto", "off"):
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected auto, off or a number from 0 to 1, got {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"the strength must be from 0 to 1, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="realtime-enhance",
        description="Real-time low-light enhancement (Zero-DCE family) for video files, cameras, streams and images.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("input", nargs="?", help="video file (- for stdin), image, folder, camera index, /dev/videoN "
                                            "or stream URL")
    p.add_argument("-o", "--output", type=Path, help="output file or folder (default for files: NAME_enhanced.EXT)")
    src = p.add_argument_group("live sources")
    src.add_argument("--webcam", metavar="N", help="camera index or device (same as giving it as input)")
    src.add_argument("--size", type=parse_size, metavar="WxH", help="ask the camera for this size, e.g. 1280x720")
    src.add_argument("--fps", type=float, help="ask the camera for this frame rate")
    src.add_argument("--no-preview", action="store_true", help="no window (headless); use with -o to record")
    src.add_argument("--virtual-cam", action="store_true",
                     help="publish the enhanced stream as a camera device (needs realtime-enhance[virtualcam])")
    src.add_argument("--serve", metavar="[HOST:]PORT", help="serve the live picture to browsers (default host 127.0.0.1)")
    src.add_argument("--serve-token", metavar="TOKEN", default=os.environ.get("REALTIME_ENHANCE_TOKEN"),
                     help="require this token on every request (default: $REALTIME_ENHANCE_TOKEN; made for "
                          "you when serving beyond 127.0.0.1)")
    src.add_argument("--serve-token-file", metavar="PATH", type=Path,
                     help="read the token from this file (kept out of the process list)")
    src.add_argument("--serve-host", metavar="NAME", action="append",
                     help="a host name browsers may use for the server besides its addresses (repeatable)")
    p.add_argument("--demo", action="store_true", help="enhance a generated low-light clip (needs no media)")
    p.add_argument("--side-by-side", action="store_true", help="write/show before|after instead of the result alone")
    eng = p.add_argument_group("engine")
    eng.add_argument("--weights", type=Path, help="checkpoint (default: the bundled weights)")
    eng.add_argument("--backend", choices=BACKENDS, default="auto", help="inference backend (default: auto)")
    eng.add_argument("--strength", type=float, default=1.0,
                     help="0 = unchanged, 1 = the model's curves (default), up to 2 = stronger; live: +/- keys, "
                          "browser slider")
    eng.add_argument("--exposure", type=float, metavar="E",
                     help="aim at this mean brightness (0..1) instead: the strength is chosen per frame")
    eng.add_argument("--denoise", type=parse_denoise, default="auto", metavar="{auto,off,0..1}",
                     help="temporal denoising of video and live sources: auto (strength from the stream's noise, "
                          "the default), off, or a strength from 0 to 1")
    enc = p.add_argument_group("encoding")
    enc.add_argument("--codec", help="video encoder (default: libx264, H.264; libvpx-vp9 for .webm)")
    enc.add_argument("--crf", type=int, default=18, help="constant rate factor (default: 18; 0 = lossless for x264)")
    enc.add_argument("--preset", default="veryfast", help="x264/x265 preset (default: veryfast)")
    p.add_argument("--jobs", type=int, metavar="N",
                   help="folders: enhance N files at once in worker processes (default: as many as make this "
                        "machine faster: the cores up to 4, half of them beyond)")
    p.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="folders and long files: run on a Ray cluster ($RAY_ADDRESS, ADDRESS, or a local one); "
                        "needs realtime-enhance[ray]")
    p.add_argument("--overwrite", action="store_true",
                   help="folders: redo outputs that an earlier run finished (default: skip them)")
    p.add_argument("--queue-size", type=int, default=4, help="frames buffered between stages (default: 4)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    p.add_argument("-v", "--verbose", action="store_true", help="more messages; full tracebacks on errors")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return p


# --- the runs ----------------------------------------------------------------------------


class Progress:
    """A tqdm bar on stderr when it is a terminal (frames, fps, ETA)."""

    def __init__(self, total: int, label: str, enabled: bool) -> None:
        self.bar = None
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total or None, desc=label, unit="frame", dynamic_ncols=True, leave=False)

    def __call__(self, stats: Stats) -> None:
        if self.bar is not None:
            self.bar.update(stats.written - self.bar.n)
            if stats.dropped:  # live sources only
                self.bar.set_postfix(dropped=stats.dropped, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run_pipeline(pipeline: Pipeline, total: int, label: str, args: argparse.Namespace) -> Stats:
    report = getattr(args, "report", None)  # a worker's: frames written so far, to the main process's bar
    progress = Progress(total, label, not args.quiet and report is None)

    def tick(stats: Stats) -> None:
        progress(stats)
        if report is not None:
            report(stats.written)

    try:
        return pipeline.run(on_tick=tick)
    except KeyboardInterrupt:
        progress.close()
        print(f"realtime-enhance: {label}: interrupted after {pipeline.stats.written} frames", file=sys.stderr)
        raise
    finally:
        progress.close()
        args.finished.extend(sink.path for sink in pipeline.sinks if isinstance(getattr(sink, "path", None), Path))


def default_output(path: Path) -> Path:
    """NAME_enhanced.EXT beside the input (an animated GIF becomes an MP4)."""
    return path.with_name(f"{path.stem}_enhanced{'.mp4' if path.suffix.lower() == '.gif' else path.suffix}")


def same_file(a: Path, b: Path) -> bool:
    """Whether two names are one file: the same inode (hard links, symlinks, ./ or case
    variants on case-insensitive filesystems), or the same resolved path."""
    try:
        return a.resolve() == b.resolve() or (b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def enhance_video(spec: str, output: Path, engine: "LazyEnhancer", args: argparse.Namespace,
                  keep_incomplete_partial: bool = False) -> Stats:
    if spec != STDIN and same_file(Path(spec), output):
        raise UsageError(f"{output}: output would overwrite the input")
    source = VideoFileSource(spec)
    try:
        sink = VideoFileSink(output, source.info, args.codec, args.crf, args.preset, show_both=args.side_by_side,
                             threads=getattr(args, "threads", None) or 0, keep_incomplete_partial=keep_incomplete_partial)
    except Exception:
        source.close()
        raise
    log.debug("%s: %dx%d, %s, %d-bit%s", source.label, source.width, source.height, source.colour, source.bits,
              f" (untagged: assumed {source.colour.guessed})" if source.colour.guessed else "")
    stats = run_pipeline(Pipeline(source, engine.video(), [sink], args.queue_size), source.frame_count,
                         Path(source.label).name, args)
    report(f"{source.label} -> {output}", stats, args)
    if source.damage:
        log.warning("%s: %s", source.label, source.damage.describe(source.fps))
    if stats.source_error:
        raise SourceError(stats.source_error)
    return stats


def live_sinks(info, args: argparse.Namespace, engine: "LazyEnhancer") -> list:
    """The sinks of a live run: recording, preview window, browser view, virtual camera."""
    sinks: list = []
    try:
        if args.output:
            sinks.append(VideoFileSink(args.output, info, args.codec, args.crf, args.preset,
                                       show_both=args.side_by_side))
        if args.virtual_cam:
            sinks.append(VirtualCameraSink(info.width, info.height, info.fps))
        if args.serve:
            sinks.append(browser_sink(args, engine.controls))
        if not args.no_preview:
            sinks.append(PreviewSink(args.side_by_side, engine.controls))
        if not sinks:
            raise UsageError("--no-preview without -o, --serve or --virtual-cam would show and save nothing")
    except Exception:
        for sink in sinks:
            sink.close(complete=False)
        raise
    return sinks


def enhance_live(spec: str, engine: "LazyEnhancer", args: argparse.Namespace) -> Stats:
    source = CameraSource(spec, args.size, args.fps)
    try:
        sinks = live_sinks(source.info, args, engine)
    except Exception:
        source.close()
        raise
    log.info("camera %s: %dx%d at %.1f fps", spec, source.width, source.height, source.fps)
    stats = run_pipeline(Pipeline(source, engine.video(), sinks, args.queue_size), 0, f"camera {spec}", args)
    report(f"camera {spec}", stats, args)
    if stats.source_error:  # the stream ended by itself (unplugged, network lost): flushed, but a failure
        raise SourceError(stats.source_error)
    return stats


def enhance_images(paths: list[Path], root: Path, sink: ImageSink, engine: "LazyEnhancer", args: argparse.Namespace) -> int:
    source = ImageSource(paths, root)
    stats = run_pipeline(Pipeline(source, engine.photos(), [sink], args.queue_size), len(paths), "images", args)
    report(f"{len(paths)} images", stats, args)
    return len(source.failed)


@dataclass(frozen=True)
class Job:
    """One file of a folder run: enhance `source` into `target`."""

    source: Path
    target: Path
    kind: str  # "image" or "video"


@dataclass
class FolderPlan:
    jobs: list[Job]
    done: list[Path]  # outputs that exist already (finished by an earlier run)
    unsupported: list[Path]  # neither images nor videos


def plan_folder(folder: Path, output: Path, overwrite: bool) -> FolderPlan:
    """Every image and video under `folder`, to be written under `output` with the same
    relative names (animated GIFs become MP4). Outputs only ever appear finished (they are
    written under a temporary name), so one that exists is done, unless `overwrite`."""
    if same_file(folder, output):
        raise UsageError(f"{output}: output folder would overwrite the input")
    inside = output.resolve()
    files = sorted(p for p in folder.rglob("*") if p.is_file() and inside not in p.resolve().parents)
    plan = FolderPlan([], [], [])
    for path in files:
        suffix = path.suffix.lower()
        kind = "image" if suffix in IMAGE_SUFFIXES else "video" if suffix in VIDEO_SUFFIXES | {".gif"} else None
        if kind is None:
            plan.unsupported.append(path)
            continue
        target = output / path.relative_to(folder)
        if suffix == ".gif":
            target = target.with_suffix(".mp4")
        if target.exists() and not overwrite:
            plan.done.append(target)
        else:
            plan.jobs.append(Job(path, target, kind))
    if not plan.jobs and not plan.done:
        raise SourceError(f"{folder}: no images or videos inside")
    return plan


def enhance_folder(folder: Path, output: Path, engine: "LazyEnhancer", args: argparse.Namespace) -> int:
    """Every image and video under `folder`, written under `output`; returns the failures."""
    plan = plan_folder(folder, output, args.overwrite)
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
    videos = sum(job.kind == "video" for job in plan.jobs)
    jobs = args.jobs or default_jobs(videos)
    if args.ray is not None or (jobs > 1 and len(plan.jobs) > 1):
        args.jobs = jobs
        return run_elsewhere(plan.jobs, args)
    images = [job.source for job in plan.jobs if job.kind == "image"]
    failures = enhance_images(images, folder, ImageSink(root=output, show_both=args.side_by_side), engine, args) \
        if images else 0
    for job in (j for j in plan.jobs if j.kind == "video"):
        job.target.parent.mkdir(parents=True, exist_ok=True)
        try:
            enhance_video(str(job.source), job.target, engine, args, keep_incomplete_partial=True)
        except (SourceError, SinkError) as exc:
            log.warning("%s", exc)
            failures += 1
    return failures


def default_jobs(files: int) -> int:
    """Workers that make this machine faster (measured on 2 cores: 2 workers do 8 short clips
    3-12 % sooner than 1, benchmarks/batch.py; one pipeline leaves cores idle while files
    open and close, and x264 and the engine scale less than linearly on many cores)."""
    cores = cpu_count()
    return max(1, min(files, cores if cores <= 4 else cores // 2))


def run_elsewhere(jobs: list, args: argparse.Namespace) -> int:
    """Folder jobs in worker processes (--jobs) or on a Ray cluster (--ray); returns failures."""
    start = time.monotonic()
    if args.ray is not None:
        from .distributed import run_on_ray

        outcomes = run_on_ray(jobs, args)
    else:
        from .batch import run_parallel

        outcomes = run_parallel(jobs, args, args.jobs)
    failed = [o for o in outcomes if o.error]
    for outcome in failed:
        log.warning("%s", outcome.error)
    if not args.quiet:
        frames = sum(o.frames for o in outcomes)
        print(f"{len(outcomes) - len(failed)} of {len(jobs)} files, {frames} frames in "
              f"{time.monotonic() - start:.1f} s", file=sys.stderr)
    return len(failed)


def report(label: str, stats: Stats, args: argparse.Namespace) -> None:
    if args.quiet:
        return
    line = f"{label}: {stats.written} frames at {stats.fps:.1f} fps"
    if stats.dropped:
        line += f", {stats.dropped} dropped to stay live"
    print(line, file=sys.stderr)


class LazyEnhancer:
    """The engine, loaded on first use: bad input fails before the model loads. Images get
    the per-frame Enhancer with its photo filter; video and live streams the VideoEnhancer around it (temporal
    denoise and smoothed curves; the pipeline resets it for each stream)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.controls = Controls(strength=args.strength, exposure=args.exposure)
        self._enhancer = None
        self._video = None

    def get(self):
        if self._enhancer is None:
            from .engine import Enhancer

            self._enhancer = Enhancer(self.args.weights, backend=self.args.backend, controls=self.controls,
                                      threads=getattr(self.args, "threads", None))
            log.debug("engine: %s backend, %s", self._enhancer.backend.name, self._enhancer.config)
        return self._enhancer

    def photos(self):
        """Photographs: the Enhancer with its edge-preserving filter (Enhancer.enhance_photo)."""
        return self.get().enhance_photo

    def video(self):
        if self._video is None:
            from .temporal import VideoEnhancer

            self._video = VideoEnhancer(self.get(), denoise=self.args.denoise)
        return self._video

    def close(self) -> None:
        if self._video is not None:
            self._video.close()
        elif self._enhancer is not None:
            self._enhancer.close()


def serve_token(args: argparse.Namespace) -> str | None:
    """The browser view's token: --serve-token, --serve-token-file or $REALTIME_ENHANCE_TOKEN;
    an empty one is refused (it would let everyone in)."""
    token = args.serve_token
    if args.serve_token_file is not None:
        try:
            token = args.serve_token_file.read_text().strip()
        except OSError as exc:
            raise UsageError(f"--serve-token-file: {args.serve_token_file}: {exc.strerror}") from None
    if token is not None and not token.strip():
        raise UsageError("--serve-token: an empty token would let everyone in; give a token, or none on 127.0.0.1")
    return token


def browser_sink(args: argparse.Namespace, controls: Controls):
    """The browser view for --serve. Beyond loopback a token is required: without one, one
    is made and its address printed once (it is not logged anywhere else)."""
    import secrets

    from .browser import BrowserSink, is_loopback, parse_address

    address = parse_address(args.serve)
    token, made = args.serve_token, False
    if token is None and not is_loopback(address[0]):
        token, made = secrets.token_urlsafe(18), True
    server = BrowserSink(address, controls, token, hosts=tuple(args.serve_host or ()))
    if made:
        print(f"realtime-enhance: {address[0]} is reachable from the network: made a token for this run; "
              f"watch at {server.url}", file=sys.stderr)
    elif not args.quiet:
        print(f"realtime-enhance: watch at {server.url}", file=sys.stderr)
    return server


def check_settings(args: argparse.Namespace) -> None:
    """Usage errors in the encoder and capture settings, before anything is opened."""
    if args.queue_size < 1:
        raise UsageError("--queue-size must be at least 1")
    if args.jobs is not None and args.jobs < 1:
        raise UsageError(f"--jobs must be at least 1, got {args.jobs}")
    if args.fps is not None and not args.fps > 0:
        raise UsageError(f"--fps must be positive, got {args.fps:g}")
    if not 0 <= args.strength <= MAX_STRENGTH:
        raise UsageError(f"--strength must be from 0 to {MAX_STRENGTH:g}, got {args.strength:g}")
    if args.exposure is not None and not 0 < args.exposure < 1:
        raise UsageError(f"--exposure must be between 0 and 1, got {args.exposure:g}")
    if args.serve:
        from .browser import parse_address

        try:
            parse_address(args.serve)
        except ValueError as exc:
            raise UsageError(f"--serve: {exc}") from None
        args.serve_token = serve_token(args)
    if args.virtual_cam:  # before any camera is opened: say at once what is missing
        VirtualCameraSink(64, 48, 30).close()
    codec = args.codec or (default_codec(args.output) if args.output else "libx264")
    low, high = CRF_CODECS.get(codec, (0, 63))
    if not low <= args.crf <= high:
        raise UsageError(f"--crf must be between {low} and {high} for {codec}, got {args.crf}")
    if codec in ("libx264", "libx265") and args.preset not in X26X_PRESETS:
        raise UsageError(f"--preset must be one of {', '.join(X26X_PRESETS)}; got {args.preset!r}")


def dispatch(args: argparse.Namespace, engine: LazyEnhancer) -> int:
    check_settings(args)
    spec = args.webcam if args.webcam is not None else args.input
    if args.demo:
        return run_demo(args, engine)
    if spec is None:
        raise UsageError("give an input (file, folder, camera, URL), --webcam N or --demo")
    if args.webcam is not None and args.input is not None:
        raise UsageError("give either an input or --webcam, not both")
    if args.webcam is not None or is_live(spec):
        enhance_live(spec, engine, args)
        return EXIT_OK
    if spec == STDIN:
        if args.output is None:
            raise UsageError("reading stdin needs -o OUTPUT")
        enhance_video(STDIN, args.output, engine, args)
        return EXIT_OK
    path = Path(spec)
    if not path.exists():
        raise SourceError(f"{path}: no such file or folder")
    if path.is_dir():
        if args.output is None:
            raise UsageError("a folder needs -o OUTPUT_FOLDER")
        failures = enhance_folder(path, args.output, engine, args)
        if failures:
            raise SourceError(f"{failures} file(s) could not be enhanced (see the warnings above)")
        return EXIT_OK
    output = args.output or default_output(path)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        if same_file(path, output):
            raise UsageError(f"{output}: output would overwrite the input")
        if output.suffix.lower() not in IMAGE_SUFFIXES:
            raise UsageError(f"{output}: an image needs an image output ({', '.join(sorted(IMAGE_SUFFIXES))})")
        if enhance_images([path], path.parent, ImageSink(path=output, show_both=args.side_by_side), engine, args):
            raise SourceError(f"{path}: not a readable image")
        return EXIT_OK
    if output.suffix.lower() in IMAGE_SUFFIXES:
        raise UsageError(f"{output}: a video needs a video output (.mp4, .mkv, ...)")
    if args.ray is not None:  # a long file in chunks across a cluster
        if same_file(path, output):
            raise UsageError(f"{output}: output would overwrite the input")
        from .distributed import run_file_on_ray

        outcome = run_file_on_ray(spec, output, args)
        if outcome.error:
            raise SourceError(outcome.error)
        return EXIT_OK
    enhance_video(spec, output, engine, args)
    return EXIT_OK


def run_demo(args: argparse.Namespace, engine: LazyEnhancer) -> int:
    """The generated low-light clip: written before | after to a file, or, with --serve or
    --virtual-cam, played live (looping at its frame rate) until stopped."""
    if args.serve or args.virtual_cam:
        source = DemoSource(live=True)
        sinks = live_sinks(source.info, args, engine)
        stats = run_pipeline(Pipeline(source, engine.video(), sinks, args.queue_size), 0, "demo", args)
        report("demo", stats, args)
        return EXIT_OK
    output = args.output or Path("demo.mp4")
    source = DemoSource()
    sink = VideoFileSink(output, source.info, args.codec, args.crf, args.preset, show_both=True)
    stats = run_pipeline(Pipeline(source, engine.video(), [sink], args.queue_size), source.frame_count, "demo", args)
    report(f"demo (left: generated low-light input, right: enhanced) -> {output}", stats, args)
    return EXIT_OK


def interrupted(args: argparse.Namespace) -> str:
    """What an interruption leaves, said truthfully."""
    written = [p for p in getattr(args, "finished", []) if p.exists()]
    if written:
        return f"interrupted; {written[-1]} was finished and plays, with every frame enhanced so far"
    return "interrupted; nothing was written"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["export"]:  # realtime-enhance export model.onnx: for inference servers
        from .export import main as export

        return export(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 with a one-line message on bad usage
    args.finished = []  # outputs closed so far (a stopped run's included)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("realtime-enhance: %(message)s"))
    log.addHandler(handler)
    log.propagate = False
    log.setLevel(logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO)
    if threading.current_thread() is threading.main_thread():
        from .__main__ import terminate

        signal.signal(signal.SIGTERM, terminate)
    engine = LazyEnhancer(args)
    try:
        return dispatch(args, engine)
    except KeyboardInterrupt:
        print(f"realtime-enhance: {interrupted(args)}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except UsageError as exc:
        print(f"realtime-enhance: error: {exc} (see --help)", file=sys.stderr)
        return EXIT_USAGE
    except BackendUnavailable as exc:
        print(f"realtime-enhance: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (SourceError, SinkError, CheckpointError) as exc:
        print(f"realtime-enhance: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except Exception as exc:  # anything else: one line, the traceback only with --verbose
        if args.verbose:
            raise
        detail = str(exc).splitlines()[0] if str(exc) else ""
        print(f"realtime-enhance: error: {exc.__class__.__name__}: {detail} (--verbose for details)", file=sys.stderr)
        return EXIT_FAILURE
    finally:
        engine.close()


if __name__ == "__main__":
    sys.exit(main())
