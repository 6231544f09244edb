"""Where a 1080p frame's core-milliseconds go in file mode, stage by stage.

    python benchmarks/file_profile.py [CLIP] [--frames 150] [--json out.json]

Each stage runs alone over the first frames of the clip (default: the 1080p clip with
audio in ../shared/data/video), timed by the process's CPU time (all its threads, so a
multi-threaded decoder or encoder counts in full) and divided by the frames:

- decoding to 4:2:0 planes (the video path) and to RGB (the path before it, swscale);
- the engine on planes (per frame, and with temporal processing as the CLI runs it) and
  on RGB frames (the path before it);
- OpenCV's RGB -> I420 conversion the path before it paid to encode;
- x264 (the run's settings) encoding the clip's own dark frames, and encoding the
  enhanced frames: brighter, with amplified shadow noise, they cost the encoder more.
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
from pathlib import Path

import av
import cv2
import numpy as np

from realtime import Enhancer
from realtime.frame import YUVPlanes
from realtime.sources import VideoFileSource
from realtime.temporal import VideoEnhancer
from realtime.devdata import SHARED



def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def per_frame(fn, frames: int) -> float:
    """core-ms per frame of fn() (which processes `frames` frames)."""
    start = cpu_seconds()
    fn()
    return 1000 * (cpu_seconds() - start) / frames


def decode_planes(clip: Path, count: int) -> list[YUVPlanes]:
    out = []
    for frame in VideoFileSource(clip):
        out.append(frame.image)
        if len(out) == count:
            break
    return out


def decode_rgb(clip: Path, count: int) -> list[np.ndarray]:
    out = []
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for vf in container.decode(stream):
            out.append(vf.to_ndarray(format="rgb24"))
            if len(out) == count:
                break
    return out


def encode(pictures: list, crf: int, preset: str) -> None:
    """x264 as the sink runs it, the frames in memory."""
    first = pictures[0]
    with av.open("/dev/null", "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=30, options={"crf": str(crf), "preset": preset})
        stream.width, stream.height, stream.pix_fmt = first.width, first.height, "yuv420p"
        stream.thread_type = "AUTO"
        for i, p in enumerate(pictures):
            vf = av.VideoFrame(p.width, p.height, "yuv420p")
            for plane, data in zip(vf.planes, (p.y, p.u, p.v)):
                np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)[:, : plane.width] = data
            vf.pts = i
            out.mux(stream.encode(vf))
        out.mux(stream.encode(None))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("clip", nargs="?", type=Path, default=SHARED / "data" / "video" / "dark_pan_1080p_audio.mp4")
    p.add_argument("--frames", type=int, default=150)
    p.add_argument("--crf", type=int, default=18)
    p.add_argument("--preset", default="veryfast")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    if not args.clip.exists():
        p.error(f"{args.clip}: no such clip")
    cv2.setNumThreads(1)  # as the pipeline runs
    n = args.frames
    rows = {}
    rows["decode to planes (video path)"] = per_frame(lambda: decode_planes(args.clip, n), n)
    rows["decode to RGB, swscale (before)"] = per_frame(lambda: decode_rgb(args.clip, n), n)
    planes, rgb = decode_planes(args.clip, n), decode_rgb(args.clip, n)
    planes = [YUVPlanes(np.array(p.y), np.array(p.u), np.array(p.v), p.colour, p.bits) for p in planes]
    engine = Enhancer(backend="cpu")
    engine(planes[0])
    rows["engine on planes, per frame"] = per_frame(lambda: [engine(f) for f in planes], n)
    video = VideoEnhancer(engine)
    video(planes[0])
    video.reset()
    rows["engine on planes, temporal (as the CLI runs it)"] = per_frame(lambda: [video(f) for f in planes], n)
    engine(rgb[0])
    rows["engine on RGB frames (before)"] = per_frame(lambda: [engine(f) for f in rgb], n)
    rows["RGB -> I420 for the encoder, OpenCV (before)"] = per_frame(
        lambda: [cv2.cvtColor(f, cv2.COLOR_RGB2YUV_I420) for f in rgb], n)
    enhanced = [engine(f) for f in planes]
    rows["x264 encoding the dark input frames"] = per_frame(lambda: encode(planes, args.crf, args.preset), n)
    rows["x264 encoding the enhanced frames"] = per_frame(lambda: encode(enhanced, args.crf, args.preset), n)
    print(f"Clip: {args.clip.name}, {planes[0].width}x{planes[0].height}, first {n} frames; x264 {args.preset} "
          f"CRF {args.crf}; core-ms per frame (process CPU time of the stage alone)\n")
    print("| stage | core-ms / frame |\n|---|---|")
    for name, value in rows.items():
        print(f"| {name} | {value:.1f} |")
    if args.json:
        args.json.write_text(json.dumps({"clip": str(args.clip.name), "frames": n, "core_ms": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
