"""Frame sources: video files (PyAV), live cameras and streams (OpenCV), images, a demo clip.

A source is an iterable of :class:`Frame` plus a description of the stream. Sources
check their input when constructed (so bad input fails before any thread starts) and
release it in `close()`.
"""
from __future__ import annotations

import logging
import os
import platform
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import cv2
import numpy as np

log = logging.getLogger("realtime")

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
LIVE_PREFIXES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://", "/dev/video")


class SourceError(RuntimeError):
    """The input cannot be opened or read; the message is meant for the user."""


@dataclass
class Frame:
    """One frame on its way through the pipeline.

    image: (H, W, 3) uint8 RGB as captured; enhanced: the engine's output, once done.
    pts / time_base: presentation time as in the input (None for images).
    captured: time.monotonic() when the source produced it (live latency is measured from it).
    """

    image: np.ndarray
    index: int
    pts: int | None = None
    time_base: Fraction | None = None
    captured: float = field(default_factory=time.monotonic)
    enhanced: np.ndarray | None = None
    enhanced_at: float = 0.0
    name: str = ""  # relative output name, for image sources
    rotation: int = 0  # display rotation (degrees counter-clockwise) the input asks players for


def _opened_container(path: Path) -> "av.container.InputContainer":
    if not path.exists():
        raise SourceError(f"{path}: no such file")
    if path.is_dir():
        raise SourceError(f"{path}: is a directory, not a video")
    try:
        container = av.open(str(path), mode="r")
    except av.error.FFmpegError as exc:
        if _mp4_without_index(path):
            raise SourceError(f"{path}: truncated MP4/MOV: its index (the 'moov' box, written when a recording "
                              "is finished) is missing, so no frame can be located") from None
        raise SourceError(f"{path}: not a readable video ({exc.strerror or exc.__class__.__name__})") from None
    if not container.streams.video:
        container.close()
        raise SourceError(f"{path}: has no video stream")
    return container


def _mp4_without_index(path: Path) -> bool:
    """True for an ISO-BMFF file (MP4, MOV) whose top-level boxes hold no 'moov'."""
    try:
        with path.open("rb") as f:
            size = path.stat().st_size
            pos, kinds = 0, []
            while pos + 8 <= size and len(kinds) < 1000:
                f.seek(pos)
                header = f.read(16)
                length, kind = int.from_bytes(header[:4], "big"), header[4:8]
                if length == 1 and len(header) == 16:
                    length = int.from_bytes(header[8:16], "big")
                kinds.append(kind)
                if length < 8:
                    break
                pos += length
    except OSError:
        return False
    return bool(kinds) and kinds[0] == b"ftyp" and b"moov" not in kinds


class VideoFileSource:
    """Decodes the first video stream of a file, every frame, with its timestamps."""

    live = False

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.container = _opened_container(self.path)
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"
        cc = self.stream.codec_context
        self.width, self.height = cc.width, cc.height
        self.time_base = self.stream.time_base
        self.fps = float(self.stream.average_rate or self.stream.guessed_rate or 30)
        self.frame_count = self.stream.frames or (
            int(self.stream.duration * self.time_base * self.fps) if self.stream.duration else 0
        )
        if self.width < 1 or self.height < 1:
            raise SourceError(f"{self.path}: video stream has no picture size")
        self.error: str | None = None  # set when decoding stops early on bad data

    def __iter__(self) -> Iterator[Frame]:
        index, last = 0, 0.0
        try:
            for vf in self.container.decode(self.stream):
                yield Frame(vf.to_ndarray(format="rgb24"), index, vf.pts, vf.time_base or self.time_base,
                            rotation=vf.rotation)
                index += 1
                last = float(vf.time or 0.0)
        except av.error.FFmpegError as exc:
            # A corrupt file: keep what decoded, report the rest.
            self.error = f"{self.path}: decoding stopped after {index} frames ({exc.strerror or exc})"
        if self.error is None:
            self.error = self._shortfall(index, last)

    def _shortfall(self, decoded: int, last: float) -> str | None:
        """A message when fewer frames decoded than the file announces (a truncated file
        ends without a decoding error)."""
        if decoded == 0:
            return f"{self.path}: no frame could be decoded"
        if self.stream.frames and decoded < self.stream.frames:
            return f"{self.path}: only {decoded} of {self.stream.frames} frames could be decoded (truncated?)"
        # The video stream's own duration; the container's only when nothing else
        # (a longer audio track) can make it longer than the video.
        if self.stream.duration:
            duration = float(self.stream.duration * self.time_base)
            start = float((self.stream.start_time or 0) * self.time_base)
        elif self.container.duration and len(self.container.streams) == 1:
            duration = self.container.duration / av.time_base
            start = (self.container.start_time or 0) / av.time_base
        else:
            return None
        if duration and last - start < duration - 2.0 / self.fps - 0.25:
            return (f"{self.path}: decoding stopped at {last - start:.2f} s of {duration:.2f} s "
                    f"after {decoded} frames (truncated?)")
        return None

    def close(self) -> None:
        self.container.close()


def _camera_target(spec: str | int) -> str | int:
    if isinstance(spec, int) or str(spec).isdigit():
        return int(spec)
    return str(spec)


