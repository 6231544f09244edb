"""Frame sinks: video files (PyAV, other streams remuxed), a preview window (OpenCV), image files.

A sink's `write(frame)` returns False when the user asked to stop (closed the preview);
`close()` flushes and releases everything, and is safe to call after an error.
"""
from __future__ import annotations

import logging
import os
import stat
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from .colour import OPENCV_I420, RANGE_UNSPECIFIED, UNSPECIFIED, ColourDescription, interpret
from .errors import MissingDependency
from .imagemeta import PILLOW_FORMATS, encode_with_pillow, with_tags
from .frame import Frame, Picture, StreamInfo, YUVPlanes, as_rgb, plane_view

log = logging.getLogger("realtime")

#: The encoder a container gets when none is named: what plays everywhere in it.
#: ASF keeps one time per packet, so H.264's reordered frames come back with guessed
#: times: Windows Media video is what ffmpeg writes there too.
DEFAULT_CODECS = {".webm": "libvpx-vp9", ".ogv": "libtheora", ".mpg": "mpeg2video", ".mpeg": "mpeg2video",
                  ".wmv": "wmv2", ".asf": "wmv2"}
DEFAULT_CODEC = "libx264"
CRF_CODECS = {"libx264": (0, 51), "libx265": (0, 51), "libvpx-vp9": (0, 63), "libsvtav1": (0, 63)}
#: Encoders with a fixed quantiser instead of a CRF: --crf N sets q = N / 6 (18 -> 3), not
#: FFmpeg's default of 200 kb/s, which smears a 720p picture.
QSCALE_CODECS = {"mpeg4", "mpeg2video", "mpeg1video", "mjpeg", "msmpeg4v2", "msmpeg4", "h263p", "flv", "wmv1", "wmv2"}
X26X_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
                "placebo")
#: Containers that keep no presentation timestamps: B-frames would play out of order.
NO_REORDER = {".avi", ".flv", ".wmv", ".asf"}
#: Muxers that hold attachments (fonts): Matroska; WebM's subset leaves them out.
ATTACHMENT_MUXERS = {"matroska"}
#: Containers that seek back to write their index when they are finished.
SEEKING_CONTAINERS = {".mp4", ".m4v", ".mov", ".3gp"}
#: Containers whose time base is the frame rate.
FRAME_RATE_CONTAINERS = {".avi"}
#: Matroska is written in clusters of at most this long (the muxer holds the open one in
#: memory) and flushed to disk after each packet, so a hard kill loses at most about this
#: much of already-encoded video, plus what the encoder holds (a few frames).
CLUSTER_MS = 500
#: Where the colour description survives: in the codec's own bitstream, or in the container.
CODECS_WITH_COLOUR = {"h264", "hevc", "vp9", "av1", "mpeg2video", "prores", "dnxhd", "vvc"}
CONTAINERS_WITH_COLOUR = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".ts", ".mts", ".m2ts"}


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


#: The longest file name most filesystems take (bytes).
NAME_MAX = 255


def partial_path(path: Path, tag: str = ".partial") -> Path:
    """Where an output is written until it is finished: NAME.partial.EXT beside it (NAME
    shortened where the longer name would not fit the filesystem's limit)."""
    stem, room = path.stem, NAME_MAX - len(f"{tag}{path.suffix}".encode())
    while len(stem.encode()) > room:
        stem = stem[:-1]
    return path.with_name(f"{stem}{tag}{path.suffix}")


class PartialFile:
    """The name an output is written under until it is finished: NAME.partial.EXT, or
    NAME.partial-2.EXT, -3, ... while another live run writes the first. The name is
    created exclusively and locked for this run's life (a lock dies with its process, so a
    killed run's leftover is taken over, not a live run's file). `finish()` gives it the
    final name, unless another run finished that name after this one started: then this
    run's file keeps its partial name and a SinkError says so (nothing is lost)."""

    def __init__(self, path: Path) -> None:
        self.final = path
        self.before = self._identity()
        self.path, self._fd = self._claim()

    def _identity(self) -> tuple | None:
        try:
            st = self.final.stat()
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_mtime_ns, st.st_size

    def _claim(self) -> tuple[Path, int | None]:
        base = partial_path(self.final)
        for n in range(1, 100):
            candidate = base if n == 1 else partial_path(self.final, f".partial-{n}")
            try:
                fd = os.open(candidate, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if not _regular_or_new(candidate):
                    continue  # a folder or a device in the way: the next name
                fd = os.open(candidate, os.O_WRONLY)  # a leftover, or a live run's
                if not _lock(fd):
                    os.close(fd)
                    continue
                return candidate, fd
            _lock(fd)
            return candidate, fd
        raise SinkError(f"{self.final}: 99 other runs are writing it")

    def finish(self) -> None:
        try:
            if self._identity() != self.before:
                raise SinkError(f"{self.final} was written by another run meanwhile; this run's output is kept "
                                f"as {self.path}")
            os.replace(self.path, self.final)
        finally:
            self.release()

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)
        self.release()

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _lock(fd: int) -> bool:
    """An exclusive lock on an open file, without waiting; True where locks do not exist."""
    try:
        import fcntl
    except ImportError:  # Windows: exclusive creation alone
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _regular_or_new(path: Path) -> bool:
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except FileNotFoundError:
        return True


