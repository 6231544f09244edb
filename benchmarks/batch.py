"""Folders: does `--jobs N` make a folder of short clips finish sooner? Measured as a user runs it.

    python benchmarks/batch.py [--clips 8] [--seconds 3] [--jobs 1 2 4] [--repeat 2] [--json out.json]

Makes a folder of short dark 720p clips (cut from ../shared/data/video/dark_pan_720p.mp4
where present, else FFmpeg's testsrc2 darkened), runs `realtime-enhance DIR -o OUT
--jobs N` as a child process for each N (the median wall time of the runs), and checks
that every output equals the `--jobs 1` output frame for frame.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

from realtime.devdata import SHARED

CLI = [sys.executable, "-m", "realtime", "-q", "--crf", "0", "--preset", "ultrafast"]


def make_clips(folder: Path, count: int, seconds: float) -> None:
    source = SHARED / "data" / "video" / "dark_pan_720p.mp4"
    spec, options = (str(source), {}) if source.exists() else ("testsrc2=size=1280x720:rate=30", {"format": "lavfi"})
    frames_per_clip = int(seconds * 30)
    with av.open(spec, **options) as src:
        decoded = src.decode(video=0)
        for i in range(count):
            with av.open(str(folder / f"clip{i}.mp4"), "w") as out:
                stream = out.add_stream("libx264", rate=30, options={"preset": "ultrafast", "crf": "18"})
                stream.width, stream.height, stream.pix_fmt = 1280, 720, "yuv420p"
                for _ in range(frames_per_clip):
                    try:
                        vf = next(decoded)
                    except StopIteration:  # the source ran out: start it again
                        src.seek(0)
                        decoded = src.decode(video=0)
                        vf = next(decoded)
                    rgb = vf.to_ndarray(format="rgb24")
                    if options:  # the generated picture is bright: make it dark
                        rgb = (rgb // 6).astype(np.uint8)
                    out.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")))
                out.mux(stream.encode())


def decoded_frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="yuv420p") for f in c.decode(video=0)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clips", type=int, default=8)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "in"
        folder.mkdir()
        make_clips(folder, args.clips, args.seconds)
        outputs = {}
        for jobs in args.jobs:
            times = []
            for _ in range(args.repeat):
                out = Path(scratch) / f"out{jobs}"
                shutil.rmtree(out, ignore_errors=True)
                start = time.perf_counter()
                subprocess.run([*CLI, str(folder), "-o", str(out), "--jobs", str(jobs)], check=True)
                times.append(time.perf_counter() - start)
            outputs[jobs] = out
            rows.append({"jobs": jobs, "wall_s": statistics.median(times), "runs": times})
            print(f"# --jobs {jobs}: {times}", file=sys.stderr)
        first = outputs[args.jobs[0]]
        for jobs, out in outputs.items():
            same = all(all(np.array_equal(a, b) for a, b in zip(decoded_frames(first / f.name), decoded_frames(out / f.name)))
                       and len(decoded_frames(first / f.name)) == len(decoded_frames(out / f.name))
                       for f in sorted(first.iterdir()))
            next(r for r in rows if r["jobs"] == jobs)["same_frames_as_first"] = same
    base = rows[0]["wall_s"]
    print(f"{args.clips} clips of {args.seconds:g} s, 1280x720, on {os.cpu_count()} cores\n")
    print("| --jobs | wall s (median) | vs --jobs " + str(args.jobs[0]) + " | outputs equal frame for frame |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['jobs']} | {r['wall_s']:.2f} | {base / r['wall_s']:.2f}× | {'yes' if r['same_frames_as_first'] else 'NO'} |")
    if args.json:
        args.json.write_text(json.dumps({"clips": args.clips, "seconds": args.seconds, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