class CameraSource:
    """A live camera or network stream through OpenCV. Frames carry capture times;
    pts are microseconds since the first frame."""

    live = True
    time_base = Fraction(1, 1_000_000)

    def __init__(self, spec: str | int, size: tuple[int, int] | None = None, fps: float | None = None,
                 open_timeout: float = 5.0) -> None:
        self.spec = spec
        target = _camera_target(spec)
        if isinstance(target, int) or target.startswith("/dev/video"):
            linux = platform.system() == "Linux"
            node = f"/dev/video{target}" if isinstance(target, int) else target
            if (linux or isinstance(target, str)) and not os.path.exists(node):
                # Checked here: OpenCV would print its own warnings and fail slowly.
                raise SourceError(f"camera {target}: no such device ({node} does not exist)")
            self.capture = cv2.VideoCapture(target, cv2.CAP_V4L2 if linux else cv2.CAP_ANY)
        else:
            params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(open_timeout * 1000),
                      cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(open_timeout * 1000)]
            self.capture = cv2.VideoCapture(target, cv2.CAP_FFMPEG, params)
        if not self.capture.isOpened():
            raise SourceError(f"camera {spec}: cannot be opened")
        if size:
            self.capture.set(cv2.CAP_PROP_FRAME_WIDTH, size[0])
            self.capture.set(cv2.CAP_PROP_FRAME_HEIGHT, size[1])
        if fps:
            self.capture.set(cv2.CAP_PROP_FPS, fps)
        ok, first = self.capture.read()
        if not ok or first is None:
            self.capture.release()
            raise SourceError(f"camera {spec}: opened but delivers no frames")
        self._first = first
        self.height, self.width = first.shape[:2]
        self.fps = float(self.capture.get(cv2.CAP_PROP_FPS) or fps or 30)
        self.frame_count = 0
        self.error: str | None = None
        if size and (self.width, self.height) != tuple(size):
            log.warning("camera %s: asked for %dx%d, delivers %dx%d", spec, *size, self.width, self.height)

    def __iter__(self) -> Iterator[Frame]:
        start = time.monotonic()
        bgr, index = self._first, 0
        while bgr is not None:
            now = time.monotonic()
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            yield Frame(rgb, index, int((now - start) * 1_000_000), self.time_base, captured=now)
            index += 1
            ok, bgr = self.capture.read()
            if not ok:
                self.error = f"camera {self.spec}: stream ended after {index} frames"
                return

    def close(self) -> None:
        self.capture.release()


def read_image(path: Path) -> np.ndarray | None:
    """An image file as (H, W, 3) uint8 RGB, or None when it cannot be decoded."""
    data = np.fromfile(str(path), dtype=np.uint8) if path.is_file() else None
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data is not None and data.size else None
    return None if image is None else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


class ImageSource:
    """Still images; each Frame's `name` is its path relative to `root`. Unreadable
    files are skipped, logged and listed in `failed`."""

    live = False
    time_base = None
    fps = 0.0

    def __init__(self, paths: list[Path], root: Path) -> None:
        self.paths, self.root = paths, root
        self.frame_count = len(paths)
        self.failed: list[Path] = []
        self.error: str | None = None

    def __iter__(self) -> Iterator[Frame]:
        for index, path in enumerate(self.paths):
            image = read_image(path)
            if image is None:
                log.warning("%s: not a readable image, skipped", path)
                self.failed.append(path)
                continue
            yield Frame(image, index, name=str(path.relative_to(self.root)))
        if self.failed:
            self.error = f"{len(self.failed)} of {len(self.paths)} images could not be read"

    def close(self) -> None:
        pass


class DemoSource:
    """A synthetic low-light clip: FFmpeg's testsrc2 pattern (through PyAV's lavfi),
    darkened with a gamma curve and given shot and read noise like a small sensor."""

    live = False
    time_base = Fraction(1, 30)

    def __init__(self, seconds: float = 4.0, size: tuple[int, int] = (640, 360), fps: int = 30, seed: int = 0) -> None:
        self.width, self.height = size
        self.fps = float(fps)
        self.time_base = Fraction(1, fps)
        self.frame_count = int(seconds * fps)
        self.spec = f"testsrc2=size={self.width}x{self.height}:rate={fps}:duration={seconds}"
        self.rng = np.random.default_rng(seed)
        self.error: str | None = None

    def __iter__(self) -> Iterator[Frame]:
        with av.open(self.spec, format="lavfi") as container:
            for index, vf in enumerate(container.decode(video=0)):
                yield Frame(self._darken(vf.to_ndarray(format="rgb24")), index, index, self.time_base)

    def _darken(self, rgb: np.ndarray) -> np.ndarray:
        x = (rgb.astype(np.float32) / 255) ** 2.2 * 0.12  # ~3 stops under, linear-ish
        noise = self.rng.normal(0, 1, x.shape).astype(np.float32) * np.sqrt(x * 0.002 + 0.00002)
        return np.clip((x + noise) * 255 + 0.5, 0, 255).astype(np.uint8)

    def close(self) -> None:
        pass


def is_live(spec: str) -> bool:
    """True for camera indices, device nodes and network URLs."""
    return spec.isdigit() or spec.startswith(LIVE_PREFIXES)