def side_by_side(before: Picture, after: Picture) -> Picture:
    """before | after as one picture: (H, 2W, 3) RGB, or planes 2·W' wide (W' = W rounded
    up to even, so that each half keeps its own chroma columns)."""
    if isinstance(after, np.ndarray):
        return np.concatenate([as_rgb(before), after], axis=1)
    if not isinstance(before, YUVPlanes):
        raise ValueError("side_by_side: before and after must both be planes or both RGB")
    height, width = after.shape
    half = width + width % 2
    both = YUVPlanes.empty(2 * half, height, after.colour, after.bits)
    for i, p in enumerate((before, after)):
        both.y[:, i * half: i * half + width] = p.y
        if width % 2:
            both.y[:, i * half + width] = p.y[:, -1]
        cw = p.u.shape[1]
        both.u[:, i * cw: (i + 1) * cw], both.v[:, i * cw: (i + 1) * cw] = p.u, p.v
    return both


#: What FFmpeg's MPEG program and transport stream muxers hold; PyAV lists only their
#: defaults for them (the muxers answer no codec query).
MPEG_MUXERS = {"mpeg": {"mpeg1video", "mpeg2video", "h264", "mp2", "mp3", "ac3", "dts", "pcm_dvd"},
               "mpegts": {"mpeg1video", "mpeg2video", "h264", "hevc", "av1", "vp9", "aac", "mp2", "mp3", "ac3",
                          "eac3", "opus", "dts", "dvb_subtitle", "dvb_teletext"}}


#: Codecs a muxer lists but refuses when it writes the header: QuickTime's muxer takes
#: these only in MP4 mode ("only supported in MP4").
MUXER_REFUSES = {"mov": {"opus", "libopus", "flac", "vp9", "libvpx-vp9", "av1", "libsvtav1", "libaom-av1", "libdav1d"}}


def holds(container, *names: str) -> bool:
    """Whether an output container can hold a codec (any of its names); unknown: yes."""
    if any(name in MUXER_REFUSES.get(container.format.name, ()) for name in names):
        return False
    held = MPEG_MUXERS.get(container.format.name) or container.supported_codecs
    return not held or any(name in held for name in names)


def can_hold(container, encoder) -> bool:
    """Whether an output container can hold what `encoder` makes."""
    return holds(container, encoder.name, encoder.canonical_name)


def yuv420(bits: int) -> str:
    """FFmpeg's name of planar 4:2:0 at a bit depth."""
    return "yuv420p" if bits == 8 else f"yuv420p{bits}le"


def default_codec(path: Path) -> str:
    return DEFAULT_CODECS.get(path.suffix.lower(), DEFAULT_CODEC)


