"""What flows through the pipeline: :class:`Frame`, whose picture is either an RGB array
(images, cameras, the Python API) or :class:`YUVPlanes` (video files, as decoded).

Video stays in the decoder's planes from decoding to encoding: no full-frame RGB image is
made, colours are not converted twice, and the colour description travels with them.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Union

import av
import cv2
import numpy as np

from .colour import OPENCV_I420, ColourDescription, interpret
from .curves import CurveApplier, planes_to_rgb


def has_420_planes(format_name: str) -> bool:
    """Whether PyAV frames of this pixel format are 4:2:0 planes YUVPlanes can view."""
    return format_name in ("yuv420p", "yuvj420p", "nv12", "nv21") or (
        format_name.startswith("yuv420p") and format_name.endswith("le"))


@dataclass
class YUVPlanes:
    """A 4:2:0 picture as its planes: y (H, W), u and v (ceil(H/2), ceil(W/2)); uint8 codes
    for 8 bits, uint16 codes below 2**bits for 9 to 16 bits. Planes may be views with
    padded rows (a decoder's buffers); `owner` keeps what holds their memory alive.
    scale > 1: uint16 codes multiplied by `scale` (fixed point, e.g. a temporal average that
    keeps fractions of a code); such planes are an engine input, never encoded."""

    y: np.ndarray
    u: np.ndarray
    v: np.ndarray
    colour: ColourDescription
    bits: int = 8
    owner: object = field(default=None, repr=False)
    scale: int = 1

    @property
    def height(self) -> int:
        return self.y.shape[0]

    @property
    def width(self) -> int:
        return self.y.shape[1]

    @property
    def shape(self) -> tuple[int, int]:
        return self.y.shape

    @property
    def pix_fmt(self) -> str:
        """The planar FFmpeg pixel format these planes are in (little-endian)."""
        return "yuv420p" if self.bits == 8 else f"yuv420p{self.bits}le"

    @classmethod
    def empty(cls, width: int, height: int, colour: ColourDescription, bits: int = 8) -> "YUVPlanes":
        """Uninitialised planes, allocated inside an av.VideoFrame of even size (the rows
        and column beyond an odd size are the encoder's padding), so that a sink can encode
        them without a copy."""
        owner = av.VideoFrame(width + width % 2, height + height % 2, "yuv420p" if bits == 8 else f"yuv420p{bits}le")
        y, u, v = (plane_view(p, np.uint8 if bits == 8 else np.uint16) for p in owner.planes)
        cw, ch = (width + 1) // 2, (height + 1) // 2
        return cls(y[:height, :width], u[:ch, :cw], v[:ch, :cw], colour, bits, owner)

    @classmethod
    def from_video_frame(cls, frame: "av.VideoFrame", colour: ColourDescription | None = None) -> "YUVPlanes":
        """Views of a decoded PyAV frame's planes, without a copy: yuv420p, yuvj420p,
        yuv420p9le..yuv420p16le, nv12 and nv21 (other formats: `frame.reformat` first).

        colour: the frame's colour description; default: from the frame's own tags,
        untagged parts interpreted as players do (by resolution).
        """
        name = frame.format.name
        if not has_420_planes(name):
            raise ValueError(f"{name} frames are not 4:2:0 planes: convert with frame.reformat(format='yuv420p') first")
        if colour is None:
            colour = interpret(frame.colorspace, frame.color_range, frame.color_primaries, frame.color_trc,
                               frame.width, frame.height, full_range_format=name.startswith("yuvj"))
        if name in ("yuv420p", "yuvj420p"):
            return cls(*(plane_view(p, np.uint8) for p in frame.planes), colour, 8, frame)
        if name.startswith("yuv420p") and name.endswith("le"):
            return cls(*(plane_view(p, np.uint16) for p in frame.planes), colour, int(name[7:-2]), frame)
        y = plane_view(frame.planes[0], np.uint8)  # nv12, nv21: interleaved chroma
        uv = plane_view(frame.planes[1], np.uint8, 2 * ((frame.width + 1) // 2))
        u, v = (uv[:, 0::2], uv[:, 1::2]) if name == "nv12" else (uv[:, 1::2], uv[:, 0::2])
        return cls(y, u, v, colour, 8, frame)

    def to_rgb(self) -> np.ndarray:
        """(H, W, 3) uint8 R'G'B' as a player shows it (each 2x2 block's chroma for its pixels)."""
        return planes_to_rgb(self)

    def converted(self, colour: ColourDescription) -> "YUVPlanes":
        """These pixels in another colour description (matrix and range; same size and
        depth): decoded with their own description, encoded with `colour`."""
        out = YUVPlanes.empty(self.width, self.height, colour, self.bits)
        applier = CurveApplier(1, True)
        state = applier.prepare(np.zeros((1, 1, 3), np.float32), self.height, self.width, strength=0.0, planar=True)
        applier.apply_planes_band(self, out, state, 0, self.height)
        return out


def i420_picture(image: np.ndarray, conversion: int = cv2.COLOR_BGR2YUV_I420) -> "Picture":
    """An (H, W, 3) uint8 frame (OpenCV's BGR; RGB with cv2.COLOR_RGB2YUV_I420) as the 4:2:0
    planes the video path works in (BT.601, limited range: OpenCV's conversion, views of its
    one buffer); as RGB where a size is odd (I420 needs even sizes).

    Why planes: there the temporal denoiser also averages moving pixels in space and smooths
    colour, and the toe takes an averaged floor to black, which on RGB cost more than live
    video allows (docs/MODEL.md); planes also take a third less to enhance. A webcam delivers
    4:2:2 or 4:2:0 (YUYV, MJPEG) that OpenCV has expanded, so 4:2:0 keeps all of a 4:2:0
    camera's colour detail and half of a 4:2:2 one's vertical detail; brightness stays
    within a level."""
    height, width = image.shape[:2]
    if height % 2 or width % 2:
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if conversion == cv2.COLOR_BGR2YUV_I420 else image
    buf = cv2.cvtColor(image, conversion)
    chroma = height * width // 4
    flat = buf.reshape(-1)[height * width:]
    u, v = (flat[i * chroma: (i + 1) * chroma].reshape(height // 2, width // 2) for i in (0, 1))
    return YUVPlanes(buf[:height], u, v, OPENCV_I420, owner=buf)


def plane_view(plane: "av.video.plane.VideoPlane", dtype: type, columns: int | None = None) -> np.ndarray:
    """A (height, columns) NumPy view of a VideoPlane's buffer (rows may be padded);
    columns defaults to the plane's width in samples (give 2x that for interleaved UV)."""
    itemsize = np.dtype(dtype).itemsize
    rows = np.frombuffer(plane, dtype).reshape(plane.height, plane.line_size // itemsize)
    return rows[:, : columns or plane.width]


Picture = Union[np.ndarray, YUVPlanes]


@dataclass
class Frame:
    """One frame on its way through the pipeline.

    image: the picture as captured, (H, W, 3) uint8 RGB or YUVPlanes; enhanced: the engine's
    output, of the same kind, once done.
    pts / time_base: presentation time as in the input (None for images).
    captured: time.monotonic() when the source produced it (live latency is measured from it).
    packets: (input stream index, packet) of the other streams (audio, subtitles) demuxed
    before this frame, which a file sink copies unchanged.
    alpha: an image's alpha plane, carried unchanged to the output.
    """

    image: Picture
    index: int
    pts: int | None = None
    time_base: Fraction | None = None
    captured: float = field(default_factory=time.monotonic)
    enhanced: Picture | None = None
    enhanced_at: float = 0.0
    name: str = ""  # relative output name, for image sources
    rotation: int = 0  # display rotation (degrees counter-clockwise) the input asks players for
    packets: list = field(default_factory=list)
    alpha: np.ndarray | None = None
    tags: object = None  # a photo's imagemeta.PhotoTags (EXIF, ICC), written back with it


def as_rgb(picture: Picture) -> np.ndarray:
    """A picture as (H, W, 3) uint8 RGB, for windows, JPEG and images."""
    return picture.to_rgb() if isinstance(picture, YUVPlanes) else picture


@dataclass
class StreamInfo:
    """What a sink needs to know of the video it is given.

    colour/bits: the planes' description (None for RGB sources). copied: the input's
    streams to copy unchanged (their packets arrive on the frames)."""

    width: int
    height: int
    fps: float
    time_base: Fraction | None
    colour: ColourDescription | None = None
    bits: int = 8
    field_order: int = 0  # FFmpeg's AVFieldOrder: 0 unknown, 1 progressive, 2-5 interlaced
    sample_aspect_ratio: Fraction | None = None
    metadata: dict = field(default_factory=dict)  # the container's (title, creation time, ...)
    stream_metadata: dict = field(default_factory=dict)
    copied: list = field(default_factory=list)
    chapters: list = field(default_factory=list)  # PyAV's chapter dicts (id, start, end, time_base, metadata)
    attachments: list = field(default_factory=list)  # (name, MIME type, bytes): fonts of Matroska files

    @property
    def interlaced(self) -> bool:
        return self.field_order > 1
