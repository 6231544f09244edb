"""The three-stage pipeline on real media written by the tests."""
from __future__ import annotations

import threading
import time
from fractions import Fraction

import numpy as np
import pytest

from helpers import audio_packets, make_clip, video_indices, video_means, video_times
from realtime import Enhancer
from realtime.pipeline import FrameQueue, Pipeline
from realtime.sinks import VideoFileSink
from realtime.frame import Frame, StreamInfo
from realtime.sources import VideoFileSource


@pytest.fixture(scope="module")
def enhancer():
    with Enhancer(backend="cpu") as e:
        yield e


def run_file(src, dst, enhance, queue_size=2):
    source = VideoFileSource(src)
    sink = VideoFileSink(dst, source.info, preset="ultrafast", crf=10)
    return Pipeline(source, enhance, [sink], queue_size).run()


def test_file_mode_keeps_every_frame_in_order_with_timestamps_and_audio(clip, tmp_path, enhancer):
    src, times = clip
    dst = tmp_path / "out.mp4"
    stats = run_file(src, dst, enhancer)
    assert stats.written == len(times) and stats.dropped == 0
    assert video_times(dst) == times
    assert video_indices(dst) == list(range(len(times))), "frames lost or reordered"
    assert np.mean(video_means(dst)) > 1.5 * np.mean(video_means(src))
    assert audio_packets(dst) == audio_packets(src) != []


def test_variable_frame_rate_timestamps_are_kept(tmp_path, enhancer):
    src = tmp_path / "vfr.mkv"
    times = make_clip(src, frames=15, vfr=True, audio=False)
    assert len(set(np.diff([float(t) for t in times]).round(3))) > 1  # really variable
    dst = tmp_path / "vfr_out.mkv"
    run_file(src, dst, enhancer)
    assert video_times(dst) == times


def test_odd_sizes_are_encoded(tmp_path, enhancer):
    class OddSource:
        live, error = False, None

        def __iter__(self):
            for i in range(5):
                yield Frame(np.full((19, 33, 3), 10 + i, np.uint8), i, i, Fraction(1, 24))

        def close(self):
            pass

    dst = tmp_path / "odd_out.mp4"
    sink = VideoFileSink(dst, StreamInfo(33, 19, 24, Fraction(1, 24)), preset="ultrafast")
    stats = Pipeline(OddSource(), enhancer, [sink]).run()
    assert stats.written == 5 and len(video_times(dst)) == 5


class FakeCamera:
    """A live source producing frames at `fps` in real time, for `seconds`."""

    live = True
    error = None

    def __init__(self, fps: float, seconds: float) -> None:
        self.fps, self.seconds = fps, seconds
        self.produced = 0

    def __iter__(self):
        start = time.monotonic()
        while time.monotonic() - start < self.seconds:
            yield Frame(np.full((8, 8, 3), self.produced % 256, np.uint8), self.produced, self.produced,
                        Fraction(1, 1000), captured=time.monotonic())
            self.produced += 1
            time.sleep(1 / self.fps)

    def close(self):
        pass


class ListSink:
    def __init__(self):
        self.indices = []

    def write(self, frame):
        self.indices.append(frame.index)
        return True

    def close(self, complete=True):
        pass


def test_live_source_keeps_only_the_newest_frame_and_counts_drops():
    camera = FakeCamera(fps=200, seconds=1.0)

    def slow_enhance(image):
        time.sleep(0.05)  # 20 fps: far behind the camera
        return image

    sink = ListSink()
    stats = Pipeline(camera, slow_enhance, [sink], queue_size=8).run()
    assert stats.dropped > 0
    assert stats.written + stats.dropped == camera.produced
    assert sink.indices == sorted(sink.indices)
    # Latency stays bounded (no backlog): about one enhance time plus one frame wait.
    assert np.median(stats.latencies_ms) < 250
    assert sink.indices[-1] >= camera.produced - 3, "the last frames written are the newest"


