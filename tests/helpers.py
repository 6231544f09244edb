"""Test helpers: tiny real media written by the tests themselves with PyAV, the command
line in a subprocess, the shared data beside the checkout."""
from __future__ import annotations

import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from realtime.devdata import SHARED



def need_shared(*parts: str) -> Path:
    """The path under ../shared, or skip the test saying what is missing."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {path} (the shared data beside the project checkout), which is absent")
    return path


def frame_pattern(index: int, width: int, height: int) -> np.ndarray:
    """A dark frame with a gradient, and its index written in binary as 8 black or white
    8x8 blocks along the top (enhancement keeps 0 at 0 and 255 at 255, so the index
    survives it and the encoder)."""
    x = np.linspace(0, 10, width, dtype=np.float32)[None, :, None]
    image = np.clip(np.full((height, width, 3), 8 + (index % 16), np.float32) + x, 0, 255).astype(np.uint8)
    for bit in range(8):
        image[:8, 8 * bit : 8 * bit + 8] = 255 if (index >> bit) & 1 else 0
    return image


def frame_index(image: np.ndarray) -> int:
    """Read back the index that frame_pattern wrote."""
    return sum(1 << bit for bit in range(8) if image[:8, 8 * bit : 8 * bit + 8].mean() > 128)


def make_clip(path: Path, frames: int = 24, size: tuple[int, int] = (96, 64), fps: int = 24,
              audio: bool = True, vfr: bool = False, rotation: int = 0) -> list[Fraction]:
    """Write an H.264 clip (and AAC audio); return the video frames' presentation times (s)."""
    width, height = size
    times = []
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "crf": "10"})
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        if rotation:
            video.set_display_rotation(rotation)
        tb = Fraction(1, 1000) if vfr else Fraction(1, fps)
        video.codec_context.time_base = tb
        video.time_base = tb
        sound = out.add_stream("aac", rate=48000) if audio else None
        if sound is not None:
            sound.layout = "stereo"
        t = 0
        for i in range(frames):
            vf = av.VideoFrame.from_ndarray(frame_pattern(i, width, height), format="rgb24")
            vf.pts = t
            vf.time_base = tb
            times.append(t * tb)
            out.mux(video.encode(vf))
            t += (1000 // fps + (17 if i % 3 == 0 else 0)) if vfr else 1
        out.mux(video.encode(None))
        if sound is not None:
            seconds = float(times[-1]) + 0.5
            samples = np.sin(2 * np.pi * 440 * np.arange(int(48000 * seconds)) / 48000).astype(np.float32)
            for start in range(0, len(samples), 1024):
                chunk = samples[start : start + 1024]
                af = av.AudioFrame.from_ndarray(np.stack([chunk, chunk]), format="fltp", layout="stereo")
                af.sample_rate = 48000
                af.pts = start
                out.mux(sound.encode(af))
            out.mux(sound.encode(None))
    return times


def video_times(path: Path) -> list[Fraction]:
    with av.open(str(path)) as container:
        return [f.pts * f.time_base for f in container.decode(video=0)]


def video_indices(path: Path) -> list[int]:
    with av.open(str(path)) as container:
        return [frame_index(f.to_ndarray(format="rgb24")) for f in container.decode(video=0)]


def video_means(path: Path) -> list[float]:
    with av.open(str(path)) as container:
        return [float(f.to_ndarray(format="gray").mean()) for f in container.decode(video=0)]


def audio_packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return []
        return [bytes(p) for p in container.demux(audio=0) if p.size]


def cli(*args: str, timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
    """Run the command line in a subprocess, as a user would."""
    return subprocess.run([sys.executable, "-m", "realtime", *args], capture_output=True, text=True,
                          timeout=timeout, **kwargs)


# --- clips with exact colour descriptions ------------------------------------------------------

#: FFmpeg colorspace values -> the names PyAV's reformatter takes for them.
SWSCALE_SPACE = {1: "ITU709", 4: "FCC", 5: "ITU601", 6: "ITU601", 7: "SMPTE240M", 9: "BT2020", 10: "BT2020"}


def make_tagged_clip(path: Path, size: tuple[int, int], pix_fmt: str = "yuv420p", space: int | None = 1,
                     full_range: bool = False, primaries: int | None = 1, transfer: int | None = 1,
                     frames: int = 4, crf: int = 0, dark: float = 1.0) -> None:
    """An H.264 clip of FFmpeg's testsrc2 converted to `pix_fmt` by swscale with the given
    matrix and range, and tagged with them (None: left untagged). dark < 1 scales the
    picture down (a low-light clip)."""
    width, height = size
    with av.open(f"testsrc2=size={width}x{height}:rate=24:duration={frames / 24}", format="lavfi") as src, \
            av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=24, options={"crf": str(crf), "preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        cc = stream.codec_context
        if space is not None:
            cc.colorspace = space
        cc.color_range = 2 if full_range else 1 if space is not None else 0
        if primaries is not None:
            cc.color_primaries = primaries
        if transfer is not None:
            cc.color_trc = transfer
        rng = "JPEG" if full_range else "MPEG"
        for i, vf in enumerate(src.decode(video=0)):
            rgb = vf.to_ndarray(format="rgb24")
            if dark != 1.0:
                rgb = (rgb * dark).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
                format=pix_fmt, dst_colorspace=SWSCALE_SPACE.get(space or 1), dst_color_range=rng)
            frame.pts, frame.time_base = i, Fraction(1, 24)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def tags(path: Path) -> tuple:
    """(colorspace, color_range, color_primaries, color_trc, pix_fmt) of the video stream."""
    with av.open(str(path)) as c:
        cc = c.streams.video[0].codec_context
        return cc.colorspace, cc.color_range, cc.color_primaries, cc.color_trc, cc.pix_fmt


def as_player_shows(path: Path) -> list[np.ndarray]:
    """Every frame as uint8 RGB, converted by swscale with the file's own tags (what a
    player shows); untagged files as players guess (BT.709 for HD, limited range). Chroma
    is upsampled by point sampling: swscale's default filter differs between 8- and
    10-bit input, which would show as a difference between two such files."""
    frames = []
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        cc = stream.codec_context
        hd = cc.width >= 1280 or cc.height > 576
        space = SWSCALE_SPACE.get(cc.colorspace, "ITU709" if hd else "ITU601")
        rng = "JPEG" if cc.color_range == 2 or (cc.pix_fmt or "").startswith("yuvj") else "MPEG"
        for vf in c.decode(stream):
            frames.append(vf.reformat(format="rgb24", src_colorspace=space, src_color_range=rng,
                                      dst_color_range="JPEG", interpolation="POINT").to_ndarray())
    return frames


def identity_weights(path: Path) -> Path:
    """A checkpoint of the default architecture whose every parameter is zero: α = 0, so
    the curves change nothing; no dark denoise."""
    from realtime.checkpoint import Checkpoint, ModelConfig, expected_shapes, save_weights

    config = ModelConfig(width=4, shared_curves=True, long_side=32, denoise_below=0)
    save_weights(path, Checkpoint(config, {k: np.zeros(s, np.float32) for k, s in expected_shapes(config).items()}))
    return path


# --- damaged and unusual inputs -------------------------------------------------------------


def damage(path: Path, offsets: list[float], size: int = 3000, seed: int = 0) -> Path:
    """Overwrite `size` random bytes at each of `offsets` (fractions of the file), in place."""
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(seed)
    for fraction in offsets:
        start = int(len(data) * fraction)
        data[start:start + size] = rng.integers(0, 256, min(size, len(data) - start), dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    return path


def decodable(path: Path) -> tuple[list[Fraction], int]:
    """What a tolerant decoder (as ffmpeg's command line) gets out of a file: the times of
    every video frame that decodes, skipping packets that do not, and the audio packets."""
    times, audio = [], 0
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        wanted = [video, *container.streams.audio]
        while True:
            try:
                for packet in container.demux(*wanted):
                    if packet.stream.type == "audio":
                        audio += packet.size > 0
                        continue
                    try:
                        frames = video.codec_context.decode(packet if packet.size else None)
                    except av.error.FFmpegError:
                        continue
                    times += [f.pts * f.time_base for f in frames]
                break
            except av.error.EOFError:
                break
            except av.error.FFmpegError:
                continue
    return times, audio


def remux(src: Path, dst: Path, **options) -> Path:
    """Stream-copy every stream of `src` into `dst` (the container follows the suffix)."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", **options) as out:
        streams = {s.index: out.add_stream_from_template(s) for s in inp.streams if s.type in ("video", "audio")}
        for packet in inp.demux():
            if packet.dts is None or packet.stream.index not in streams:
                continue
            packet.stream = streams[packet.stream.index]
            out.mux(packet)
    return dst