class VideoFileSink:
    """Encodes enhanced frames with their original timestamps, colour description and
    field order, and copies the streams listed in `info.copied` (audio, subtitles, cover
    art) whose packets arrive on the frames, without re-encoding them.

    The file is written as NAME.partial.EXT and renamed to NAME.EXT when finished, so the
    final name never holds half a file and an existing file is replaced only by a finished
    one. A run that was stopped (Ctrl-C) is finished and renamed too, unless
    `keep_incomplete_partial` (folder mode: the output then is not mistaken for a complete
    one). codec: None picks one that fits the container (H.264; VP9 for WebM).
    """

    def __init__(self, path: str | Path, info: StreamInfo, codec: str | None = None, crf: int = 18,
                 preset: str = "veryfast", show_both: bool = False, threads: int = 0,
                 keep_incomplete_partial: bool = False, reorder: bool = True) -> None:
        """reorder=False: no B-frames (decode order = presentation order), so that pieces
        encoded apart join by a stream copy with increasing decode times."""
        self.path = Path(path)
        check_output_path(self.path)
        self.info, self.show_both, self.reorder = info, show_both, reorder
        self.keep_incomplete_partial = keep_incomplete_partial
        self.partial = PartialFile(self.path) if _regular_or_new(self.path) else None
        self.target = self.partial.path if self.partial else self.path  # a FIFO or device: written directly
        self.container = None
        self.stream = None
        self._copies: dict = {}
        self._held: list = []  # copied packets waiting for the video to reach their time
        self.unmuxable = 0  # copied packets the muxer refused (damaged input)
        self._last_pts: int | None = None
        self.convert_to: str | None = None  # the encoder's format when it takes no 4:2:0
        self.frames = 0
        try:
            self._open(codec, crf, preset, threads)
        except Exception:
            self._abandon()
            raise

    # --- set-up --------------------------------------------------------------------------

    def _open(self, codec: str | None, crf: int, preset: str, threads: int) -> None:
        codec = codec or default_codec(self.path)
        log.debug("%s: encoder %s", self.path, codec)
        options = {}
        if self.path.suffix.lower() in (".mkv", ".webm", ".mka"):
            # Bounded in memory: the open cluster, and the interleaving queue (by default up to
            # 10 s while it waits for every stream), so that a hard kill loses little.
            options = {"cluster_time_limit": str(CLUSTER_MS), "flush_packets": "1",
                       "max_interleave_delta": str(CLUSTER_MS * 200)}
        elif self.partial is None and self.path.suffix.lower() in SEEKING_CONTAINERS:
            # a FIFO or device cannot seek back to write the index at the end: fragmented
            # MP4, whose index travels with each fragment, plays the same
            options = {"movflags": "frag_keyframe+empty_moov+default_base_moof"}
            log.info("%s: not a regular file: written as fragmented MP4", self.path)
        try:
            self.container = av.open(str(self.target), mode="w", format=container_format(self.path), options=options)
        except (av.error.FFmpegError, ValueError) as exc:
            raise SinkError(f"{self.path}: cannot write this kind of file ({exc})") from None
        try:
            encoder = av.codec.Codec(codec, "w")
        except Exception:  # noqa: BLE001 - PyAV raises UnknownCodecError or ValueError
            raise SinkError(f"{self.path}: encoder {codec!r} is not available in this FFmpeg build") from None
        if not can_hold(self.container, encoder):
            raise SinkError(f"{self.path}: a {self.path.suffix} file cannot hold {codec} video; "
                            f"choose another --codec or container")
        self.stream = self._add_video(codec, crf, preset, threads)
        self._add_copies()
        self._add_attachments()
        if self.info.chapters:
            try:
                self.container.set_chapters(self.info.chapters)
            except (av.error.FFmpegError, ValueError, TypeError) as exc:
                log.warning("%s: the input's %d chapters not kept: %s", self.path, len(self.info.chapters), exc)
        try:
            self.stream.codec_context.open()
        except av.error.FFmpegError as exc:
            raise SinkError(f"{self.path}: encoder {codec} refused its settings ({exc.strerror or exc})") from None

    def _add_video(self, codec: str, crf: int, preset: str, threads: int) -> "av.video.stream.VideoStream":
        info = self.info
        rate = Fraction(info.fps).limit_denominator(1001) if info.fps > 0 else Fraction(30)
        try:
            stream = self.container.add_stream(codec, rate=rate, options=_encoder_options(codec, crf, preset))
        except (av.error.FFmpegError, ValueError) as exc:
            raise SinkError(f"{self.path}: encoder {codec!r} is not available ({exc})") from None
        width, height = self.size()
        stream.width, stream.height = width + width % 2, height + height % 2
        if width % 2 or height % 2:
            log.warning("%s: odd frame size %dx%d padded to %dx%d for 4:2:0", self.path, width, height,
                        stream.width, stream.height)
        self.colour = self._output_colour(stream.codec_context.codec.name, info.colour or OPENCV_I420)
        self.bits = info.bits if info.colour else 8
        stream.pix_fmt = self._pixel_format(stream)
        cc = stream.codec_context
        cc.colorspace, cc.color_range = self.colour.space, self.colour.range
        cc.color_primaries, cc.color_trc = self.colour.primaries, self.colour.transfer
        if info.sample_aspect_ratio:
            cc.sample_aspect_ratio = info.sample_aspect_ratio
        if info.interlaced:
            cc.field_order = info.field_order
            cc.flags |= av.codec.context.Flags.interlaced_dct | av.codec.context.Flags.interlaced_me
        if self.path.suffix.lower() in NO_REORDER or not self.reorder:
            cc.max_b_frames = 0
        if codec in QSCALE_CODECS:  # a fixed quantiser: rate control may only pick q
            cc.qmin = cc.qmax = min(31, max(1, round(crf / 6)))
            # MPEG-1/2 refuse a bit rate beyond their levels' (Invalid argument); 60 Mb/s is
            # above what q 3 needs at 1080p and within MPEG-2's high level
            cc.bit_rate = 60_000_000 if codec in ("mpeg1video", "mpeg2video") else 1_000_000_000
        self.time_base = info.time_base or Fraction(1, max(1, round(info.fps or 30)))
        if codec in ("mpeg1video", "mpeg2video") or self.path.suffix.lower() in FRAME_RATE_CONTAINERS:
            # MPEG-1/2 take only standard rates, and AVI's time base is its frame rate (a
            # fine input time base declares hundreds of fps and empty frames between): 1/rate
            self.time_base = 1 / Fraction(info.fps or 25).limit_denominator(1001)
        cc.time_base = stream.time_base = self.time_base
        if threads:
            cc.thread_count = threads
        stream.thread_type = "AUTO"
        if codec == "libx265" and self.path.suffix.lower() in (".mp4", ".m4v", ".mov"):
            cc.codec_tag = "hvc1"  # parameter sets in the header, as Apple's players require
        stream.metadata.update(true_tags(info.stream_metadata))
        self.container.metadata.update(true_tags(info.metadata))
        return stream

    def _output_colour(self, codec: str, colour: ColourDescription) -> ColourDescription:
        """The input's description, where the output can say it; otherwise what players will
        assume for it (the planes are converted to that, so colours still come out right)."""
        if codec == "mjpeg":  # JPEG is BT.601, full range, whatever the tags say
            target = ColourDescription(5, True, colour.primaries, colour.transfer)
        elif codec in CODECS_WITH_COLOUR or self.path.suffix.lower() in CONTAINERS_WITH_COLOUR:
            return colour
        else:
            width, height = self.size()
            target = interpret(UNSPECIFIED, RANGE_UNSPECIFIED, colour.primaries, colour.transfer, width, height)
        if (target.space, target.full_range) != (colour.space, colour.full_range):
            log.info("%s: %s in %s cannot carry the colour description; converted to %s, which players assume",
                     self.path, codec, self.path.suffix, target)
        return target

    def size(self) -> tuple[int, int]:
        """(width, height) of what is written, before padding to even sizes."""
        width, height = self.info.width, self.info.height
        if self.show_both:
            width = 2 * (width + width % 2) if self.info.colour else 2 * width
        return width, height

    def _pixel_format(self, stream: "av.video.stream.VideoStream") -> str:
        """The planes' own format when the encoder takes it; else 8-bit 4:2:0 (said once)."""
        formats = {f.name for f in stream.codec_context.codec.video_formats or []}
        if stream.codec_context.codec.name == "mjpeg":
            self.bits = 8
            return "yuvj420p"  # full range, as _output_colour made it
        wanted = yuv420(self.bits)
        if not formats or wanted in formats:
            return wanted
        if not any(f.startswith("yuv420p") for f in formats):  # ProRes: 4:2:2 or 4:4:4 only
            self.convert_to = sorted(formats)[0]
            log.info("%s: %s takes no 4:2:0 video; the frames are converted to %s", self.path, stream.name,
                     self.convert_to)
            return self.convert_to
        for bits in range(self.bits - 1, 8, -1):
            if yuv420(bits) in formats:
                log.warning("%s: %s cannot encode %d-bit video; writing %d-bit", self.path, stream.name, self.bits, bits)
                self.bits = bits
                return yuv420(bits)
        if self.bits > 8:
            log.warning("%s: %s cannot encode %d-bit video; writing 8-bit", self.path, stream.name, self.bits)
        self.bits = 8
        return "yuv420p"

    def _add_copies(self) -> None:
        for s in self.info.copied:
            why: object = f"a {self.path.suffix} file cannot hold it"
            try:
                if holds(self.container, s.codec_context.name):
                    copy = self.container.add_stream_from_template(s)
                    copy.disposition = s.disposition
                    copy.metadata.update(true_tags(s.metadata))  # language, title: not copied by the template
                    self._copies[s.index] = copy
                    continue
            except (av.error.FFmpegError, ValueError) as exc:
                why = exc
            try:
                transcoder = self._transcoder(s)
            except (av.error.FFmpegError, ValueError) as exc:
                transcoder, why = None, exc
            if transcoder is None:
                log.warning("%s: %s stream %d (%s) not copied: %s", self.path, s.type, s.index, s.codec_context.name, why)
                continue
            transcoder.stream.metadata.update(true_tags(s.metadata))
            transcoder.stream.disposition = s.disposition
            self._copies[s.index] = transcoder
            log.warning("%s: %s %s (stream %d) cannot be copied into %s: %s %s", self.path, s.codec_context.name,
                        s.type, s.index, self.path.suffix, "re-encoded as" if s.type == "audio" else "converted to",
                        transcoder.stream.codec_context.name)

    def _add_attachments(self) -> None:
        if not self.info.attachments:
            return
        if self.container.format.name not in ATTACHMENT_MUXERS:
            log.warning("%s: the input's %d attachment(s) (%s) not kept: a %s file cannot hold attachments", self.path,
                        len(self.info.attachments), ", ".join(name for name, _, _ in self.info.attachments),
                        self.path.suffix)
            return
        for name, mimetype, data in self.info.attachments:
            self.container.add_attachment(name, mimetype, data)

    def _transcoder(self, s) -> "AudioTranscoder | SubtitleTranscoder | None":
        """What converts a stream the container cannot hold into one it can; None if nothing."""
        suffix = self.path.suffix.lower()
        if s.type == "audio" and suffix in AUDIO_FOR:
            return AudioTranscoder(self.container, s, AUDIO_FOR[suffix])
        if s.type == "subtitle" and s.codec_context.name in TEXT_SUBTITLES and suffix in SUBTITLES_FOR:
            return SubtitleTranscoder(self.container, s, SUBTITLES_FOR[suffix])
        return None

    # --- writing --------------------------------------------------------------------------

    def write(self, frame: Frame) -> bool:
        picture = side_by_side(frame.image, frame.enhanced) if self.show_both else frame.enhanced
        vf = self._video_frame(picture)
        pts = self._rescale(frame)
        if self._last_pts is not None and pts <= self._last_pts:
            # encoders need strictly increasing timestamps; one frame's step (not one tick)
            # keeps a player's and ffmpeg's frame-rate view of the file monotonic too
            pts = self._last_pts + max(1, round(1 / (Fraction(self.info.fps or 25).limit_denominator(1001)
                                                    * self.time_base)))
        self._last_pts = pts
        vf.pts, vf.time_base = pts, self.time_base
        vf.pict_type = av.video.frame.PictureType.NONE
        vf.colorspace, vf.color_range = self.colour.space, self.colour.range
        vf.color_primaries, vf.color_trc = self.colour.primaries, self.colour.transfer
        if self.frames == 0 and frame.rotation:
            self.stream.set_display_rotation(frame.rotation)  # before the first frame is encoded
        self._held.extend(frame.packets)
        self._mux_copied(until=float(pts * self.time_base))
        self.container.mux(self.stream.encode(vf))
        self.frames += 1
        return True

    def _mux_copied(self, until: float | None) -> None:
        """Mux the held packets of copied streams up to `until` seconds (all when None);
        the muxer interleaves them with the video."""
        keep, waiting = [], set()
        for index, packet in self._held:
            when = packet.dts if packet.dts is not None else packet.pts  # decode order: B-frames of a copied video
            copy = self._copies.get(index)
            if copy is None:
                continue
            if index in waiting or until is not None and when is not None and when * packet.time_base > until:
                keep.append((index, packet))
                waiting.add(index)  # a stream's packets go out in their order
                continue
            try:
                if isinstance(copy, TRANSCODERS):
                    copy.mux(packet)
                else:
                    packet.stream = copy
                    self.container.mux(packet)
            except av.error.FFmpegError as exc:  # a damaged input packet (bad timestamps): leave it out
                self.unmuxable += 1
                log.debug("%s: a %s packet could not be copied: %s", self.path, copy.type, exc)
        self._held = keep

    def _video_frame(self, picture: Picture) -> "av.VideoFrame":
        """The encoder's frame for a picture: the planes' own av.VideoFrame when they were
        allocated for it (no copy), else a copy; odd sizes padded by the edge pixels; for an
        encoder without 4:2:0 (ProRes) converted by swscale to its format."""
        frame = self._frame_420(picture)
        return frame if self.convert_to is None else frame.reformat(format=self.convert_to)

    def _frame_420(self, picture: Picture) -> "av.VideoFrame":
        stream = self.stream
        if isinstance(picture, np.ndarray):
            rgb = picture
            pad = (stream.height - rgb.shape[0], stream.width - rgb.shape[1])
            if any(pad):
                rgb = np.pad(rgb, ((0, pad[0]), (0, pad[1]), (0, 0)), mode="edge")
            # OpenCV's conversion (BT.601, limited range; tagged so) costs 1.1 ms per 1080p
            # frame where swscale takes 6.
            i420 = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2YUV_I420)
            return av.VideoFrame.from_numpy_buffer(i420, format="yuv420p")
        if (picture.colour.space, picture.colour.full_range) != (self.colour.space, self.colour.full_range):
            picture = picture.converted(self.colour)
        owner = picture.owner
        if (isinstance(owner, av.VideoFrame) and owner.format.name == stream.pix_fmt and picture.bits == self.bits
                and (owner.width, owner.height) == (stream.width, stream.height) and _is_base(picture, owner)):
            _pad_edges(picture, owner)
            return owner
        return self._copied_frame(picture)

    def _copied_frame(self, picture: YUVPlanes) -> "av.VideoFrame":
        """The planes copied into a new frame of the encoder's format (and depth)."""
        layout = self.stream.pix_fmt if self.convert_to is None else yuv420(self.bits)
        frame = av.VideoFrame(self.stream.width, self.stream.height, layout)
        dtype = np.uint8 if self.bits == 8 else np.uint16
        shift = picture.bits - self.bits
        for plane, src in zip(frame.planes, (picture.y, picture.u, picture.v)):
            dst = plane_view(plane, dtype)[: src.shape[0], : src.shape[1]]
            dst[...] = ((src.astype(np.uint32) + (1 << (shift - 1))) >> shift).clip(0, (1 << self.bits) - 1) \
                if shift > 0 else src
        _pad_edges(YUVPlanes(*(plane_view(p, dtype)[: s.shape[0], : s.shape[1]] for p, s in
                               zip(frame.planes, (picture.y, picture.u, picture.v))), picture.colour, self.bits), frame)
        return frame

    def _rescale(self, frame: Frame) -> int:
        if frame.pts is None:
            return frame.index
        if frame.time_base is None or frame.time_base == self.time_base:
            return frame.pts
        return round(frame.pts * frame.time_base / self.time_base)

    def close(self, complete: bool = True) -> None:
        """Flush the encoder and finish the file, then give it its final name (a stopped
        run too, unless keep_incomplete_partial)."""
        if self.container is None:
            return
        try:
            self.container.mux(self.stream.encode(None))  # the frames still inside the encoder
            # A stopped run ends the copied streams with the video, not at the input's end.
            end = None if complete or self._last_pts is None else float((self._last_pts + 1) * self.time_base)
            self._mux_copied(until=end)
            for copy in self._copies.values():
                if isinstance(copy, TRANSCODERS):
                    copy.flush()
            self.container.close()
        except Exception:
            self._abandon()
            raise
        self.container = None
        if self.unmuxable:
            log.warning("%s: %d damaged packet(s) of the copied streams left out", self.path, self.unmuxable)
        if self.frames == 0:
            self._abandon()
        elif self.partial and (complete or not self.keep_incomplete_partial):
            self.partial.finish()
        elif self.partial:
            self.partial.release()

    def _abandon(self) -> None:
        """Close without finishing and remove the partial file (nothing usable in it)."""
        if self.container is not None:
            try:
                self.container.close()
            except Exception:  # noqa: BLE001 - it is being thrown away
                pass
            self.container = None
        if self.partial:
            self.partial.discard()


