"""Source -> queue -> Enhance -> queue -> Sink, each stage on its own thread.

Files: queues block, so no frame is ever dropped and memory stays bounded by the queue
sizes. Live sources: each queue keeps only the newest frame, so the capture thread never
waits and latency never grows; replaced frames are counted as drops.

Stopping: `stop()` (Ctrl-C, SIGTERM, a closed preview) ends the source; what was already
captured still flows through, and the sink flushes. An exception in any stage aborts
all stages; `run()` re-raises it in the caller.
"""
from __future__ import annotations

import queue
from collections import deque
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

import cv2
import numpy as np

from .frame import Frame

END = object()  # end of stream, passed down the queues
POLL = 0.05  # seconds a blocked put/get waits before rechecking the abort flag


class Source(Protocol):
    live: bool
    error: str | None

    def __iter__(self): ...
    def close(self) -> None: ...


class Sink(Protocol):
    def write(self, frame: Frame) -> bool: ...
    def close(self, complete: bool = True) -> None: ...  # complete: the whole input went through


class Aborted(Exception):
    """Raised inside a stage when another stage failed."""


class FrameQueue:
    """A bounded queue with one producer and one consumer. `newest_only`: a put never
    blocks and replaces what is waiting (counting it in `dropped`) — for live sources."""

    def __init__(self, size: int, newest_only: bool, abort: threading.Event) -> None:
        self._q: queue.Queue = queue.Queue(maxsize=1 if newest_only else max(1, size))
        self.newest_only = newest_only
        self.abort = abort
        self.dropped = 0

    def put(self, item: object) -> None:
        if self.newest_only and item is not END:  # the end marker waits: the last frame is kept
            while True:
                try:
                    self._q.put_nowait(item)
                    return
                except queue.Full:
                    try:
                        self._q.get_nowait()
                        self.dropped += 1
                    except queue.Empty:  # the consumer took it meanwhile
                        pass
        while True:
            if self.abort.is_set():
                raise Aborted
            try:
                self._q.put(item, timeout=POLL)
                return
            except queue.Full:
                continue

    def get(self) -> object:
        while True:
            if self.abort.is_set():
                raise Aborted
            try:
                return self._q.get(timeout=POLL)
            except queue.Empty:
                continue


@dataclass
class Stats:
    """Counters the stages update (each field written by one thread only)."""

    captured: int = 0
    enhanced: int = 0
    written: int = 0
    dropped: int = 0
    # capture -> enhanced, per written frame (the most recent ones, so memory stays bounded)
    latencies_ms: deque = field(default_factory=lambda: deque(maxlen=100_000))
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    source_error: str | None = None

    @property
    def fps(self) -> float:
        elapsed = (self.finished or time.monotonic()) - self.started
        return self.written / elapsed if elapsed > 0 else 0.0


class Pipeline:
    """Runs `source` through `enhance` into `sinks` on three threads.

    enhance: a callable picture -> picture ((H, W, 3) uint8 RGB or YUVPlanes), e.g. an
    `Enhancer` or a `VideoEnhancer`; it is only ever called from the enhance thread. If it
    keeps state across frames (a `reset()` method), the state is reset when the stream
    starts, so nothing carries over from another stream.
    """

    def __init__(self, source: Source, enhance: Callable[[np.ndarray], np.ndarray], sinks: list[Sink],
                 queue_size: int = 4) -> None:
        self.source, self.enhance, self.sinks = source, enhance, sinks
        self.stats = Stats()
        self._stop = threading.Event()
        self._abort = threading.Event()
        live = bool(getattr(source, "live", False))
        self._q_in = FrameQueue(queue_size, live, self._abort)
        self._q_out = FrameQueue(queue_size, live, self._abort)
        self._errors: list[BaseException] = []
        # Each stage says it is done by an Event, not by its thread's end: a signal that
        # interrupts Thread.join makes CPython (3.11) take a live thread for ended, and the
        # caller would stop waiting while the sink still flushes.
        self._done = [threading.Event() for _ in range(3)]
        self._threads = [
            threading.Thread(target=self._guard, args=(stage, done), name=name, daemon=True)
            for stage, done, name in zip((self._capture, self._enhance, self._write), self._done,
                                         ("capture", "enhance", "sink"))
        ]

    # --- stages -------------------------------------------------------------------------

    def _guard(self, stage: Callable[[], None], done: threading.Event) -> None:
        try:
            stage()
        except Aborted:
            pass
        except BaseException as exc:  # travels to the caller of run()
            self._errors.append(exc)
            self._abort.set()
        finally:
            done.set()

    def _capture(self) -> None:
        try:
            for frame in self.source:
                if self._stop.is_set() or self._abort.is_set():
                    break
                self._q_in.put(frame)
                self.stats.captured += 1
        finally:
            self.source.close()
            self.stats.source_error = getattr(self.source, "error", None)
            self._q_in.put(END)

    def _enhance(self) -> None:
        reset = getattr(self.enhance, "reset", None)
        if reset is not None:
            reset()
        while True:
            frame = self._q_in.get()
            if frame is END:
                self._q_out.put(END)
                return
            frame.enhanced = self.enhance(frame.image)
            frame.enhanced_at = time.monotonic()
            self.stats.enhanced += 1
            self._q_out.put(frame)

    def _write(self) -> None:
        complete = False
        try:
            while True:
                frame = self._q_out.get()
                if frame is END:
                    complete = not self._stop.is_set()  # the input ended by itself
                    return
                keep_going = True
                for sink in self.sinks:
                    keep_going = sink.write(frame) and keep_going
                self.stats.written += 1
                self.stats.dropped = self._q_in.dropped + self._q_out.dropped
                self.stats.latencies_ms.append(1000 * (frame.enhanced_at - frame.captured))
                if not keep_going:
                    self._stop.set()
        finally:
            self.stats.dropped = self._q_in.dropped + self._q_out.dropped
            for sink in self.sinks:
                sink.close(complete)
            self.stats.finished = time.monotonic()

    # --- control ------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the source to end; frames already captured are still enhanced and written."""
        self._stop.set()

    def abort(self) -> None:
        """Stop every stage at once; the sinks still close (flush) what they wrote."""
        self._stop.set()
        self._abort.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def start(self) -> None:
        # Each stage has its own thread; OpenCV's worker pool would add busy-waiting threads
        # that steal the encoder's and the curve kernel's cores (1080p file: -10% fps).
        cv2.setNumThreads(1)
        self.stats.started = time.monotonic()
        for thread in self._threads:
            thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for all stages; True when they have finished. Re-raises a stage's error."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for done in self._done:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not done.wait(remaining):
                return False
        if self._errors:
            raise self._errors[0]
        return True

    def run(self, on_tick: Callable[[Stats], None] | None = None, tick: float = 0.2) -> Stats:
        """Start, wait until done (calling on_tick every `tick` s), return the stats.

        KeyboardInterrupt during the wait stops the pipeline gracefully, waits for the
        flush, then propagates; a second one aborts.
        """
        self.start()
        try:
            while not self.wait(tick):
                if on_tick:
                    on_tick(self.stats)
        except KeyboardInterrupt:
            self.stop()
            try:
                self.wait(5.0) or self.abort()
                self.wait()
            except KeyboardInterrupt:
                self.abort()
                self.wait(2.0)
            raise
        if on_tick:
            on_tick(self.stats)
        return self.stats
