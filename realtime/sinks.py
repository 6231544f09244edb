"""Frame sinks: video files (PyAV, audio remuxed), a preview window (OpenCV), image files.

A sink's `write(frame)` returns False when the user asked to stop (closed the preview);
`close()` flushes and releases everything, and is safe to call after an error.
"""
from __future__ import annotations

import logging
import os
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from .sources import Frame

log = logging.getLogger("realtime")


class SinkError(RuntimeError):
    """The output cannot be written; the message is meant for the user."""


def check_output_path(path: Path) -> None:
    """Fail early, with a clear message, when `path` cannot be created."""
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise SinkError(f"{path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise SinkError(f"{path}: directory {parent} is not writable")
    if path.is_dir():
        raise SinkError(f"{path}: is a directory")


def side_by_side(frame: Frame) -> np.ndarray:
    """Before | after, as one (H, 2W, 3) image."""
    return np.concatenate([frame.image, frame.enhanced], axis=1)


class VideoFileSink:
    """Encodes enhanced frames with their original timestamps and copies the audio and
    subtitle streams of `copy_from` (the input file) without re-encoding them.

    codec/crf/preset: the video encoder (H.264 yuv420p by default). Odd sizes are padded
    by one edge pixel, since 4:2:0 needs even ones.
    """

    def __init__(self, path: str | Path, width: int, height: int, fps: float, time_base: Fraction | None,
                 codec: str = "libx264", crf: int = 18, preset: str = "veryfast",
                 copy_from: Path | None = None, show_both: bool = False, threads: int = 0) -> None:
        self.path = Path(path)
        check_output_path(self.path)
        self.show_both = show_both
        width = width * 2 if show_both else width
        self.pad = (height % 2, width % 2)
        if any(self.pad):
            log.warning("%s: odd frame size %dx%d padded to %dx%d for 4:2:0", self.path, width, height,
                        width + self.pad[1], height + self.pad[0])
        try:
            self.container = av.open(str(self.path), mode="w")
        except (av.error.FFmpegError, ValueError) as exc:
            raise SinkError(f"{self.path}: cannot write this kind of file ({exc})") from None
        self._source = None
        self.stream = None
        self._extra: dict = {}
        self._pending = None
        self._last_pts: int | None = None
        self.frames = 0
        try:
            self.stream = self._add_video(codec, width + self.pad[1], height + self.pad[0], fps, time_base, crf, preset, threads)
            self._extra = self._add_copied_streams(copy_from) if copy_from else {}
        except Exception:
            self.close()
            raise

    def _add_video(self, codec: str, width: int, height: int, fps: float, time_base: Fraction | None,
                   crf: int, preset: str, threads: int) -> "av.video.stream.VideoStream":
        rate = Fraction(fps).limit_denominator(1001) if fps > 0 else Fraction(30)
        options = {"crf": str(crf), "preset": preset} if codec in ("libx264", "libx265", "h264", "hevc") else {}
        try:
            stream = self.container.add_stream(codec, rate=rate, options=options)
        except (av.error.FFmpegError, ValueError) as exc:
            raise SinkError(f"{self.path}: encoder {codec!r} is not available ({exc})") from None
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        self.time_base = time_base or Fraction(1, max(1, round(fps or 30)))
        stream.codec_context.time_base = self.time_base
        stream.time_base = self.time_base
        if threads:
            stream.codec_context.thread_count = threads
        stream.thread_type = "AUTO"
        return stream

    def _add_copied_streams(self, source: Path) -> dict:
        """Audio and subtitle streams of the input, remuxed as they are (not decoded)."""
        self._source = av.open(str(source), mode="r")
        self.container.metadata.update(self._source.metadata)  # title, creation time, ...
        self.stream.metadata.update(self._source.streams.video[0].metadata)
        extra = {}
        for s in self._source.streams:
            if s.type not in ("audio", "subtitle"):
                continue
            try:
                extra[s.index] = self.container.add_stream_from_template(s)
            except (av.error.FFmpegError, ValueError) as exc:
                log.warning("%s: %s stream %d (%s) not copied: %s", self.path, s.type, s.index, s.codec_context.name, exc)
        if extra:
            self._packets = self._source.demux(*[self._source.streams[i] for i in extra])
        return extra

    def _mux_copied_until(self, seconds: float | None) -> None:
        """Mux copied packets up to `seconds` (all when None), keeping the file interleaved."""
        if not self._extra:
            return
        while True:
            packet = self._pending
            if packet is None:
                try:
                    packet = next(self._packets)
                except (StopIteration, av.error.FFmpegError):
                    self._extra = {}
                    return
                if packet.dts is None and packet.pts is None:
                    continue  # a demuxer flush packet
            when = packet.pts if packet.pts is not None else packet.dts
            if seconds is not None and when * packet.time_base > seconds:
                self._pending = packet
                return
            self._pending = None
            packet.stream = self._extra[packet.stream.index]
            self.container.mux(packet)

    def write(self, frame: Frame) -> bool:
        image = side_by_side(frame) if self.show_both else frame.enhanced
        if any(self.pad):
            image = np.pad(image, ((0, self.pad[0]), (0, self.pad[1]), (0, 0)), mode="edge")
        vf = self._to_video_frame(np.ascontiguousarray(image))
        pts = self._rescale(frame)
        if self._last_pts is not None and pts <= self._last_pts:
            pts = self._last_pts + 1  # encoders need strictly increasing timestamps
        self._last_pts = pts
        vf.pts, vf.time_base = pts, self.time_base
        if self.frames == 0 and frame.rotation:
            self.stream.set_display_rotation(frame.rotation)  # before the first frame is encoded
        self._mux_copied_until(float(pts * self.time_base))
        self.container.mux(self.stream.encode(vf))
        self.frames += 1
        return True

    def _to_video_frame(self, rgb: np.ndarray) -> av.VideoFrame:
        """RGB -> the encoder's pixel format. For 4:2:0, OpenCV's conversion (BT.601, limited
        range, as swscale's default) costs 1.1 ms per 1080p frame where swscale takes 6."""
        if self.stream.pix_fmt == "yuv420p":
            return av.VideoFrame.from_numpy_buffer(cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420), format="yuv420p")
        return av.VideoFrame.from_numpy_buffer(rgb, format="rgb24")

    def _rescale(self, frame: Frame) -> int:
        if frame.pts is None:
            return frame.index
        if frame.time_base is None or frame.time_base == self.time_base:
            return frame.pts
        return round(frame.pts * frame.time_base / self.time_base)

    def close(self, complete: bool = True) -> None:
        """Flush the encoder and finish the file. When the run was stopped early, the
        copied streams end with the video instead of running on to the input's end."""
        try:
            if self.stream is not None:
                self.container.mux(self.stream.encode(None))  # flush delayed frames
                end = None if complete or self._last_pts is None else float((self._last_pts + 1) * self.time_base)
                self._mux_copied_until(end)
        finally:
            self.container.close()
            if self._source is not None:
                self._source.close()