#: Input tags that would lie about the output: its encoder (FFmpeg names the new one), an
#: alpha channel it no longer has, the input's durations and sizes.
UNTRUE_TAGS = {"encoder", "alpha_mode", "duration", "number_of_frames", "number_of_bytes", "bps", "_statistics_tags",
               "_statistics_writing_app", "_statistics_writing_date_utc"}


def true_tags(tags: dict) -> dict:
    """The tags of an input that stay true of the output."""
    return {k: v for k, v in tags.items() if k.lower() not in UNTRUE_TAGS}


#: The audio codec an output container is given when the input's cannot be copied into it.
AUDIO_FOR = {".webm": "libopus", ".mkv": "libopus", ".mka": "libopus", ".mp4": "aac", ".m4v": "aac", ".mov": "aac",
             ".mpg": "mp2", ".mpeg": "mp2", ".ts": "aac", ".avi": "mp2"}


class AudioTranscoder:
    """An audio stream that the output container cannot hold as it is (AAC in WebM):
    decoded and encoded again, its timing kept, so that the sound is not dropped."""

    def __init__(self, container, template, codec: str) -> None:
        self.container = container
        # the input stream's own decoder, made from all of its parameters (WMA needs its
        # block alignment, which a decoder made by name alone lacks); nothing else decodes it
        self.decoder = template.codec_context
        self.time_base = template.time_base
        rate = 48000 if codec == "libopus" else template.codec_context.sample_rate or 48000
        self.stream = container.add_stream(codec, rate=rate)
        self.stream.layout = template.codec_context.layout.name if template.codec_context.layout else "stereo"
        self.resampler = av.AudioResampler(format=self.stream.format.name, layout=self.stream.layout.name, rate=rate,
                                           frame_size=self.stream.frame_size or None)
        self.type = "audio"

    def mux(self, packet: "av.Packet") -> None:
        for frame in self.decoder.decode(packet):
            self._encode(frame)

    def flush(self) -> None:
        for frame in self.decoder.decode(None):
            self._encode(frame)
        self._encode(None)
        self.container.mux(self.stream.encode(None))

    def _encode(self, frame) -> None:
        for resampled in self.resampler.resample(frame):
            self.container.mux(self.stream.encode(resampled))


