"""The `realtime-enhance` command: it parses, checks and dispatches; the runs themselves
are realtime.runs (one input) and realtime.folder (a folder, serial, --jobs or --ray).
Exit codes: 0 success, 1 runtime failure, 2 usage error, 130 interrupted (129: SIGHUP)."""
from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from pathlib import Path

from . import __version__
from .backends import BACKENDS, BackendUnavailable
from .checkpoint import CheckpointError
from .controls import MAX_STRENGTH
from .errors import MissingDependency, RunError
from .runs import Run, Settings, UsageError, check_not_input, job_kind, quiet_native_libraries, tell, video_output
from .signals import exit_status, stop_on_sigterm
from .sinks import CRF_CODECS, X26X_PRESETS, SinkError, VirtualCameraSink, default_codec
from .sources import IMAGE_SUFFIXES, STDIN, SourceError, is_live

log = logging.getLogger("realtime")

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

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
    src.add_argument("--fps", type=float, help="ask the camera for this frame rate; a raw H.264/HEVC stream's rate")
    src.add_argument("--no-preview", action="store_true", help="no window (headless); use with -o to record")
    src.add_argument("--virtual-cam", action="store_true",
                     help="publish the enhanced stream as a camera device (needs the virtualcam extra)")
    src.add_argument("--serve", metavar="[HOST:]PORT", help="serve the live picture to browsers (default host 127.0.0.1)")
    src.add_argument("--serve-token", metavar="TOKEN", default=os.environ.get("REALTIME_ENHANCE_TOKEN"),
                     help="require this token on every request (default: $REALTIME_ENHANCE_TOKEN; made for "
                          "you when serving beyond 127.0.0.1)")
    src.add_argument("--serve-token-file", metavar="PATH", type=Path,
                     help="read the token from this file (kept out of the process list)")
    src.add_argument("--serve-host", metavar="NAME", action="append",
                     help="a host name browsers may use for the server besides its addresses (repeatable)")
    src.add_argument("--live", action=argparse.BooleanOptionalAction, help="read the input as a live stream "
                     "(newest frame first) or as a file (every frame); default: cameras and streams live")
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
                        "needs the ray extra")
    p.add_argument("--overwrite", action="store_true",
                   help="folders: redo outputs that an earlier run finished (default: skip them)")
    p.add_argument("--queue-size", type=int, default=4, help="frames buffered between stages (default: 4)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    p.add_argument("-v", "--verbose", action="store_true", help="more messages; full tracebacks on errors")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return p


# --- checks and settings ------------------------------------------------------------------


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


def check_arguments(args: argparse.Namespace) -> None:
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
    if args.virtual_cam:  # before any camera is opened: say at once what is missing
        VirtualCameraSink(64, 48, 30).close()
    codec = args.codec or (default_codec(args.output) if args.output else "libx264")
    low, high = CRF_CODECS.get(codec, (0, 63))
    if not low <= args.crf <= high:
        raise UsageError(f"--crf must be between {low} and {high} for {codec}, got {args.crf}")
    if codec in ("libx264", "libx265") and args.preset not in X26X_PRESETS:
        raise UsageError(f"--preset must be one of {', '.join(X26X_PRESETS)}; got {args.preset!r}")


def settings_from(args: argparse.Namespace) -> Settings:
    """The run's settings, made once from checked arguments."""
    return Settings(
        weights=args.weights, backend=args.backend, strength=args.strength, exposure=args.exposure,
        denoise=args.denoise, codec=args.codec, crf=args.crf, preset=args.preset, side_by_side=args.side_by_side,
        queue_size=args.queue_size, quiet=args.quiet, camera_size=args.size, fps=args.fps,
        record=args.output, virtual_cam=args.virtual_cam, serve=args.serve,
        serve_token=serve_token(args) if args.serve else None, serve_hosts=tuple(args.serve_host or ()),
        preview=not args.no_preview)


# --- dispatch ------------------------------------------------------------------------------


def default_output(path: Path) -> Path:
    """NAME_enhanced.EXT beside the input (an animated GIF becomes an MP4)."""
    return video_output(path.with_name(f"{path.stem}_enhanced{path.suffix}"))


def dispatch(args: argparse.Namespace, run: Run) -> None:
    spec = args.webcam if args.webcam is not None else args.input
    if args.demo:
        return run.demo(args.output)
    if spec is None:
        raise UsageError("give an input (file, folder, camera, URL), --webcam N or --demo")
    if args.webcam is not None and args.input is not None:
        raise UsageError("give either an input or --webcam, not both")
    live = args.live if args.live is not None else (args.webcam is not None and spec.isdigit()) or is_live(spec)
    if spec.startswith(("http://", "https://")) or (args.webcam is not None and not live):  # say how it is read
        log.info("%s: read as %s", spec, "a live stream (--no-live: every frame)" if live else "a file (--live: not)")
    if live:
        run.camera(spec)
        return
    if spec == STDIN or "://" in spec:
        if args.output is None:
            raise UsageError(f"reading {'stdin' if spec == STDIN else 'a URL'} needs -o OUTPUT")
        run.video(spec, args.output)
        return
    path = Path(spec)
    if not path.exists():
        raise SourceError(f"{path}: no such file or folder")
    if path.is_dir():
        if args.output is None:
            raise UsageError("a folder needs -o OUTPUT_FOLDER")
        from .folder import enhance_folder

        failures = enhance_folder(path, args.output, run, args.jobs, args.ray, args.overwrite)
        if failures:
            raise RunError(f"{failures} file(s) could not be enhanced (see the warnings above)")
        return
    output = args.output or default_output(path)
    check_not_input(path, output)
    if job_kind(path) == "image":
        if output.suffix.lower() not in IMAGE_SUFFIXES:
            raise UsageError(f"{output}: an image needs an image output ({', '.join(sorted(IMAGE_SUFFIXES))})")
        run.image(path, output)
        return
    if output.suffix.lower() in IMAGE_SUFFIXES:
        raise UsageError(f"{output}: a video needs a video output (.mp4, .mkv, ...)")
    if args.ray is not None:  # a long file in chunks across a cluster
        from .distributed import run_file_on_ray

        outcome = run_file_on_ray(path, output, run.settings, args.ray)
        if outcome.error:
            raise RunError(outcome.error)
        return
    run.video(spec, output)


def interrupted(run: Run | None) -> str:
    """What an interruption leaves, said truthfully."""
    written = [p for p in (run.finished if run else []) if p.exists()]
    if len(written) > 1:
        return f"interrupted; {len(written)} files were finished and play (the last: {written[-1]})"
    if written:
        return f"interrupted; {written[-1]} was finished and plays, with every frame enhanced so far"
    return "interrupted; nothing was written"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["export"]:  # realtime-enhance export model.onnx: for inference servers
        from .export import main as export

        return export(argv[1:])
    args = build_parser().parse_args(argv)  # exits 2 with a one-line message on bad usage
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("realtime-enhance: %(message)s"))
    log.addHandler(handler)
    log.propagate = False
    log.setLevel(logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO)
    quiet_native_libraries(args.verbose)
    if threading.current_thread() is threading.main_thread():
        stop_on_sigterm()
    run = None
    try:
        check_arguments(args)
        run = Run(settings_from(args))
        dispatch(args, run)
        return EXIT_OK
    except KeyboardInterrupt as stop:
        tell(f"realtime-enhance: {interrupted(run)}")
        return exit_status(stop)
    except UsageError as exc:
        print(f"realtime-enhance: error: {exc} (see --help)", file=sys.stderr)
        return EXIT_USAGE
    except BackendUnavailable as exc:
        print(f"realtime-enhance: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (SourceError, SinkError, CheckpointError, MissingDependency, RunError) as exc:
        print(f"realtime-enhance: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except Exception as exc:  # anything else: one line, the traceback only with --verbose
        if args.verbose:
            raise
        detail = str(exc).splitlines()[0] if str(exc) else ""
        print(f"realtime-enhance: error: {exc.__class__.__name__}: {detail} (--verbose for details)", file=sys.stderr)
        return EXIT_FAILURE
    finally:
        if run is not None:
            run.close()


if __name__ == "__main__":
    sys.exit(main())
