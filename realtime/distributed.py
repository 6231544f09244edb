"""Beyond one machine: folders and long recordings as Ray tasks (`--ray [ADDRESS]`).

Each file is a task; a long one (over 1.5 chunks) is split at keyframes into chunks of
about CHUNK_SECONDS, each a task, and joined by a stream copy:

- a chunk task decodes from WARMUP seconds before its start (the keyframe at or before),
  runs those frames through the VideoEnhancer only to warm its temporal state up (the
  denoiser's average, the curves' average), and writes the frames of its own span, with
  their own timestamps and without B-frames, to a part file beside the output;
- the join copies the parts' video packets, in order, and the original's audio,
  subtitles and cover art into the output (written under a temporary name, renamed
  when complete), so the output has the input's frames, timestamps and audio.

Tasks are retried by Ray (a node that dies costs only its chunks); the weights travel
in Ray's object store; workers report the frames they write to the driver's bar.
Inputs and outputs are paths every node can read (a shared filesystem), or URLs that
fsspec reads (s3://, gs://, ...) for inputs; outputs are written to shared paths.
"""
from __future__ import annotations

import heapq
import os
import sys
import time
from pathlib import Path

from .errors import MissingDependency
from .runs import FrameReporter, Job, Outcome, Run, RunEngine, Settings, collect

#: Chunks of about this long (s); shorter files are one task.
CHUNK_SECONDS = 60.0
#: Frames decoded before a chunk's start to warm the temporal state up (s).
WARMUP = 1.0
#: Frames between two progress reports of a task (each is a message to the driver).
REPORT_EVERY = 25


# --- planning (on the driver) ------------------------------------------------------------------


def chunk_starts(source: str, chunk_seconds: float = CHUNK_SECONDS) -> list[float]:
    """Times (s) where chunks start: the first frame, then the keyframe at or before each
    multiple of chunk_seconds (found by seeking the index, nothing decoded). A file that
    cannot be read this way is one chunk (its task will say what is wrong with it)."""
    import av

    try:
        return _chunk_starts(av, source, chunk_seconds)
    except Exception:  # noqa: BLE001 - reported by the file's own task
        return [0.0]


def _chunk_starts(av, source: str, chunk_seconds: float) -> list[float]:
    with av.open(source) as container:
        stream = container.streams.video[0]
        duration = (container.duration or 0) / av.time_base
        starts = [float((stream.start_time or 0) * stream.time_base)]
        if duration > 1.5 * chunk_seconds and container.format.name in JOINABLE and _jumps_back(container, stream):
            # recordings joined end to end: times repeat, so a time names no single chunk;
            # one task reads it whole, its timeline continued (sources.Timeline)
            print(f"realtime-enhance: {source}: its clock jumps back (joined recordings): one task, not chunks",
                  file=sys.stderr)
            return starts
        t = chunk_seconds
        while t < duration - chunk_seconds / 2:
            container.seek(int(t / stream.time_base), stream=stream, backward=True)
            packet = next((p for p in container.demux(stream) if p.pts is not None), None)
            if packet is not None and float(packet.pts * packet.time_base) > starts[-1] + chunk_seconds / 2:
                starts.append(float(packet.pts * packet.time_base))
            t += chunk_seconds
    return starts


#: Containers that recordings are joined in by plain concatenation (`cat a.ts b.ts`).
JOINABLE = {"mpegts", "mpeg"}


def _jumps_back(container, stream) -> bool:
    """Whether the video's decode times go back anywhere (demuxed, nothing decoded)."""
    last = None
    for packet in container.demux(stream):
        if packet.dts is None:
            continue
        if last is not None and packet.dts < last:
            return True
        last = packet.dts
    container.seek(0)
    return False


def part_path(target: Path, index: int) -> Path:
    return target.with_name(f".{target.stem}.part{index:04d}.mkv")


# --- tasks (on the workers) ------------------------------------------------------------------------


class Window:
    """A sink passing on the frames of [start, end) (seconds) only; at `end` it asks the
    pipeline to stop. The frames before `start` warmed the enhancer up."""

    def __init__(self, sink, start: float | None, end: float | None, report) -> None:
        self.sink, self.start, self.end, self.report = sink, start, end, report
        self.path = None

    def write(self, frame) -> bool:
        when = float(frame.pts * frame.time_base)
        if self.end is not None and when >= self.end - 1e-6:
            return False
        if self.start is None or when >= self.start - 1e-6:
            self.sink.write(frame)
            self.report(self.sink.frames)
        return True

    def close(self, complete: bool = True) -> None:
        self.sink.close(complete=True)  # the span is complete once the stop came from `end`


def _reporter(progress, key: str) -> FrameReporter:
    return FrameReporter(lambda frames: progress.put((key, frames)), REPORT_EVERY)


def enhance_chunk(source: str, part: str, start: float | None, end: float | None, settings: Settings,
                  checkpoint, progress) -> int:
    """One chunk of a long file into its part file; returns the frames written."""
    from .pipeline import Pipeline
    from .sinks import VideoFileSink
    from .sources import SourceError, VideoFileSource

    video_source = VideoFileSource(source, start=max(0.0, start - WARMUP) if start else None, copy_streams=False)
    sink = VideoFileSink(part, video_source.info, settings.codec, settings.crf, settings.preset,
                         threads=settings.threads or 0, reorder=False)
    report = _reporter(progress, part)
    engine = RunEngine(settings, checkpoint)
    try:
        shift = video_source.timeline.offsets[0]  # a negative start is shifted to zero on every node alike
        window = Window(sink, None if start is None else start + shift, None if end is None else end + shift, report)
        Pipeline(video_source, engine.video(), [window], settings.queue_size).run()
    finally:
        engine.close()
    report.flush()
    if video_source.error and end is None:  # the last chunk meets the file's end, and its damage
        raise SourceError(video_source.error)
    return sink.frames


