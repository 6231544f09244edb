"""Frame sources: video files (PyAV), live cameras and streams (OpenCV), images, a demo clip.

A source is an iterable of :class:`Frame` plus a description of the stream
(:class:`StreamInfo`). Sources check their input when constructed (so bad input fails
before any thread starts) and release it in `close()`.

Video files are read once, front to back, by one demuxer: the video stream is decoded
to its planes, and the packets of the streams that are copied (audio, subtitles, cover
art) ride along on the frames to the sink. So pipes, FIFOs and stdin work like files.
"""
from __future__ import annotations

import logging
import os
import platform
import stat
import sys
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import av
import cv2
import numpy as np

from .colour import OPENCV_I420, TRANSFER_HLG, TRANSFER_PQ, interpret
from .frame import Frame, StreamInfo, YUVPlanes, has_420_planes, i420_picture, plane_view
from . import mpegts
from .imagemeta import decode_with_pillow, read_tags, upright

log = logging.getLogger("realtime")

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pnm", ".tga"}
VIDEO_SUFFIXES = {".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".ts", ".mts", ".m2ts", ".3gp", ".flv", ".wmv",
                  ".mpg", ".mpeg", ".gif"}
LIVE_PREFIXES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://", "/dev/video")
COPIED_TYPES = ("audio", "subtitle")
STDIN = "-"
#: Demuxers of elementary streams without a container (their packets carry no time).
RAW_FORMATS = {"h264", "hevc"}


class SourceError(RuntimeError):
    """The input cannot be opened or read; the message is meant for the user."""


# --- video files ---------------------------------------------------------------------------


def copied_streams(container, video, spec: str, pipe: bool) -> list:
    """The streams a run copies beside the video it enhances: audio, subtitles, cover art
    and other video streams (as they are), of the enhanced video's own program when a
    transport stream holds several."""
    streams = [s for s in container.streams if s is not video and s.type in (*COPIED_TYPES, "video")]
    if container.format.name == "mpegts" and not pipe:
        table = mpegts.programs(spec)
        own = next((pids for pids in table.values() if video.id in pids), None)
        if len(table) > 1 and own is not None:
            log.info("%s: program %d of %d (its own %d streams)", spec,
                     next(n for n, pids in table.items() if pids is own), len(table), len(own))
            streams = [s for s in streams if s.id in own]
    return streams


def announced_frames(container, stream) -> int:
    """Frames a video stream's header announces (0 when it says nothing): its frame count,
    else its duration, else the container's, times the frame rate. For progress bars."""
    fps = float(stream.average_rate or stream.guessed_rate or 30)
    if stream.frames:
        return stream.frames
    if stream.duration:
        return int(stream.duration * stream.time_base * fps)
    return int(container.duration / av.time_base * fps) if container.duration else 0


def estimate_frames(path: Path) -> int:
    """announced_frames of a file, without opening a decoder; 0 when it cannot be read
    (whoever reads it next will say what is wrong with it)."""
    try:
        with av.open(str(path)) as container:
            return announced_frames(container, container.streams.video[0])
    except Exception:  # noqa: BLE001 - see above
        return 0


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


def _open_input(spec: str) -> "av.container.InputContainer":
    """Open a file, FIFO, device, `-` (stdin) or a URL fsspec reads (s3://, gs://, file://...)
    for reading, with one-line errors."""
    if spec == STDIN:
        target = "pipe:0"
    elif spec.startswith(("http://", "https://")):
        target = spec  # FFmpeg's own http client: it seeks with range requests
    elif "://" in spec and not spec.startswith(LIVE_PREFIXES):
        try:
            import fsspec

            target = fsspec.open(spec, "rb").open()
        except ImportError:
            raise SourceError(f"{spec}: reading URLs needs fsspec: pip install fsspec (and its s3fs, gcsfs, ...)") from None
        except (OSError, ValueError) as exc:
            raise SourceError(f"{spec}: cannot be opened ({exc})") from None
    else:
        path = Path(spec)
        if not path.exists():
            raise SourceError(f"{spec}: no such file")
        if path.is_dir():
            raise SourceError(f"{spec}: is a directory, not a video")
        target = spec
    try:
        return av.open(target, mode="r")
    except av.error.FFmpegError as exc:
        if spec != STDIN and "://" not in spec and Path(spec).is_file() and _mp4_without_index(Path(spec)):
            raise SourceError(f"{spec}: truncated MP4/MOV: its index (the 'moov' box, written when a recording "
                              "is finished) is missing, so no frame can be located") from None
        raise SourceError(f"{spec}: not a readable video ({exc.strerror or exc.__class__.__name__})") from None


