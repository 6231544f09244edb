"""How fast is realtime-enhance? Per-frame latency, file throughput and live latency, in one run.

    python benchmarks/latency.py                   # full run, markdown tables on stdout
    python benchmarks/latency.py --json out.json   # every number, plus the machine
    python benchmarks/latency.py --quick           # a tiny configuration (the tests use it)

1. Per-frame latency, in the style of the LIME timing table: median ms per frame for the
   Zero-DCE and Zero-DCE++ configurations computed the reference way (float32 eager
   PyTorch, uint8 in and out), and for this project's engine on every available backend.
   Then the video path: 1920x1080 4:2:0 planes through the engine per frame and with
   temporal processing (VideoEnhancer, denoise at full strength on a noisy clip).
2. Files, as a user runs them: `realtime-enhance CLIP -o OUT.mp4` beside FFmpeg's own
   transcode with the same encoder settings (`ffmpeg -i CLIP -c:v libx264 -preset P -crf C
   -c:a copy`; a PyAV decode -> encode without any conversion where the ffmpeg tool is
   absent), each a child process, measured in the same run: wall time (start-up
   included), CPU time and peak resident memory. A 60-second clip (the 1080p clip with
   audio, stream-copied six times) amortises start-up as in real use.
3. Live latency: a simulated camera (real frames, real timing) through the live pipeline
   (VideoEnhancer, as the CLI runs it): capture -> enhanced-frame-ready latency
   percentiles, achieved fps, drops, backlog; at 30 fps also with the browser view
   (--serve) streamed to three viewers at once, and the frames per second each received;
   and with the denoiser at full strength (`--denoise 1`, a camera noisy enough for all of
   its filters), alone and with three viewers.
"""
from __future__ import annotations

import argparse
import json
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import torch

from realtime import Enhancer
from realtime.backends import BackendUnavailable
from realtime.cores import cpu_count
from realtime.browser import BOUNDARY, BrowserSink
from realtime.model import REFERENCE_CONFIGS, DCENet, enhance, load_checkpoint
from realtime.colour import interpret, rgb_to_yuv
from realtime.frame import YUVPlanes
from realtime.pipeline import Pipeline
from realtime.frame import i420_picture
from realtime.sources import Frame, read_image
from realtime.temporal import VideoEnhancer
from realtime.devdata import SHARED

LIME_SIZES = [(720, 680), (640, 480), (896, 628), (1000, 665), (1039, 789), (640, 429), (640, 480), (640, 480), (1000, 667)]
STANDARD_SIZES = {"720p": (1280, 720), "1080p": (1920, 1080), "4K": (3840, 2160)}


# --- machine -----------------------------------------------------------------------------


def machine() -> dict:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu": cpu, "cores": cpu_count(), "gpu": gpu, "python": platform.python_version(),
            "torch": torch.__version__, "av": av.__version__, "opencv": cv2.__version__,
            "numpy": np.__version__, "platform": platform.platform()}


def machine_line(m: dict) -> str:
    gpu = f", GPU {m['gpu']}" if m["gpu"] else ""
    return (f"{m['cpu']}, {m['cores']} cores{gpu}; Python {m['python']}, torch {m['torch']}, "
            f"av {m['av']}, OpenCV {m['opencv']}, NumPy {m['numpy']}")


# --- 1. per-frame latency -------------------------------------------------------------------