def join_parts(source: str, parts: list[str], target: str) -> None:
    """The parts' video and the original's other streams, stream-copied into `target`."""
    import av

    from .sinks import ATTACHMENT_MUXERS, container_format, partial_path, true_tags
    from .sources import choose_video_stream, copied_streams

    target_path = Path(target)
    partial = partial_path(target_path)
    with av.open(source) as original, av.open(str(partial), "w", format=container_format(target_path)) as out:
        readers = [av.open(p) for p in parts]
        try:
            video = out.add_stream_from_template(readers[0].streams.video[0])
            out.metadata.update(original.metadata)
            chapters = original.chapters()
            if chapters:
                out.set_chapters(chapters)
            copied = {s.index: out.add_stream_from_template(s)
                      for s in copied_streams(original, choose_video_stream(original), source, False)}
            for s in original.streams:
                if s.index in copied:
                    copied[s.index].disposition = s.disposition
                    copied[s.index].metadata.update(true_tags(s.metadata))
                elif s.type == "attachment" and s.data and out.format.name in ATTACHMENT_MUXERS:
                    out.add_attachment(s.name, s.mimetype, bytes(s.data))

            def video_packets():
                for reader in readers:
                    for packet in reader.demux(video=0):
                        if packet.dts is not None:
                            yield float(packet.dts * packet.time_base), 0, packet, video

            def other_packets():
                if not copied:
                    return
                for packet in original.demux(*[original.streams[i] for i in copied]):
                    if packet.size and (packet.dts is not None or packet.pts is not None):
                        when = packet.dts if packet.dts is not None else packet.pts
                        yield float(when * packet.time_base), 1, packet, copied[packet.stream.index]

            for _, _, packet, stream in heapq.merge(video_packets(), other_packets(), key=lambda item: item[:2]):
                packet.stream = stream
                out.mux(packet)
        finally:
            for reader in readers:
                reader.close()
    os.replace(partial, target_path)
    for p in parts:
        Path(p).unlink(missing_ok=True)


def enhance_file(job: Job, settings: Settings, checkpoint, progress) -> int:
    """A whole file (or image) in one task, as a single run would do it."""
    report = _reporter(progress, str(job.source))
    run = Run(settings, checkpoint, on_frames=report)
    try:
        return run.job(job)
    finally:
        report.flush()
        run.close()


# --- the driver ---------------------------------------------------------------------------------------


def connect(address: str):
    try:
        import ray
    except ImportError:
        raise MissingDependency("--ray needs Ray", "ray") from None
    ray.init(address=address or os.environ.get("RAY_ADDRESS") or None, ignore_reinit_error=True,
             include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    return ray


def run_on_ray(jobs: list[Job], settings: Settings, address: str = "", chunk_seconds: float = CHUNK_SECONDS,
               finished: list[Path] | None = None) -> list[Outcome]:
    """Run folder or file jobs as Ray tasks; outcomes in the jobs' order. address: the
    cluster's ("" for $RAY_ADDRESS or a local one)."""
    ray = connect(address)
    from ray.util.queue import Queue

    from .checkpoint import load_weights
    from .engine import default_weights_path

    settings = settings.for_worker(threads=1)  # a task per core: each single-threaded
    weights = ray.put(load_weights(settings.weights or default_weights_path()))
    progress = Queue()
    retries = {"max_retries": 3, "retry_exceptions": True, "num_cpus": 1}
    file_task = ray.remote(**retries)(enhance_file)
    chunk_task = ray.remote(**retries)(enhance_chunk)
    join_task = ray.remote(**retries)(_join_after)
    results = []
    for job in jobs:
        source, target = str(job.source), str(job.target)
        starts = chunk_starts(source, chunk_seconds) if job.kind == "video" else [0.0]
        if len(starts) < 2:
            results.append(file_task.remote(job, settings, weights, progress))
            continue
        ends = starts[1:] + [None]
        parts = [str(part_path(Path(target), i)) for i in range(len(starts))]
        chunks = [chunk_task.remote(source, part, start if i else None, end, settings, weights, progress)
                  for i, (part, start, end) in enumerate(zip(parts, starts, ends))]
        results.append(join_task.remote(source, parts, target, *chunks))

    def poll() -> int:
        frames = 0
        while not progress.empty():
            frames += progress.get_nowait()[1]
        return frames

    def result(ref) -> int:
        try:
            return ray.get(ref)
        except Exception as exc:  # a task that failed after its retries: its own error, not Ray's wrapper
            cause = getattr(exc, "cause", None)
            raise (cause if isinstance(cause, Exception) else exc) from None

    def cancel(refs: list) -> None:
        for ref in refs:
            ray.cancel(ref, force=True)

    return collect(jobs, dict(zip(results, range(len(jobs)))),
                   lambda refs: ray.wait(refs, num_returns=1, timeout=0.2)[0], result, poll, cancel, settings.quiet,
                   finished)


def _join_after(source: str, parts: list[str], target: str, *frames: int) -> int:
    """Runs once every chunk has (Ray passes their results): the join."""
    join_parts(source, parts, target)
    return int(sum(frames))


def run_file_on_ray(source: Path, target: Path, settings: Settings, address: str = "") -> Outcome:
    """`realtime-enhance LONG.mp4 -o OUT.mp4 --ray`: one file, in chunks across the cluster."""
    start = time.monotonic()
    (outcome,) = run_on_ray([Job(source, target, "video")], settings, address)
    if not settings.quiet and not outcome.error:
        print(f"{source} -> {target}: {outcome.frames} frames in {time.monotonic() - start:.1f} s (Ray)",
              file=sys.stderr)
    return outcome