def choose_video_stream(container: "av.container.InputContainer") -> "av.video.stream.VideoStream | None":
    """The video stream a player shows: not cover art or a thumbnail; among the rest,
    the default one, then the largest picture, then the longest."""
    candidates = [s for s in container.streams.video
                  if not (s.disposition & (av.stream.Disposition.attached_pic | av.stream.Disposition.timed_thumbnails))]
    if not candidates:
        return None

    def rank(s: "av.video.stream.VideoStream") -> tuple:
        cc = s.codec_context
        length = float(s.duration * s.time_base) if s.duration and s.time_base else 0.0
        return (bool(s.disposition & av.stream.Disposition.default), cc.width * cc.height, s.frames, length)

    return max(candidates, key=rank)


def _is_pipe(spec: str) -> bool:
    if spec == STDIN:
        return True
    if "://" in spec:
        return False
    try:
        return not stat.S_ISREG(os.stat(spec).st_mode)
    except OSError:
        return False


class VideoFileSource:
    """Decodes a file's video stream to planes, every frame, with its timestamps.

    Damaged packets are skipped and counted (`damage`), not fatal; `error` is set when
    the file ends before it says it should (truncated) or nothing decodes.
    """

    live = False

    def __init__(self, spec: str | Path, start: float | None = None, copy_streams: bool = True,
                 rate: float | None = None) -> None:
        """start: begin at the keyframe at or before this time (s), as a chunk of a longer run.
        copy_streams: carry the audio, subtitles and cover art on the frames (a chunk's join
        copies them from the original instead). rate: the frame rate of a raw elementary
        stream, whose packets carry no time (default: what its headers state, else 25)."""
        self.spec = str(spec)
        self.label = "stdin" if self.spec == STDIN else self.spec
        self.container = _open_input(self.spec)
        self.start = start
        self.stream = choose_video_stream(self.container)
        if self.stream is None:
            self.container.close()
            raise SourceError(f"{self.label}: has no video stream")
        self.stream.thread_type = "AUTO"
        cc = self.stream.codec_context
        if cc.width < 1 or cc.height < 1:
            self.container.close()
            raise SourceError(f"{self.label}: video stream has no picture size")
        self.width, self.height = cc.width, cc.height
        self.time_base = self.stream.time_base
        self._rate = Fraction(self.stream.average_rate or self.stream.guessed_rate or 30)
        self.fps = float(self._rate)
        self.frame_count = announced_frames(self.container, self.stream)
        self.colour = interpret(cc.colorspace, cc.color_range, cc.color_primaries, cc.color_trc,
                                self.width, self.height, (cc.pix_fmt or "").startswith("yuvj"))
        if self.colour.transfer == TRANSFER_PQ:
            self.container.close()
            raise SourceError(f"{self.label}: HDR10 (PQ) video is not supported yet: its codes are absolute light "
                              "levels, and an SDR curve would push them to hundreds of nits; convert it to SDR or "
                              "HLG first")
        if self.colour.transfer == TRANSFER_HLG:
            log.info("%s: HLG: enhanced in its SDR-compatible signal, written as HLG", self.label)
        self.bits = _bits(cc.pix_fmt)
        self.pipe = _is_pipe(self.spec)
        self.copied = copied_streams(self.container, self.stream, self.spec, self.pipe) if copy_streams else []
        attachments = [(s.name, s.mimetype, bytes(s.data)) for s in self.container.streams
                       if copy_streams and s.type == "attachment" and s.data]
        self.info = StreamInfo(self.width, self.height, self.fps, self.time_base, self.colour, self.bits,
                               cc.field_order or 0, self.stream.sample_aspect_ratio,
                               dict(self.container.metadata), dict(self.stream.metadata), self.copied,
                               self.container.chapters() if copy_streams else [], attachments)
        if start:
            self.container.seek(int(start / self.time_base), stream=self.stream, backward=True)
        self.error: str | None = None
        self.damage = Damage()
        self._end = 0.0  # latest end time (s) of any packet demuxed
        self._video_end = 0.0  # and of the video stream's
        self._video_packets = 0
        self._discarded = 0
        self._chroma: dict = {}
        #: A raw elementary stream (H.264, HEVC as a camera or DVR records it) carries no
        #: timestamps: frames are then timed by their index at the stream's frame rate.
        self.untimed = False
        start_time = self.stream.start_time
        self.timeline = Timeline(float(start_time * self.time_base) if start_time is not None else 0.0)
        self._said_size: tuple[int, int] | None = None
        self._stream_tags = (cc.colorspace, cc.color_range, cc.pix_fmt)
        self._frame_colours: dict = {}
        self._said_colour: set = set()
        if rate and self.container.format.name in RAW_FORMATS:
            self._rate = Fraction(rate).limit_denominator(1001)
            self.fps = float(self._rate)
            self.info.fps = self.fps

    def __iter__(self) -> Iterator[Frame]:
        index, held, pending = 0, None, []
        for vf in self._decoded(pending):
            if held is not None:  # one frame is held back, so that trailing packets can ride on it
                held.packets = pending[:]
                pending.clear()
                yield held
            time_base = vf.time_base or self.time_base
            pts = vf.pts if vf.pts is not None or not self.untimed else round(index / (self._rate * time_base))
            vf = self._in_stream_colour(vf, index)
            picture = self._planes(vf) if (vf.width, vf.height) == (self.width, self.height) else self._fitted(vf, index)
            held = Frame(picture, index, pts, time_base, rotation=vf.rotation)
            index += 1
        if held is not None:
            held.packets = pending[:]
            yield held
        # Frames the decoder dropped without an error (they referred to damaged ones).
        self.damage.dropped = max(0, self._video_packets - self._discarded - index - self.damage.skipped)
        self.error = self._shortfall(index)

    def _decoded(self, pending: list) -> Iterator["av.VideoFrame"]:
        """Decoded video frames in presentation order; the copied streams' packets are
        appended to `pending` as they are demuxed."""
        for packet in self._packets():
            index = packet.stream.index
            if index == self.stream.index:
                self._video_packets += 1
                self._discarded += packet.is_discard  # before an edit list's start: decoded, not shown
                yield from self._decode(packet)
            else:  # the index travels with it: the input (and its stream objects) may be closed by then
                pending.append((index, packet))
        yield from self._decode(None)  # the frames still inside the decoder

    def _packets(self) -> Iterator["av.Packet"]:
        """Every packet of the video stream and the copied ones, in file order. A damaged
        stretch the demuxer cannot parse is skipped: demuxing resumes after it."""
        streams = [self.stream, *self.copied]
        failures = 0
        while True:
            try:
                for packet in self.container.demux(*streams):
                    if packet.dts is None and packet.pts is None:
                        if packet.size and packet.stream.index == self.stream.index:
                            self.untimed = True  # a raw elementary stream: timed on decoding
                            yield packet
                        elif packet.size:
                            yield packet  # cover art: one packet, no time
                        continue  # else a demuxer flush packet
                    failures = 0
                    self.timeline.place(packet)
                    when = packet.pts if packet.pts is not None else packet.dts
                    end = float((when + (packet.duration or 0)) * packet.time_base)
                    self._end = max(self._end, end)
                    if packet.stream.index == self.stream.index:
                        self._video_end = max(self._video_end, end)
                    yield packet
                return
            except av.error.EOFError:
                return
            except av.error.FFmpegError as exc:
                if self.pipe and not self._end and "mp4" in self.container.format.name:
                    self.error = (f"{self.label}: this MP4 keeps its index at its end, and a pipe cannot seek back "
                                  "to it; give the file's name (or make it with -movflags +faststart)")
                    return
                failures += 1
                self.damage.note_demux(self._end, exc)
                if failures > 100:  # the demuxer makes no progress: the rest is unreadable
                    self.error = f"{self.label}: unreadable after {self._end:.2f} s ({exc.strerror or exc})"
                    return

    def _decode(self, packet: "av.Packet | None") -> list:
        """The frames a packet completes; a packet that does not decode is counted and
        skipped (as ffmpeg does), so one damaged packet does not end the run."""
        try:
            frames = self.stream.codec_context.decode(packet)
        except av.error.FFmpegError as exc:
            if packet is None:  # a decoder that fails while flushing has nothing more to give
                return []
            self.damage.note_packet(packet, exc)
            return []
        for vf in frames:
            if vf.is_corrupt:
                self.damage.note_concealed(vf)
        return frames

    def _planes(self, vf: "av.VideoFrame") -> YUVPlanes:
        """The decoded frame as 4:2:0 planes (views of the decoder's buffers where possible;
        other layouts converted once by swscale, keeping the matrix and range)."""
        name = vf.format.name
        if has_420_planes(name):
            return YUVPlanes.from_video_frame(vf, self.colour)
        if name.startswith("gray"):
            y = plane_view(vf.planes[0], np.uint8 if self.bits == 8 else np.uint16)
            return YUVPlanes(y, *self._neutral_chroma(vf.width, vf.height), self.colour, self.bits, vf)
        target = "yuv420p" if self.bits == 8 else "yuv420p10le"
        space = _swscale_space(self.colour.space)
        rng = "JPEG" if self.colour.full_range else "MPEG"
        converted = vf.reformat(format=target, src_colorspace=space, dst_colorspace=space,
                                src_color_range=rng, dst_color_range=rng)
        y, u, v = (plane_view(p, np.uint8 if self.bits == 8 else np.uint16) for p in converted.planes)
        return YUVPlanes(y, u, v, self.colour, self.bits, converted)

    def _in_stream_colour(self, vf: "av.VideoFrame", index: int) -> "av.VideoFrame":
        """A frame whose colour description (matrix, range) differs from the stream's (two
        recordings joined, a camera that switched mode), converted into the stream's by
        swscale, so that every frame is read with its own and written in the output's."""
        stream_space, stream_range, _ = self._stream_tags
        tags = (vf.colorspace if vf.colorspace != 2 else stream_space,  # a field the frame leaves
                vf.color_range or stream_range, vf.format.name)  # unspecified is the stream's
        if tags == self._stream_tags or not (has_420_planes(tags[2]) or tags[2].startswith("yuvj")):
            return vf  # the same, or a layout _planes converts with the stream's description anyway
        colour = self._frame_colours.get(tags)
        if colour is None:
            colour = self._frame_colours[tags] = interpret(tags[0], tags[1], self.colour.primaries,
                                                           self.colour.transfer, vf.width, vf.height,
                                                           vf.format.name.startswith("yuvj"))
        if (colour.space, colour.full_range) == (self.colour.space, self.colour.full_range):
            return vf
        if tags not in self._said_colour:
            self._said_colour.add(tags)
            log.warning("%s: the colour description changes at frame %d (%s): such frames are converted to "
                        "the stream's (%s)", self.label, index, colour, self.colour)
        target = vf.format.name.replace("yuvj", "yuv") if self.bits == 8 else "yuv420p10le"
        return vf.reformat(format=target if has_420_planes(target) else "yuv420p",
                           src_colorspace=_swscale_space(colour.space), dst_colorspace=_swscale_space(self.colour.space),
                           src_color_range="JPEG" if colour.full_range else "MPEG",
                           dst_color_range="JPEG" if self.colour.full_range else "MPEG")

    def _fitted(self, vf: "av.VideoFrame", index: int) -> YUVPlanes:
        """A frame whose picture size differs from the stream's first (a camera that switched
        resolution, two recordings joined): scaled to fit the stream's size, its aspect
        kept, centred between black bars, so the output keeps one size and every frame."""
        if (vf.width, vf.height) != self._said_size:
            self._said_size = (vf.width, vf.height)
            log.warning("%s: the picture size changes from %dx%d to %dx%d at frame %d: such frames are scaled "
                        "to fit %dx%d (aspect kept, black bars)", self.label, self.width, self.height, vf.width,
                        vf.height, index, self.width, self.height)
        scale = min(self.width / vf.width, self.height / vf.height)
        w = max(2, min(self.width, round(vf.width * scale / 2) * 2))
        h = max(2, min(self.height, round(vf.height * scale / 2) * 2))
        dtype = np.uint8 if self.bits == 8 else np.uint16
        scaled = vf.reformat(width=w, height=h, format="yuv420p" if self.bits == 8 else "yuv420p10le")
        black = (0 if self.colour.full_range else 16) << (max(self.bits, 8) - 8)
        middle = 1 << (self.bits - 1)
        y = np.full((self.height, self.width), black, dtype)
        u = np.full(((self.height + 1) // 2, (self.width + 1) // 2), middle, dtype)
        v = u.copy()
        top, left = (self.height - h) // 4 * 2, (self.width - w) // 4 * 2  # even: chroma stays aligned
        for plane, source, step in ((y, scaled.planes[0], 1), (u, scaled.planes[1], 2), (v, scaled.planes[2], 2)):
            view = plane_view(source, dtype)
            plane[top // step: top // step + view.shape[0], left // step: left // step + view.shape[1]] = view
        return YUVPlanes(y, u, v, self.colour, self.bits)

    def _neutral_chroma(self, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
        key = (width, height)
        if key not in self._chroma:
            middle = 1 << (self.bits - 1)
            plane = np.full(((height + 1) // 2, (width + 1) // 2), middle, np.uint8 if self.bits == 8 else np.uint16)
            plane.setflags(write=False)
            self._chroma = {key: (plane, plane)}
        return self._chroma[key]

    def _shortfall(self, decoded: int) -> str | None:
        """A message when the input ended before its headers say it should (a truncated
        file ends without an error), or when nothing decoded."""
        if self.error:
            return self.error
        if decoded == 0:
            return f"{self.label}: no frame could be decoded"
        if self.stream.frames and not self.start and self._video_packets < self.stream.frames - 1:
            return (f"{self.label}: only {self._video_packets} of the {self.stream.frames} frames the file announces "
                    f"are in it (the file is truncated)")
        if self.pipe:
            return None
        start = (self.container.start_time or 0) / av.time_base
        tolerance = max(2.0 / self.fps, 0.25)
        every_stream = len(self.copied) + 1 >= len(self.container.streams)  # else other streams may end later
        if self.container.duration and every_stream:
            duration = self.container.duration / av.time_base
            if self._end - start < duration - tolerance:
                return (f"{self.label}: the file ends at {self._end - start:.2f} s of the {duration:.2f} s its header "
                        f"announces, after {decoded} frames (truncated)")
        video = _announced_duration(self.stream)
        if video and self._video_end - start < video - tolerance:
            return (f"{self.label}: the video stops at {self._video_end - start:.2f} s of the {video:.2f} s the file "
                    f"announces for it, after {decoded} frames (the rest is damaged and could not be read)")
        return None

    def close(self) -> None:
        self.container.close()


def _swscale_space(space: int) -> str:
    """swscale's name for an FFmpeg matrix (colorspace) value."""
    return "ITU709" if space == 1 else "BT2020" if space in (9, 10) else "SMPTE240M" if space == 7 else "ITU601"


class Timeline:
    """Timestamps that jump back continue the timeline instead: recordings joined (MPEG-TS
    from a DVR, `cat a.ts b.ts`) restart their clocks, and each new segment is shifted to
    start where the one before ended, every stream by the same amount, so audio stays in
    sync and no packet looks out of order. A negative start (a clock near its wrap, an
    edit) is shifted to zero, so that containers with edit lists do not hide those frames.

    `place(packet)` rewrites a packet's pts and dts in place, before it is decoded or
    copied."""

    JUMP = 1.0  # s: a step back larger than this starts a new segment (reordering never does)

    def __init__(self, video_start: float = 0.0) -> None:
        """video_start: the video stream's first presentation time (s); the timeline starts
        at zero when it is negative (audio priming before zero is normal and stays)."""
        self.offsets: list[float] = [max(0.0, -video_start)]  # s, per segment
        self.segment: dict[int, int] = {}  # stream index -> its segment
        self.last: dict[int, float] = {}  # stream index -> its latest decode time, on the timeline (s)
        self.ends: dict[int, float] = {}  # stream index -> the end of its latest packet, on the timeline (s)
        self.starts: dict[int, float] = {}  # stream index -> its first time in the first segment (s, as read)
        self.nudge: dict[int, float] = {}  # stream index -> its own extra shift in its current segment (s)
        self.end = 0.0  # the latest end of any packet, on the timeline (s)

    def place(self, packet: "av.Packet") -> None:
        when = packet.dts if packet.dts is not None else packet.pts  # decode order: dts only steps forward
        raw = float(when * packet.time_base)
        index = packet.stream.index
        segment = self.segment.get(index, 0)
        last = self.last.get(index)
        if segment == 0:
            self.starts.setdefault(index, raw)
        if last is not None and raw + self.offsets[segment] < last - self.JUMP:
            if segment + 1 == len(self.offsets):  # the first stream to reach the new segment
                # Streams that started before this one in the first recording (audio often
                # leads video by a packet) are assumed to lead it by as much in the next.
                lead = self.starts.get(index, raw) - min(self.starts.values(), default=raw)
                self.offsets.append(self.end - raw + lead)
            segment += 1
            self.segment[index] = segment
            # A stream that still overlaps its own previous segment moves on by the overlap.
            self.nudge[index] = max(0.0, self.ends.get(index, 0.0) - (raw + self.offsets[segment]))
        shift = self.offsets[segment] + self.nudge.get(index, 0.0)
        self.last[index] = raw + shift
        self.ends[index] = raw + shift + float((packet.duration or 0) * packet.time_base)
        self.end = max(self.end, self.ends[index])
        if shift:
            ticks = round(shift / packet.time_base)
            if packet.pts is not None:
                packet.pts += ticks
            if packet.dts is not None:
                packet.dts += ticks


def _announced_duration(stream: "av.stream.Stream") -> float | None:
    """The duration (s) the file states for a stream: its own field, or a DURATION tag
    (Matroska writes one per track)."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    tag = stream.metadata.get("DURATION") or stream.metadata.get("duration")
    try:
        hours, minutes, seconds = tag.split(":")
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    except (AttributeError, ValueError):
        return None


def _bits(pix_fmt: str | None) -> int:
    """Bits per sample the planes will have: 8, or the depth of a high-bit-depth format
    (kept up to 16; the encoder may reduce it)."""
    if not pix_fmt:
        return 8
    try:
        depth = av.VideoFormat(pix_fmt).components[0].bits
    except (ValueError, av.error.FFmpegError):
        return 8
    return 8 if depth <= 8 else (depth if pix_fmt.startswith(("yuv420p", "gray")) and pix_fmt.endswith("le") else 10)


@dataclass
class Damage:
    """What a damaged input cost: packets that did not decode (their frames are missing),
    frames the decoder concealed, stretches the demuxer skipped; and where."""

    skipped: int = 0
    concealed: int = 0
    unparsed: int = 0
    dropped: int = 0
    first: float | None = None
    last: float | None = None

    def _at(self, seconds: float | None) -> None:
        if seconds is not None:
            self.first = seconds if self.first is None else min(self.first, seconds)
            self.last = seconds if self.last is None else max(self.last, seconds)

    def note_packet(self, packet: "av.Packet", exc: Exception) -> None:
        self.skipped += 1
        when = packet.pts if packet.pts is not None else packet.dts
        self._at(float(when * packet.time_base) if when is not None and packet.time_base else None)
        log.debug("damaged packet skipped: %s", exc)

    def note_concealed(self, vf: "av.VideoFrame") -> None:
        self.concealed += 1
        self._at(vf.time)

    def note_demux(self, seconds: float, exc: Exception) -> None:
        self.unparsed += 1
        self._at(seconds)
        log.debug("damaged data skipped by the demuxer: %s", exc)

    def __bool__(self) -> bool:
        return bool(self.skipped or self.concealed or self.unparsed or self.dropped)

    def describe(self, fps: float) -> str:
        parts = []
        lost = self.skipped + self.dropped
        if lost:
            parts.append(f"{lost} frame(s) could not be decoded and were skipped (about {lost / fps:.2f} s of video)")
        if self.concealed:
            parts.append(f"{self.concealed} frame(s) repaired by the decoder and kept")
        if self.unparsed:
            parts.append(f"{self.unparsed} unreadable stretch(es) skipped")
        where = f" between {self.first:.2f} and {self.last:.2f} s" if self.first is not None else ""
        return "damaged input: " + ", ".join(parts) + where


# --- live cameras and streams ----------------------------------------------------------------


def _camera_target(spec: str | int) -> str | int:
    if isinstance(spec, int) or str(spec).isdigit():
        return int(spec)
    return str(spec)


class CameraSource:
    """A live camera or network stream through OpenCV. Frames carry capture times;
    pts are microseconds since the first frame; pictures are 4:2:0 planes
    (i420_picture)."""

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
            self.capture = _quietly(lambda: cv2.VideoCapture(target, cv2.CAP_FFMPEG, params))
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
        self._first = i420_picture(first)
        self.height, self.width = first.shape[:2]
        self.fps = float(self.capture.get(cv2.CAP_PROP_FPS) or fps or 30)
        self.frame_count = 0
        self.error: str | None = None
        planar = isinstance(self._first, YUVPlanes)
        self.info = StreamInfo(self.width, self.height, self.fps, self.time_base, OPENCV_I420 if planar else None)
        if size and (self.width, self.height) != tuple(size):
            log.warning("camera %s: asked for %dx%d, delivers %dx%d", spec, *size, self.width, self.height)

    def __iter__(self) -> Iterator[Frame]:
        start = time.monotonic()
        picture, now, index = self._first, start, 0
        while True:
            yield Frame(picture, index, int((now - start) * 1_000_000), self.time_base, captured=now)
            index += 1
            ok, bgr = self.capture.read()
            if not ok or bgr is None:
                self.error = f"camera {self.spec}: stream ended after {index} frames"
                return
            now = time.monotonic()  # captured when read: the conversion counts as latency
            picture = i420_picture(bgr)

    def close(self) -> None:
        self.capture.release()


def _quietly(open_capture):
    """Run an OpenCV open with FFmpeg's and OpenCV's own warnings silenced: a failure is
    reported by us, in one line."""
    level = cv2.getLogLevel() if hasattr(cv2, "getLogLevel") else None
    previous = os.environ.get("OPENCV_FFMPEG_LOGLEVEL")
    try:
        if level is not None:
            cv2.setLogLevel(0)
        with _stderr_silenced():
            return open_capture()
    finally:
        if level is not None:
            cv2.setLogLevel(level)
        if previous is None:
            os.environ.pop("OPENCV_FFMPEG_LOGLEVEL", None)


class _stderr_silenced:
    """Redirect file descriptor 2 to /dev/null for a native call that prints on its own."""

    def __enter__(self) -> None:
        sys.stderr.flush()
        self._saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)

    def __exit__(self, *exc: object) -> None:
        os.dup2(self._saved, 2)
        os.close(self._saved)


# --- images ------------------------------------------------------------------------------------


def read_image(path: str | Path) -> np.ndarray | None:
    """An image file as (H, W, 3) uint8 RGB, or None when it cannot be decoded."""
    picture = read_picture(path)
    if picture is None:
        return None
    image = picture[0] if picture[0].dtype == np.uint8 else (picture[0] >> 8).astype(np.uint8)
    return np.ascontiguousarray(np.dstack([image] * 3) if image.ndim == 2 else image)


def read_picture(path: str | Path) -> tuple[np.ndarray, np.ndarray | None] | None:
    """An image file as it is: (RGB (H, W, 3) or grey (H, W), uint8 or uint16; its alpha
    plane or None); None when it cannot be decoded."""
    data = np.fromfile(str(path), dtype=np.uint8) if Path(path).is_file() else None
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data is not None and data.size else None
    if image is None and data is not None and data.size:
        image = decode_with_pillow(Path(path))  # TGA and others OpenCV's codecs lack
    if image is None:
        return None
    image = as_16_bit(image) if image.dtype not in (np.uint8, np.uint16) else image
    if image is None:
        return None
    if image.ndim == 2:
        return image, None
    if image.shape[2] == 4:
        return cv2.cvtColor(image[..., :3], cv2.COLOR_BGR2RGB), image[..., 3]
    if image.shape[2] == 2:  # grey + alpha
        return image[..., 0], image[..., 1]
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB), None


def as_16_bit(image: np.ndarray) -> np.ndarray | None:
    """Float images (0..1, values beyond it clipped) and 32-bit integer images as 16-bit
    codes, which keep their precision through the engine; None for other types."""
    if image.dtype.kind == "f":
        return (np.clip(np.nan_to_num(image), 0.0, 1.0) * 65535.0 + 0.5).astype(np.uint16)
    if image.dtype in (np.uint32, np.int32):
        return (np.clip(image.astype(np.int64), 0, None) >> 16).astype(np.uint16)
    return None


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
        self.reasons: dict[Path, str] = {}  # why, where it is not "not a readable image"
        self.error: str | None = None

    def __iter__(self) -> Iterator[Frame]:
        for index, path in enumerate(self.paths):
            try:
                picture = read_picture(path)
            except (cv2.error, OSError, ValueError) as exc:  # one bad image never stops the others
                log.debug("%s: %s", path, exc)
                picture = None
            if picture is None:
                self._skip(path, f"{path}: not a readable image, skipped")
                continue
            image, alpha = picture
            tags = read_tags(path)
            if tags.pictures > 1:  # never one frame of many, silently
                self.reasons[path] = (f"{path}: holds {tags.pictures} pictures (an animation or pages); only "
                                      "still images are enhanced: convert it to a video (or its pages to images)")
                self._skip(path, self.reasons[path])
                continue
            if tags.orientation != 1:  # a phone photo: turned upright, as viewers show it
                image = upright(image, tags.orientation)
                alpha = None if alpha is None else upright(alpha, tags.orientation)
            if image.ndim == 2:  # grey: the engine keeps it grey (the same curve in every channel)
                image = np.repeat(image[:, :, None], 3, axis=2)
            yield Frame(image, index, name=str(path.relative_to(self.root)), alpha=alpha, tags=tags)
        if self.failed:
            self.error = f"{len(self.failed)} of {len(self.paths)} images could not be read"

    def _skip(self, path: Path, why: str) -> None:
        """One image left out; said here for a batch (a single image's run says it as its error)."""
        log.log(logging.WARNING if len(self.paths) > 1 else logging.DEBUG, "%s", why)
        self.failed.append(path)

    def close(self) -> None:
        pass


# --- the demo clip -------------------------------------------------------------------------------


class DemoSource:
    """A synthetic low-light clip: FFmpeg's testsrc2 pattern (through PyAV's lavfi),
    darkened with a gamma curve and given shot and read noise like a small sensor.
    live: played at its frame rate, over and over, like a camera (for --serve and
    --virtual-cam), until stopped."""

    time_base = Fraction(1, 30)

    def __init__(self, seconds: float = 4.0, size: tuple[int, int] = (640, 360), fps: int = 30, seed: int = 0,
                 live: bool = False) -> None:
        self.width, self.height = size
        self.fps = float(fps)
        self.live = live
        self.time_base = Fraction(1, fps)
        self.frame_count = 0 if live else int(seconds * fps)
        self.spec = f"testsrc2=size={self.width}x{self.height}:rate={fps}:duration={seconds}"
        self.rng = np.random.default_rng(seed)
        self.error: str | None = None
        self.info = StreamInfo(self.width, self.height, self.fps, self.time_base)

    def __iter__(self) -> Iterator[Frame]:
        start, index = time.monotonic(), 0
        while True:
            with av.open(self.spec, format="lavfi") as container:
                for vf in container.decode(video=0):
                    if self.live:  # at the camera's pace
                        delay = start + index / self.fps - time.monotonic()
                        if delay > 0:
                            time.sleep(delay)
                    yield Frame(self._darken(vf.to_ndarray(format="rgb24")), index, index, self.time_base)
                    index += 1
            if not self.live:
                return

    def _darken(self, rgb: np.ndarray) -> np.ndarray:
        x = (rgb.astype(np.float32) / 255) ** 2.2 * 0.12  # ~3 stops under, linear-ish
        noise = self.rng.normal(0, 1, x.shape).astype(np.float32) * np.sqrt(x * 0.002 + 0.00002)
        return np.clip((x + noise) * 255 + 0.5, 0, 255).astype(np.uint8)

    def close(self) -> None:
        pass


def is_live(spec: str) -> bool:
    """Whether an input is live (read newest-frame-first, never waited for): camera indices,
    device nodes, streaming protocols, and http(s) URLs that do not name a video file (an
    HLS playlist, an MJPEG camera). An http(s) URL of a file (NAME.mp4, ...) is a file:
    every frame is read, audio kept. `--live` / `--no-live` overrule this."""
    if spec.startswith(("http://", "https://")):
        name = spec.split("?", 1)[0].split("#", 1)[0]
        return Path(name).suffix.lower() not in VIDEO_SUFFIXES
    if spec.isdigit():  # a camera index, unless a file has that name (--webcam N is always a camera)
        return not Path(spec).is_file()
    return spec.startswith(LIVE_PREFIXES)