#: Text subtitle codecs (FFmpeg decodes them to ASS events), and the text codec an output
#: container is given when it cannot hold the input's (SRT in MP4 becomes MP4's own).
TEXT_SUBTITLES = {"subrip", "srt", "ass", "ssa", "webvtt", "mov_text", "text"}
SUBTITLES_FOR = {".mp4": "mov_text", ".m4v": "mov_text", ".mov": "mov_text", ".3gp": "mov_text", ".webm": "webvtt",
                 ".mkv": "ass"}


class SubtitleTranscoder:
    """Text subtitles that the output container cannot hold as they are (SRT in MP4):
    decoded and encoded as the container's own text codec, each event at its own time."""

    def __init__(self, container, template, codec: str) -> None:
        self.container = container
        self.decoder = template.codec_context  # the input stream's own decoder; nothing else decodes it
        if not self.decoder.is_open:
            self.decoder.open()  # opening makes the ASS header that text encoders start from
        self.stream = container.add_stream(codec)
        self.stream.codec_context.subtitle_header = self.decoder.subtitle_header
        self.type = "subtitle"

    def mux(self, packet: "av.Packet") -> None:
        if not packet.size:
            return
        events = self.decoder.decode2(packet)
        if events is None:
            return
        out = self.stream.codec_context.encode_subtitle(events)
        out.stream, out.time_base = self.stream, packet.time_base
        out.pts = out.dts = packet.pts if packet.pts is not None else packet.dts
        out.duration = packet.duration
        self.container.mux(out)

    def flush(self) -> None:
        pass  # each event is written as it comes