def test_file_source_never_drops_even_when_the_enhancer_is_slow(clip, tmp_path):
    src, times = clip

    def slow(image):
        time.sleep(0.01)
        return image

    stats = run_file(src, tmp_path / "slow.mp4", slow, queue_size=1)
    assert stats.written == len(times) and stats.dropped == 0


@pytest.mark.parametrize("stage", ["enhance", "sink", "source"])
def test_a_failing_stage_stops_the_pipeline_and_the_error_reaches_the_caller(stage):
    camera = FakeCamera(fps=100, seconds=30)  # would run 30 s if not stopped

    class Boom(Exception):
        pass

    def enhance(image):
        if stage == "enhance" and camera.produced > 5:
            raise Boom("enhance failed")
        return image

    class Sink(ListSink):
        closed = False

        def write(self, frame):
            if stage == "sink" and frame.index > 5:
                raise Boom("sink failed")
            return super().write(frame)

        def close(self, complete=True):
            Sink.closed = True

    class BadCamera(FakeCamera):
        def __iter__(self):
            for frame in super().__iter__():
                if stage == "source" and self.produced > 5:
                    raise Boom("source failed")
                yield frame

    camera = BadCamera(fps=100, seconds=30)
    start = time.monotonic()
    with pytest.raises(Boom, match=f"{stage} failed"):
        Pipeline(camera, enhance, [Sink()]).run()
    assert time.monotonic() - start < 5
    assert Sink.closed, "the sink is closed (flushed) even when a stage fails"


def test_stop_drains_what_was_captured_and_flushes(tmp_path, enhancer):
    src = tmp_path / "long.mp4"
    make_clip(src, frames=120, audio=True)
    source = VideoFileSource(src)
    dst = tmp_path / "stopped.mp4"
    sink = VideoFileSink(dst, source.info, preset="ultrafast")

    def slow(image):
        time.sleep(0.01)
        return enhancer(image)

    pipeline = Pipeline(source, slow, [sink], queue_size=2)
    threading.Timer(0.3, pipeline.stop).start()
    stats = pipeline.run()
    assert 0 < stats.written < 120
    assert stats.written == stats.captured, "every captured frame is written after stop()"
    times = video_times(dst)
    assert len(times) == stats.written
    import av

    with av.open(str(dst)) as c:
        audio_end = max(float(p.pts * p.time_base) for p in c.demux(audio=0) if p.size)
    assert audio_end <= float(times[-1]) + 0.1, "the copied audio ends with the video when stopped early"


def test_a_signal_while_the_sink_flushes_waits_for_the_flush():
    """Ctrl-C or SIGTERM during the encoder's final flush: run() returns only once the
    sink has finished (CPython's Thread.join, interrupted by a signal, takes a live thread
    for ended: the process used to exit mid-flush and leave an unplayable file)."""
    import os
    import signal

    state = {}

    class FlushingSink(ListSink):
        def close(self, complete=True):
            state["flushing"] = True
            time.sleep(1.0)  # a slow preset's look-ahead being encoded
            state["closed"] = True

    def interrupt_when_flushing():
        while not state.get("flushing"):
            time.sleep(0.01)
        time.sleep(0.2)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt_when_flushing, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        Pipeline(FakeCamera(fps=100, seconds=0.1), lambda image: image, [FlushingSink()]).run()
    assert state.get("closed"), "the flush ended before run() gave the interruption to its caller"


def test_frames_whose_time_goes_back_are_placed_a_frame_apart(tmp_path):
    """Two recordings joined with an overlap (the second starts two frames before the first
    ends): every frame is kept, a whole frame's step apart, so that players and ffmpeg
    see a monotonic file (one tick apart, ffmpeg's check reported non-monotonic times)."""
    step = 3600  # 25 fps in MPEG-TS's 1/90000
    times = [k * step for k in range(10)] + [k * step for k in range(8, 18)]
    info = StreamInfo(64, 48, 25.0, Fraction(1, 90000))
    sink = VideoFileSink(tmp_path / "joined.mkv", info, preset="ultrafast")
    for i, pts in enumerate(times):
        sink.write(Frame(np.full((48, 64, 3), 10 * i, np.uint8), i, pts, Fraction(1, 90000),
                         enhanced=np.full((48, 64, 3), 10 * i, np.uint8)))
    sink.close()
    out = video_times(tmp_path / "joined.mkv")
    assert len(out) == 20
    assert min(b - a for a, b in zip(out, out[1:])) >= Fraction(1, 25) - Fraction(1, 1000)