class ImageSink:
    """Writes each enhanced frame as an image: to `path`, or under the folder `root`
    at the frame's own relative name (mirroring an input folder)."""

    def __init__(self, path: Path | None = None, root: Path | None = None, show_both: bool = False) -> None:
        self.path, self.root, self.show_both = path, root, show_both
        check_output_path(path if path is not None else root / "x")
        self.frames = 0

    def write(self, frame: Frame) -> bool:
        target = self.path if self.path is not None else self.root / frame.name
        target.parent.mkdir(parents=True, exist_ok=True)
        image = side_by_side(frame) if self.show_both else frame.enhanced
        ok, data = cv2.imencode(target.suffix or ".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        if not ok:
            raise SinkError(f"{target}: cannot encode an image with suffix {target.suffix!r}")
        data.tofile(str(target))
        self.frames += 1
        return True

    def close(self, complete: bool = True) -> None:
        pass


class PreviewSink:
    """An OpenCV window showing the enhanced view; `b` toggles before|after side by side,
    `q` or Esc quits, closing the window quits too. Shows fps and capture-to-display latency."""

    TITLE = "realtime-enhance (b: before/after, q: quit)"

    def __init__(self, show_both: bool = False) -> None:
        if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            # OpenCV's GUI aborts the whole process without a display: refuse up front.
            raise SinkError("no display for the preview window; use --no-preview (with -o to record)")
        self.show_both = show_both
        self.frames = 0
        self._times: list[float] = []
        self._opened = False

    def write(self, frame: Frame) -> bool:
        if not self._opened:
            cv2.namedWindow(self.TITLE, cv2.WINDOW_NORMAL)
            self._opened = True
        now = time.monotonic()
        self._times = [t for t in self._times if now - t < 1.0] + [now]
        image = side_by_side(frame) if self.show_both else frame.enhanced
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        text = f"{len(self._times):d} fps  latency {1000 * (now - frame.captured):.0f} ms"
        cv2.putText(bgr, text, (10, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 0, 0), 4, cv2.LINE_AA)
        cv2.putText(bgr, text, (10, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 1, cv2.LINE_AA)
        cv2.imshow(self.TITLE, bgr)
        self.frames += 1
        key = cv2.waitKey(1) & 0xFF
        if key == ord("b"):
            self.show_both = not self.show_both
        if key in (ord("q"), 27):
            return False
        return cv2.getWindowProperty(self.TITLE, cv2.WND_PROP_VISIBLE) >= 1

    def close(self, complete: bool = True) -> None:
        if self._opened:
            cv2.destroyWindow(self.TITLE)
            cv2.waitKey(1)