TRANSCODERS = (AudioTranscoder, SubtitleTranscoder)


def container_format(path: Path) -> str | None:
    """The muxer for an output name (the partial name has the same extension)."""
    return {".mkv": "matroska", ".mka": "matroska", ".webm": "webm"}.get(path.suffix.lower())


def _encoder_options(codec: str, crf: int, preset: str) -> dict:
    if codec == "libx264":
        return {"crf": str(crf), "preset": preset}
    if codec == "libx265":  # x265 prints its banner and statistics to stderr unless told not to
        return {"crf": str(crf), "preset": preset, "x265-params": "log-level=error"}
    if codec == "libvpx-vp9":  # constant quality; "good" at speed 5 keeps up on a small CPU
        return {"crf": str(crf), "b": "0", "deadline": "good", "cpu-used": "5", "row-mt": "1"}
    if codec == "libsvtav1":
        return {"crf": str(crf), "preset": "8"}
    return {}


def _is_base(picture: YUVPlanes, owner: "av.VideoFrame") -> bool:
    """True when the planes start at the owner's plane buffers (views of them, not copies)."""
    return all(p.__array_interface__["data"][0] == np.frombuffer(q, np.uint8).__array_interface__["data"][0]
               for p, q in zip((picture.y, picture.u, picture.v), owner.planes))