def median_ms(fn, repeat: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def reference_net(name: str) -> tuple[DCENet, str]:
    """The published checkpoint when ../shared has it, else random weights (denormals
    flushed, so that timing does not depend on the weights)."""
    path = SHARED / "reference-weights" / f"{name}.pth"
    if path.exists():
        return load_checkpoint(path), "published weights"
    return DCENet(REFERENCE_CONFIGS[name]).eval(), "random weights"


def reference_way(net: DCENet):
    """uint8 frame -> uint8 frame, float32 eager PyTorch: the seeds' way of running it."""

    def run(frame: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            x = torch.from_numpy(frame).permute(2, 0, 1)[None].float() / 255
            y = enhance(net, x)[0]
            return (y[0].permute(1, 2, 0) * 255).round().clamp(0, 255).byte().numpy()

    return run


def test_frames(images_dir: Path | None, quick: bool) -> list[tuple[str, float, np.ndarray]]:
    """(name, file size in MB, frame) for the LIME images, or synthetic ones at their sizes,
    then 720p / 1080p / 4K rows made from the first image."""
    rows = []
    folder = images_dir or SHARED / "data" / "LIME"
    paths = sorted((p for p in folder.glob("*") if read_image(p) is not None), key=lambda p: (len(p.stem), p.stem)) \
        if folder.is_dir() else []
    if images_dir is None:
        paths = [p for p in paths if p.stem != "10"]  # 10.bmp repeats 5.bmp; the seeds' table is 1-9
    if quick:
        paths = paths[:1]
    rng = np.random.default_rng(0)
    if paths:
        for p in paths:
            rows.append((p.name, p.stat().st_size / 1e6, read_image(p)))
    else:
        for i, (w, h) in enumerate(LIME_SIZES[: 1 if quick else None], 1):
            rows.append((f"synthetic{i} (LIME size)", 0.0, rng.integers(0, 80, (h, w, 3), dtype=np.uint8)))
    base = rows[0][2]
    sizes = {"720p": (320, 180)} if quick else STANDARD_SIZES
    for label, (w, h) in sizes.items():
        rows.append((label, 0.0, cv2.resize(base, (w, h), interpolation=cv2.INTER_LINEAR)))
    return rows


def available_backends(weights: str | None) -> dict[str, Enhancer]:
    engines = {}
    for name in ("tensorrt", "cuda", "cpu"):  # fastest first: the first one runs tables 2 and 3
        try:
            engines[name] = Enhancer(weights, backend=name)
        except BackendUnavailable as why:
            print(f"# backend {name} not measured: {why}", file=sys.stderr)
    return engines


def exported_model(weights: str | None, scratch: Path):
    """The exported per-frame program in onnxruntime (CPU), or None without the onnx extra."""
    try:
        import onnxruntime
        import onnxscript  # noqa: F401 - the exporter needs it
    except ImportError:
        print("# exported model not measured: needs the onnx extra", file=sys.stderr)
        return None
    from realtime.export import export_onnx, program

    path = scratch / "model.onnx"
    export_onnx(program(Path(weights) if weights else None), path)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda frame: session.run(None, {name: frame})[0]


def per_frame(args, engines: dict[str, Enhancer]) -> dict:
    refs = {name: reference_net(name) for name in ("zero_dce", "zero_dce_pp")}
    with tempfile.TemporaryDirectory() as scratch:
        onnx = exported_model(args.weights, Path(scratch)) if not args.quick else None
    rows = []
    for name, megabytes, frame in test_frames(args.images, args.quick):
        h, w = frame.shape[:2]
        slow = 1 if (args.quick or h * w > 3e6) else args.repeat_slow
        row = {"file": name, "size_mb": round(megabytes, 3), "resolution": f"{w}x{h}"}
        for backend, engine in engines.items():  # first, while no reference has warmed anything up
            out = np.empty_like(frame)
            row[f"engine_{backend}_ms"] = median_ms(lambda: engine(frame), args.repeat, warmup=3)
            row[f"engine_{backend}_reused_buffer_ms"] = median_ms(lambda: engine(frame, out=out), args.repeat, warmup=3)
        if onnx is not None and min(h, w) >= 64:
            row["onnxruntime_ms"] = median_ms(lambda: onnx(frame), max(3, args.repeat // 5), warmup=1)
        row["zero_dce_ms"] = median_ms(lambda: reference_way(refs["zero_dce"][0])(frame), slow, warmup=0 if slow == 1 else 1)
        row["zero_dce_pp_ms"] = median_ms(lambda: reference_way(refs["zero_dce_pp"][0])(frame), args.repeat)
        for backend in engines:
            row[f"speedup_vs_zero_dce_{backend}"] = row["zero_dce_ms"] / row[f"engine_{backend}_ms"]
            row[f"speedup_vs_zero_dce_pp_{backend}"] = row["zero_dce_pp_ms"] / row[f"engine_{backend}_ms"]
        rows.append(row)
        print(f"# {name}: " + ", ".join(f"{k} {v:.2f}" for k, v in row.items() if isinstance(v, float)), file=sys.stderr)
    return {"rows": rows, "reference_weights": {k: v[1] for k, v in refs.items()}}


def video_path(args, engine: Enhancer) -> dict:
    """1920x1080 planes of the dark clip: the engine per frame, and with temporal processing
    with the denoiser at full strength (so that it runs whatever noise it measures); then
    the same frames as RGB, as the API takes them (VideoEnhancer averages them as planes)."""
    size = (320, 180) if args.quick else (1920, 1080)
    colour = interpret(1, 1, 1, 1, *size)
    rgb = dark_clip_frames(size, 8)
    row = {"resolution": f"{size[0]}x{size[1]}"}
    for kind, frames in (("", [YUVPlanes(*rgb_to_yuv(f, colour), colour) for f in rgb]), ("rgb_", rgb)):
        video = VideoEnhancer(engine, denoise=1.0)
        count = iter(range(1 << 30))
        for f in frames:
            video(f)
        per_frame = median_ms(lambda: engine(frames[next(count) % 8]), args.repeat, warmup=3)
        temporal = median_ms(lambda: video(frames[next(count) % 8]), args.repeat, warmup=3)
        row |= {f"{kind}engine_ms": per_frame, f"{kind}engine_temporal_ms": temporal,
                f"{kind}temporal_extra_ms": temporal - per_frame}
    print(f"# video path: {row}", file=sys.stderr)
    return row


def compare_cost(args, engine: Enhancer) -> list[dict]:
    """The engine with --weights against --compare, per 1920x1080 dark frame (RGB and 4:2:0
    planes), timed alternately in one run so that both see the same machine."""
    size = (320, 180) if args.quick else (1920, 1080)
    colour = interpret(1, 1, 1, 1, *size)
    rgb = dark_clip_frames(size, 4)
    planes = [YUVPlanes(*rgb_to_yuv(f, colour), colour) for f in rgb]
    rows = []
    with Enhancer(args.compare, backend="cpu") as other:
        for kind, frames in (("RGB", rgb), ("planes", planes)):
            times: dict[str, list[float]] = {"this": [], "other": []}
            for _ in range(args.repeat):
                for name, e in (("this", engine), ("other", other)):
                    for f in frames:
                        start = time.perf_counter()
                        e(f)
                        times[name].append(time.perf_counter() - start)
            this, that = (1000 * statistics.median(times[k][len(frames):]) for k in ("this", "other"))
            rows.append({"input": kind, "resolution": f"{size[0]}x{size[1]}", "weights_ms": this, "compare_ms": that,
                         "extra_ms": this - that, "compare": str(args.compare)})
            print(f"# cost: {rows[-1]}", file=sys.stderr)
    return rows


# --- 2. files, as a user runs them -------------------------------------------------------------


def generated_clip(folder: Path, quick: bool) -> Path:
    path = folder / "generated.mp4"
    size, seconds = ("320x180", 1) if quick else ("1280x720", 5)
    with av.open(f"testsrc2=size={size}:rate=30:duration={seconds}", format="lavfi") as src, av.open(str(path), "w") as dst:
        stream = dst.add_stream("libx264", rate=30, options={"preset": "veryfast", "crf": "18"})
        stream.width, stream.height = (int(v) for v in size.split("x"))
        stream.pix_fmt = "yuv420p"
        for vf in src.decode(video=0):
            dark = (vf.to_ndarray(format="rgb24") // 6).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(dark, format="rgb24")
            frame.pts, frame.time_base = vf.pts, vf.time_base
            dst.mux(stream.encode(frame))
        dst.mux(stream.encode(None))
    return path


def looped_clip(src: Path, dst: Path, times: int) -> Path:
    """`src` played `times` times over, stream-copied (video and audio): a long clip."""
    with av.open(str(src)) as probe:
        duration = probe.duration / av.time_base
    with av.open(str(dst), "w") as out:
        copies = None
        for i in range(times):
            with av.open(str(src)) as inp:
                if copies is None:
                    copies = {s.index: out.add_stream_from_template(s) for s in inp.streams if s.type in ("video", "audio")}
                for packet in inp.demux():
                    if packet.dts is None or packet.stream.index not in copies:
                        continue
                    offset = round(i * duration / packet.time_base)
                    packet.pts = packet.pts + offset if packet.pts is not None else None
                    packet.dts += offset
                    packet.stream = copies[packet.stream.index]
                    out.mux(packet)
    return dst


PYAV_TRANSCODE = """
import sys, av
src, dst, crf, preset = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
with av.open(src) as inp, av.open(dst, "w") as out:
    vin = inp.streams.video[0]
    vin.thread_type = "AUTO"
    vout = out.add_stream("libx264", rate=vin.average_rate, options={"crf": crf, "preset": preset})
    vout.width, vout.height, vout.pix_fmt = vin.codec_context.width, vin.codec_context.height, "yuv420p"
    vout.codec_context.time_base = vout.time_base = vin.time_base
    vout.thread_type = "AUTO"
    audio = {s.index: out.add_stream_from_template(s) for s in inp.streams.audio}
    for packet in inp.demux():
        if packet.stream.index in audio:
            if packet.dts is not None:
                packet.stream = audio[packet.stream.index]
                out.mux(packet)
        elif packet.stream.index == vin.index:
            for frame in packet.decode():
                frame.pict_type = av.video.frame.PictureType.NONE
                out.mux(vout.encode(frame))
    out.mux(vout.encode(None))
"""


#: Runs argv[1:] and prints its wall time, CPU time and peak RSS. A child forked from this
#: benchmark (which has torch loaded) would report the benchmark's own memory as its peak
#: (ru_maxrss survives exec); forked from this small process, it reports its own.
MEASURE = """
import json, os, subprocess, sys, time
start = time.perf_counter()
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
err = proc.stderr.read().decode(errors="replace")
_, status, usage = os.wait4(proc.pid, 0)
print(json.dumps({"wall_s": time.perf_counter() - start, "cpu_s": usage.ru_utime + usage.ru_stime,
                  "peak_mb": usage.ru_maxrss / 1024, "code": os.waitstatus_to_exitcode(status), "stderr": err[-500:]}))
"""


def child(command: list[str]) -> dict:
    """Run a command as a child process: wall seconds, CPU seconds and its own peak RSS (MB)."""
    out = subprocess.run([sys.executable, "-c", MEASURE, *command], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    if result.pop("code") != 0:
        raise RuntimeError(f"{command[0]} failed: {result['stderr']}")
    del result["stderr"]
    return result


def transcoder(args) -> tuple[str, callable]:
    """FFmpeg's own transcode with the same settings: the ffmpeg tool, or PyAV without conversion."""
    if shutil.which("ffmpeg") and not args.pyav_reference:
        return "ffmpeg", lambda src, dst: ["ffmpeg", "-v", "error", "-y", "-i", str(src), "-c:v", "libx264",
                                           "-preset", args.preset, "-crf", str(args.crf), "-c:a", "copy", str(dst)]
    return "pyav", lambda src, dst: [sys.executable, "-c", PYAV_TRANSCODE, str(src), str(dst), str(args.crf),
                                     args.preset]


def file_throughput(args, scratch: Path) -> list[dict]:
    shared = sorted((SHARED / "data" / "video").glob("*.mp4")) if not args.quick else []
    clips = [Path(c) for c in args.clips] if args.clips else shared or [generated_clip(scratch, args.quick)]
    if not args.clips and not args.quick and (SHARED / "data" / "video" / "dark_pan_1080p_audio.mp4").exists():
        clips.append(looped_clip(SHARED / "data" / "video" / "dark_pan_1080p_audio.mp4", scratch / "dark_pan_1080p_audio_60s.mp4", 6))
    reference_name, reference = transcoder(args)
    rows = []
    for clip in clips:
        with av.open(str(clip)) as c:
            frames = c.streams.video[0].frames or sum(1 for _ in c.demux(video=0)) - 1
            seconds = c.duration / av.time_base
        ours = lambda src, dst: [sys.executable, "-m", "realtime", str(src), "-o", str(dst), "-q",  # noqa: E731
                                 "--crf", str(args.crf), "--preset", args.preset]
        runs = {"reference": [], "enhanced": []}
        for i in range(1 if args.quick else args.file_repeat):
            for label, command in (("reference", reference), ("enhanced", ours)):  # alternated: same conditions
                runs[label].append(child(command(clip, scratch / f"{label}{i}.mp4")))
        row = {"clip": clip.name, "frames": frames, "seconds": round(seconds, 2), "reference": reference_name}
        for label, results in runs.items():
            best = sorted(results, key=lambda r: r["wall_s"])[len(results) // 2]  # the median run
            row.update({f"{label}_{k}": v for k, v in best.items()})
            row[f"{label}_fps"] = frames / best["wall_s"]
        row["wall_ratio"] = row["enhanced_wall_s"] / row["reference_wall_s"]
        rows.append(row)
        print(f"# {clip.name}: {row}", file=sys.stderr)
    return rows


# --- 3. live latency --------------------------------------------------------------------------


class SimulatedCamera:
    """Real frames at real timing: frame i is released at start + i/fps (the capture
    thread sleeps until then), like a camera driver handing over buffers, and converted
    to planes on the capture thread as CameraSource does."""

    live = True
    error = None
    time_base = Fraction(1, 1_000_000)

    def __init__(self, frames: list[np.ndarray], fps: float, seconds: float) -> None:
        self.frames, self.fps, self.seconds = frames, fps, seconds
        self.released = 0

    def __iter__(self):
        start = time.monotonic()
        count = int(self.seconds * self.fps)
        for i in range(count):
            delay = start + i / self.fps - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            now = time.monotonic()
            self.released += 1
            picture = i420_picture(self.frames[i % len(self.frames)], cv2.COLOR_RGB2YUV_I420)  # as CameraSource
            yield Frame(picture, i, int((now - start) * 1e6), self.time_base, captured=now)

    def close(self) -> None:
        pass


class NullSink:
    def write(self, frame: Frame) -> bool:
        return True

    def close(self, complete: bool = True) -> None:
        pass


def dark_clip_frames(size: tuple[int, int], count: int) -> list[np.ndarray]:
    """`count` RGB frames of the 1080p low-light clip (dark throughout: the curves run at
    full strength, nothing is attenuated as good light), resized to `size`; random dark
    frames where ../shared is absent."""
    clip = SHARED / "data" / "video" / "dark_pan_1080p_audio.mp4"
    frames = []
    if clip.exists():
        with av.open(str(clip)) as c:
            for vf in c.decode(video=0):
                rgb = vf.to_ndarray(format="rgb24")
                frames.append(rgb if (vf.width, vf.height) == size else cv2.resize(rgb, size, interpolation=cv2.INTER_AREA))
                if len(frames) == count:
                    break
    if not frames:
        # Say so: random frames are noisier than the clip, so timings with them are not comparable.
        print(f"# {clip} not found (set REALTIME_ENHANCE_DATA): random dark frames instead", file=sys.stderr)
        rng = np.random.default_rng(0)
        frames = [rng.integers(0, 60, (size[1], size[0], 3), dtype=np.uint8) for _ in range(count)]
    return frames


def count_stream_frames(url: str, stop: threading.Event, counts: list[int], index: int) -> None:
    """A browser viewer: read the MJPEG stream until `stop`, counting its frames."""
    marker = f"--{BOUNDARY}\r\n".encode()
    with urllib.request.urlopen(url, timeout=10) as response:
        tail = b""  # shorter than the marker, so no boundary is counted twice
        while not stop.is_set():
            data = tail + response.read1(65536)
            counts[index] += data.count(marker)
            tail = data[-(len(marker) - 1):]


def stalled_viewers(address: tuple[str, int], count: int) -> list[socket.socket]:
    """Viewers that ask for the stream and never read it."""
    sockets = []
    for _ in range(count):
        s = socket.create_connection(address, timeout=5)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        sockets.append(s)
    return sockets


def live_run(camera: SimulatedCamera, video: VideoEnhancer, viewers: int, stalled: int = 0
             ) -> tuple[object, list[int]]:
    """One live run; with `viewers`, the browser view is served to that many readers of
    /stream.mjpg (and to `stalled` more that never read)."""
    sinks: list = [NullSink()]
    counts = [0] * viewers
    stop = threading.Event()
    threads, idle = [], []
    if viewers:
        server = BrowserSink(("127.0.0.1", 0), video.controls)
        sinks.append(server)
        url = f"http://127.0.0.1:{server.address[1]}/stream.mjpg"
        threads = [threading.Thread(target=count_stream_frames, args=(url, stop, counts, i), daemon=True)
                   for i in range(viewers)]
        for t in threads:
            t.start()
        idle = stalled_viewers(server.address, stalled)
    try:
        stats = Pipeline(camera, video, sinks).run()
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=5)
        for s in idle:
            s.close()
    return stats, counts


def live_latency(args, engine: Enhancer) -> list[dict]:
    size = (320, 180) if args.quick else (1280, 720)
    frames = dark_clip_frames(size, 8 if args.quick else 60)
    rows = []
    # As the CLI runs live sources: temporal denoise (auto) and smoothed curves; and a camera
    # noisy enough for the denoiser's full strength (all of its filters run).
    videos = {"auto": VideoEnhancer(engine), "1": VideoEnhancer(engine, denoise=1.0)}
    for video in videos.values():
        live_run(SimulatedCamera(frames, 30, 1.0), video, 0)  # loads the compiled kernels, not timed
    for fps, viewers, stalled, denoise in ((30, 0, 0, "auto"), (30, 3, 0, "auto"), (30, 3, 50, "auto"),
                                           (60, 0, 0, "auto"), (30, 0, 0, "1"), (30, 3, 0, "1")):
        video = videos[denoise]
        camera = SimulatedCamera(frames, fps, args.live_seconds)
        stats, counts = live_run(camera, video, viewers, stalled)
        lat = np.array(stats.latencies_ms)
        half = len(lat) // 2
        rows.append({
            "camera_fps": fps, "viewers": viewers, "stalled_viewers": stalled, "denoise": denoise,
            "viewer_fps": [c / args.live_seconds for c in counts],
            "resolution": f"{size[0]}x{size[1]}", "seconds": args.live_seconds,
            "frames_released": camera.released, "frames_enhanced": stats.written,
            "achieved_fps": stats.written / args.live_seconds, "dropped": stats.dropped,
            "p50_ms": float(np.percentile(lat, 50)), "p95_ms": float(np.percentile(lat, 95)),
            "p99_ms": float(np.percentile(lat, 99)), "max_ms": float(lat.max()),
            # Backlog growth: median latency of the second half minus the first half's.
            "backlog_growth_ms": float(np.median(lat[half:]) - np.median(lat[:half])) if half else 0.0,
        })
        print(f"# live {fps} fps: {rows[-1]}", file=sys.stderr)
    return rows


# --- output -----------------------------------------------------------------------------------


def markdown(result: dict) -> str:
    out = [f"Machine: {machine_line(result['machine'])}", ""]
    pf = result["per_frame"]
    backends = result["backends"]
    out.append("### Per-frame latency (median ms per frame, uint8 RGB in -> uint8 RGB out)")
    out.append(f"Reference configurations run the reference way (float32 eager PyTorch) with "
               f"{pf['reference_weights']['zero_dce']}.")
    out.append("")
    head = ["file", "size (MB)", "resolution", "Zero-DCE", "Zero-DCE++ (scale 12)"]
    for b in backends:
        head += [f"engine {b}", "× vs Zero-DCE", "× vs Zero-DCE++"]
    onnx = any("onnxruntime_ms" in r for r in pf["rows"])
    if onnx:
        head.append("exported model, onnxruntime CPU")
    out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in pf["rows"]:
        cells = [r["file"], f"{r['size_mb']:.2f}" if r["size_mb"] else "–", r["resolution"],
                 f"{r['zero_dce_ms']:.0f}", f"{r['zero_dce_pp_ms']:.1f}"]
        for b in backends:
            cells += [f"{r[f'engine_{b}_ms']:.2f}", f"{r[f'speedup_vs_zero_dce_{b}']:.0f}",
                      f"{r[f'speedup_vs_zero_dce_pp_{b}']:.0f}"]
        if onnx:
            cells.append(f"{r['onnxruntime_ms']:.1f}" if "onnxruntime_ms" in r else "–")
        out.append("| " + " | ".join(cells) + " |")
    if result.get("video_path"):
        v = result["video_path"]
        out += ["", "### Video path (median ms per frame of the dark clip)", "",
                "| input | resolution | engine per frame | with temporal processing | extra |", "|---|---|---|---|---|"]
        out += [f"| {name} | {v['resolution']} | {v[kind + 'engine_ms']:.2f} | {v[kind + 'engine_temporal_ms']:.2f} | "
                f"{v[kind + 'temporal_extra_ms']:+.2f} |"
                for name, kind in (("4:2:0 planes", ""), ("RGB (averaged as planes)", "rgb_"))]
    if result.get("compare_cost"):
        out += ["", f"### This checkpoint against {result['compare_cost'][0]['compare']} (median ms per dark frame, "
                "timed alternately)", "", "| input | resolution | this | other | extra |", "|---|---|---|---|---|"]
        for r in result["compare_cost"]:
            out.append(f"| {r['input']} | {r['resolution']} | {r['weights_ms']:.2f} | {r['compare_ms']:.2f} | "
                       f"{r['extra_ms']:+.2f} |")
    out += ["", "### Files, as a user runs them (child processes, start-up included; the median of the runs)", "",
            "| clip | frames | seconds | transcode wall s | CPU s | peak MB | realtime-enhance wall s | CPU s | peak MB "
            "| fps | wall ratio |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["file_throughput"]:
        out.append(f"| {r['clip']} | {r['frames']} | {r['seconds']:g} | {r['reference_wall_s']:.2f} ({r['reference']}) | "
                   f"{r['reference_cpu_s']:.1f} | {r['reference_peak_mb']:.0f} | {r['enhanced_wall_s']:.2f} | "
                   f"{r['enhanced_cpu_s']:.1f} | {r['enhanced_peak_mb']:.0f} | {r['enhanced_fps']:.1f} | "
                   f"{r['wall_ratio']:.2f} |")
    out += ["", "### Live latency (simulated camera, capture -> enhanced frame ready)", "",
            "| camera | browser viewers (fps each) | resolution | seconds | achieved fps | dropped | p50 ms | p95 ms | p99 ms "
            "| backlog growth ms |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["live"]:
        watched = (f"{r['viewers']} ({', '.join(f'{v:.1f}' for v in r['viewer_fps'])})"
                   if r.get("viewers") else "none") + (f" + {r['stalled_viewers']} stalled" if r.get("stalled_viewers") else "")
        camera = f"{r['camera_fps']} fps" + (f", denoise {r['denoise']}" if r.get("denoise", "auto") != "auto" else "")
        out.append(f"| {camera} | {watched} | {r['resolution']} | {r['seconds']:g} | {r['achieved_fps']:.1f} | "
                   f"{r['dropped']} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['p99_ms']:.1f} | {r['backlog_growth_ms']:+.1f} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=Path, help="folder of test images (default: ../shared/data/LIME)")
    p.add_argument("--clips", nargs="*", help="videos for the throughput table (default: ../shared/data/video/*.mp4)")
    p.add_argument("--weights", help="engine checkpoint (default: the bundled weights)")
    p.add_argument("--compare", help="another checkpoint: its per-frame cost against --weights, timed alternately")
    p.add_argument("--repeat", type=int, default=30, help="timed runs per fast measurement (median)")
    p.add_argument("--repeat-slow", type=int, default=3, help="timed runs per Zero-DCE measurement")
    p.add_argument("--file-repeat", type=int, default=2, help="timed runs per clip and mode")
    p.add_argument("--live-seconds", type=float, default=20, help="duration of each live run")
    p.add_argument("--crf", type=int, default=18)
    p.add_argument("--preset", default="veryfast")
    p.add_argument("--pyav-reference", action="store_true", help="compare files with a PyAV transcode, not ffmpeg")
    p.add_argument("--skip", nargs="*", default=[], choices=["per-frame", "video-path", "file", "live"])
    p.add_argument("--quick", action="store_true", help="tiny sizes and durations (for tests)")
    p.add_argument("--json", type=Path, help="write every number here")
    args = p.parse_args(argv)
    if args.quick:
        args.repeat, args.repeat_slow, args.live_seconds = 2, 1, min(args.live_seconds, 1.0)

    engines = available_backends(args.weights)
    best = next(iter(engines.values()))
    result = {"machine": machine(), "backends": list(engines), "command": " ".join(["python", "benchmarks/latency.py", *(argv if argv is not None else sys.argv[1:])])}
    result["per_frame"] = per_frame(args, engines) if "per-frame" not in args.skip else {"rows": [], "reference_weights": {"zero_dce": "-"}}
    result["video_path"] = video_path(args, engines["cpu"]) if "video-path" not in args.skip and "cpu" in engines else None
    result["compare_cost"] = compare_cost(args, engines["cpu"]) if args.compare and "cpu" in engines else []
    with tempfile.TemporaryDirectory() as scratch:
        result["file_throughput"] = file_throughput(args, Path(scratch)) if "file" not in args.skip else []
    result["live"] = live_latency(args, best) if "live" not in args.skip else []
    for engine in engines.values():
        engine.close()
    print(markdown(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
