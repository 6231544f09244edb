"""What a hard kill (SIGKILL, power loss) costs a Matroska recording, measured.

    python benchmarks/kill_loss.py [CLIP] [--preset veryfast] [--after 2 4 6] [--json out.json]

A child process runs the pipeline as a live recording runs it (frames arriving at the
clip's own rate, VideoEnhancer, the file sink with the given x264 preset, .mkv) and
reports each frame it hands to the encoder; it is killed with SIGKILL after each of the
given times. Counted: frames handed to the encoder minus frames the left-over
NAME.partial.mkv still plays (the encoder's look-ahead and the open cluster).
"""
from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av

from realtime.devdata import SHARED


CHILD = Path(__file__).with_name("recording_child.py")


def kept_frames(path: Path) -> int:
    try:
        with av.open(str(path)) as c:
            return sum(1 for _ in c.decode(video=0))
    except (av.error.FFmpegError, OSError):
        return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("clip", nargs="?", type=Path, default=SHARED / "data" / "video" / "dark_pan_1080p_audio.mp4")
    p.add_argument("--preset", default="veryfast")
    p.add_argument("--after", type=float, nargs="+", default=[2.0, 4.0, 6.0], help="seconds before the kill")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    with av.open(str(args.clip)) as c:
        stream = c.streams.video[0]
        fps, size = float(stream.average_rate), f"{stream.width}x{stream.height}"
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for after in args.after:
            out = Path(scratch) / f"rec{after:g}.mkv"
            child = subprocess.Popen([sys.executable, str(CHILD), str(args.clip), str(out), args.preset, str(fps)],
                                     stdout=subprocess.PIPE, text=True)
            start, handed = None, 0
            for line in child.stdout:
                handed = int(line) + 1
                start = start or time.monotonic()
                if time.monotonic() - start > after:
                    break
            child.send_signal(signal.SIGKILL)
            child.wait()
            kept = kept_frames(out.with_name(f"{out.stem}.partial.mkv"))
            rows.append({"after_s": after, "handed_to_encoder": handed, "kept": kept, "lost": handed - kept,
                         "lost_s": (handed - kept) / fps})
            print(f"# {rows[-1]}", file=sys.stderr)
    print(f"Clip: {args.clip.name} ({size}, {fps:g} fps), x264 {args.preset}, Matroska, killed with SIGKILL\n")
    print("| killed after | frames handed to the encoder | frames the file plays | lost | lost (s) |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['after_s']:g} s | {r['handed_to_encoder']} | {r['kept']} | {r['lost']} | {r['lost_s']:.2f} |")
    if args.json:
        args.json.write_text(json.dumps({"clip": args.clip.name, "preset": args.preset, "fps": fps, "rows": rows},
                                        indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