def _pad_edges(picture: YUVPlanes, owner: "av.VideoFrame") -> None:
    """Fill the even-size padding of an odd-size picture with its edge pixels."""
    h, w = picture.shape
    dtype = np.uint8 if picture.bits == 8 else np.uint16
    if (owner.width, owner.height) == (w, h):
        return
    y = plane_view(owner.planes[0], dtype)
    if owner.width > w:
        y[:h, w] = y[:h, w - 1]
    if owner.height > h:
        y[h, :] = y[h - 1, :]


#: Image formats that hold 16 bits per channel, and those that hold alpha.
DEEP_IMAGES = {".png", ".tif", ".tiff"}
ALPHA_IMAGES = {".png", ".tif", ".tiff", ".webp", ".tga"}
JPEG_NAMES = {".jfif": ".jpg", ".jpe": ".jpg"}  # other names of JPEG files, which OpenCV's encoder does not know


class ImageSink:
    """Writes each enhanced frame as an image: to `path`, or under the folder `root`
    at the frame's own relative name (mirroring an input folder). Alpha is copied and
    16-bit depth kept where the output format has them (said once when it has not); grey
    images are written grey. Each file is written under a temporary name and renamed."""

    def __init__(self, path: Path | None = None, root: Path | None = None, show_both: bool = False) -> None:
        self.path, self.root, self.show_both = path, root, show_both
        if path is not None:
            check_output_path(path)
        else:
            try:
                root.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise SinkError(f"{root}: cannot make the output folder ({exc.strerror})") from None
            if not os.access(root, os.W_OK | os.X_OK):
                raise SinkError(f"{root}: output folder is not writable")
        self.frames = 0
        self._said: set = set()

    def write(self, frame: Frame) -> bool:
        target = self.path if self.path is not None else self.root / frame.name
        target.parent.mkdir(parents=True, exist_ok=True)
        image = side_by_side(frame.image, frame.enhanced) if self.show_both else as_rgb(frame.enhanced)
        data = self._encode(target, image, frame.alpha, grey=_is_grey(frame.image)).tobytes()
        if frame.tags is not None:
            data = with_tags(data, target.suffix.lower(), frame.tags)
        partial = partial_path(target)
        partial.write_bytes(data)
        os.replace(partial, target)
        self.frames += 1
        return True

    def _encode(self, target: Path, image: np.ndarray, alpha: np.ndarray | None, grey: bool) -> np.ndarray:
        suffix = target.suffix.lower() or ".png"
        if image.dtype == np.uint16 and suffix not in DEEP_IMAGES:
            self._say(f"{target.suffix} holds 8 bits per channel: 16-bit images are written as 8-bit")
            image, alpha = (image >> 8).astype(np.uint8), None if alpha is None else (alpha >> 8).astype(np.uint8)
        if alpha is not None and suffix not in ALPHA_IMAGES:
            self._say(f"{target.suffix} has no alpha: the transparency of the input is not kept")
            alpha = None
        pixels = image[..., 0] if grey and alpha is None and suffix != ".ppm" else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        if alpha is not None and not self.show_both:
            pixels = np.dstack([cv2.cvtColor(image, cv2.COLOR_RGB2BGR), alpha.astype(image.dtype)])
        if suffix in PILLOW_FORMATS:
            return np.frombuffer(encode_with_pillow(pixels, suffix), np.uint8)
        ok, data = cv2.imencode(JPEG_NAMES.get(suffix, suffix), pixels)
        if not ok:
            raise SinkError(f"{target}: cannot encode an image with suffix {target.suffix!r}")
        return data

    def _say(self, message: str) -> None:
        if message not in self._said:
            self._said.add(message)
            log.warning("%s", message)

    def close(self, complete: bool = True) -> None:
        pass


