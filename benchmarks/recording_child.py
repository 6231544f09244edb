"""A recording as a camera makes it, for kill tests: frames of CLIP arrive at FPS, pass the
VideoEnhancer and the file sink (x264 PRESET), and each frame's index is printed once the
sink has taken it (handed to the encoder). Kill it, then count what NAME.partial.mkv keeps.

    python benchmarks/recording_child.py CLIP OUT.mkv PRESET FPS

Used by benchmarks/kill_loss.py and tests/test_robustness.py.
"""
import sys
import time

from realtime.pipeline import Pipeline
from realtime.sinks import VideoFileSink
from realtime.sources import VideoFileSource
from realtime.temporal import VideoEnhancer


class Report:
    """After the file sink (listed first): says which frame it took, at a camera's pace."""

    def __init__(self, fps: float) -> None:
        self.start, self.fps, self.count = None, fps, 0

    def write(self, frame) -> bool:
        print(frame.index, flush=True)
        self.start = self.start or time.monotonic()
        self.count += 1
        time.sleep(max(0.0, self.start + self.count / self.fps - time.monotonic()))
        return True

    def close(self, complete: bool = True) -> None:
        pass


if __name__ == "__main__":
    clip, out, preset, fps = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    source = VideoFileSource(clip)
    sink = VideoFileSink(out, source.info, preset=preset)
    Pipeline(source, VideoEnhancer(backend="cpu"), [sink, Report(fps)], queue_size=2).run()