def test_frame_queue_newest_only_never_blocks_and_keeps_the_last_frame_before_the_end():
    from realtime.pipeline import END

    q = FrameQueue(4, newest_only=True, abort=threading.Event())
    for i in range(10):
        q.put(i)
    assert q.dropped == 9
    threading.Timer(0.2, q.get).start()  # the consumer takes 9; only then does END go in
    q.put(END)
    assert q.get() is END and q.dropped == 9


def test_rotation_and_metadata_are_kept(tmp_path, enhancer):
    src = tmp_path / "rotated.mp4"
    make_clip(src, frames=4, audio=False, rotation=90)
    dst = tmp_path / "rotated_out.mp4"
    run_file(src, dst, enhancer)
    import av

    with av.open(str(dst)) as c:
        assert next(c.decode(video=0)).rotation == 90


def test_a_live_stream_that_ends_is_reported(clip):
    from realtime.sources import CameraSource

    src, times = clip
    camera = CameraSource(str(src))  # OpenCV opens a file like a network stream
    assert (camera.width, camera.height) == (96, 64)
    frames = list(camera)
    camera.close()
    assert len(frames) == len(times) and [f.index for f in frames] == list(range(len(times)))
    assert camera.error and "stream ended" in camera.error


def test_a_camera_delivers_planes_that_show_its_picture(clip):
    """Camera frames are 4:2:0 planes (what the video path enhances best); shown, they are
    the camera's picture, and an odd size (which I420 cannot hold) stays RGB."""
    import cv2

    from realtime.colour import OPENCV_I420
    from realtime.frame import YUVPlanes, as_rgb
    from realtime.frame import i420_picture
    from realtime.sources import CameraSource

    src, _ = clip
    camera = CameraSource(str(src))
    frame = next(iter(camera))
    camera.close()
    capture = cv2.VideoCapture(str(src))
    ok, bgr = capture.read()
    capture.release()
    assert ok and isinstance(frame.image, YUVPlanes) and frame.image.colour == OPENCV_I420
    assert camera.info.colour == OPENCV_I420, "a recording is tagged with what the planes are"
    error = np.abs(as_rgb(frame.image).astype(int) - cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    assert error.mean() < 2.0, error.mean()
    odd = np.zeros((5, 6, 3), np.uint8)
    odd[..., 0] = 255  # blue, in OpenCV's order
    rgb = i420_picture(odd)
    assert isinstance(rgb, np.ndarray) and rgb[0, 0].tolist() == [0, 0, 255]


def test_preview_keys_toggle_before_after_and_quit(monkeypatch):
    import cv2

    from realtime import sinks

    shown, keys = [], iter([-1, ord("b"), -1, ord("q"), -1])
    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.setattr(cv2, "namedWindow", lambda *a: None)
    monkeypatch.setattr(cv2, "imshow", lambda title, image: shown.append(image.shape))
    monkeypatch.setattr(cv2, "waitKey", lambda delay: next(keys))
    monkeypatch.setattr(cv2, "getWindowProperty", lambda *a: 1.0)
    monkeypatch.setattr(cv2, "destroyWindow", lambda *a: None)
    preview = sinks.PreviewSink()
    frame = Frame(np.zeros((20, 30, 3), np.uint8), 0)
    frame.enhanced = np.full((20, 30, 3), 200, np.uint8)
    results = [preview.write(frame) for _ in range(4)]
    preview.close()
    assert results == [True, True, True, False], "q stops"
    assert shown == [(20, 30, 3), (20, 30, 3), (20, 60, 3), (20, 60, 3)], "b switches to before|after"


def test_preview_without_a_display_is_refused(monkeypatch):
    from realtime.sinks import PreviewSink, SinkError

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(SinkError, match="--no-preview"):
        PreviewSink()