def _is_grey(image: object) -> bool:
    return isinstance(image, np.ndarray) and image.ndim == 3 and np.array_equal(image[..., 0], image[..., 1]) \
        and np.array_equal(image[..., 0], image[..., 2])


class PreviewSink:
    """An OpenCV window showing the enhanced view; `b` toggles before|after side by side,
    `+`/`-` change the strength, `q` or Esc quits, closing the window quits too. Shows fps,
    capture-to-display latency and the strength."""

    TITLE = "realtime-enhance (b: before/after, +/-: strength, q: quit)"

    def __init__(self, show_both: bool = False, controls=None) -> None:
        if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            # OpenCV's GUI aborts the whole process without a display: refuse up front.
            raise SinkError("no display for the preview window; use --no-preview (with -o to record)")
        from .controls import Controls

        self.controls = controls or Controls(show_both=show_both)
        self.controls.show_both = self.controls.show_both or show_both
        self.frames = 0
        self._times: list[float] = []
        self._opened = False

    def write(self, frame: Frame) -> bool:
        if not self._opened:
            cv2.namedWindow(self.TITLE, cv2.WINDOW_NORMAL)
            self._opened = True
        now = time.monotonic()
        self._times = [t for t in self._times if now - t < 1.0] + [now]
        image = side_by_side(frame.image, frame.enhanced) if self.controls.show_both else as_rgb(frame.enhanced)
        bgr = cv2.cvtColor(as_rgb(image), cv2.COLOR_RGB2BGR)
        text = (f"{len(self._times):d} fps  latency {1000 * (now - frame.captured):.0f} ms  "
                f"strength {self.controls.strength:.2f}")
        cv2.putText(bgr, text, (10, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 0, 0), 4, cv2.LINE_AA)
        cv2.putText(bgr, text, (10, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 1, cv2.LINE_AA)
        cv2.imshow(self.TITLE, bgr)
        self.frames += 1
        key = cv2.waitKey(1) & 0xFF
        if key == ord("b"):
            self.controls.show_both = not self.controls.show_both
        if key in (ord("+"), ord("=")):
            self.controls.set_strength(self.controls.strength + 0.1)
        if key in (ord("-"), ord("_")):
            self.controls.set_strength(self.controls.strength - 0.1)
        if key in (ord("q"), 27):
            return False
        return cv2.getWindowProperty(self.TITLE, cv2.WND_PROP_VISIBLE) >= 1

    def close(self, complete: bool = True) -> None:
        if self._opened:
            cv2.destroyWindow(self.TITLE)
            cv2.waitKey(1)



def virtual_camera_hint() -> str:
    """What to install for a virtual camera on this system."""
    if sys.platform.startswith("linux"):
        return ("no v4l2loopback device: install it (Debian/Ubuntu: sudo apt install v4l2loopback-dkms) and load it: "
                "sudo modprobe v4l2loopback exclusive_caps=1 card_label=realtime-enhance")
    return "no virtual camera: install OBS Studio (28 or newer) and start its Virtual Camera once"


class VirtualCameraSink:
    """Publishes the enhanced stream as a camera device that video-call apps open, through
    pyvirtualcam: v4l2loopback on Linux, OBS's virtual camera on Windows and macOS. Frames
    are sent as RGB; pyvirtualcam converts them to the device's own format. Sending never
    waits for the device, and the live pipeline hands this sink only the newest frame."""

    def __init__(self, width: int, height: int, fps: float, device: str | None = None) -> None:
        try:
            import pyvirtualcam
        except ImportError:
            raise MissingDependency("the virtual camera needs pyvirtualcam", "virtualcam") from None
        try:
            self.camera = pyvirtualcam.Camera(width, height, fps or 30, fmt=pyvirtualcam.PixelFormat.RGB, device=device)
        except (RuntimeError, ValueError) as exc:
            detail = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
            raise SinkError(f"{virtual_camera_hint()} ({detail})") from None
        self.size = (width, height)
        self.frames = 0
        log.info("virtual camera %s (%s), %dx%d", self.camera.device, self.camera.backend, width, height)

    def write(self, frame: Frame) -> bool:
        rgb = as_rgb(frame.enhanced)
        if (rgb.shape[1], rgb.shape[0]) != self.size:
            rgb = cv2.resize(rgb, self.size, interpolation=cv2.INTER_AREA)
        self.camera.send(np.ascontiguousarray(rgb))
        self.frames += 1
        return True

    def close(self, complete: bool = True) -> None:
        self.camera.close()
