"""Quality over time, on real footage made dark: does the video engine beat a photo engine in a loop?

    python benchmarks/video_quality.py                          # ../shared/data/video/real/*.mp4
    python benchmarks/video_quality.py clip.mp4 --frames 200 --json out.json --images docs/img

Each clip (real, normally lit) is made dark with a physical camera model: the frames are
linearised with the sRGB transfer function, scaled by a dark factor, given Poisson shot
noise at a stated full-well photon count (photons at white before darkening) and
Gaussian read noise, encoded back to sRGB and quantised to 8 bits, with fresh noise every
frame from a fixed seed. The dark frames are turned into BT.709 4:2:0 planes (what a file
or camera would give) and every method is scored against the clean frames:

- PSNR and SSIM (uint8 RGB; SSIM as realtime.metrics), the mean over frames;
- temporal noise: mean |(out_t − out_t−1) − (clean_t − clean_t−1)| over all pixels;
- flicker: mean |Δ mean luma| between consecutive frames, minus the clean clip's;
- motion PSNR: PSNR over the 10 % of frames with the largest clean frame difference;
- tone (realtime.metrics.tone, median over every 10th frame): mean-luma error and black
  point (1st-percentile luma) error in levels, contrast ratio (luma std, output / clean)
  and colourfulness ratio; white share: pixels at 255 in all three channels;
- ms per frame (the method's own computation, single process, median).

Methods: the engine per frame (the video path, no temporal state), the engine with
temporal processing (VideoEnhancer: temporal denoise + smoothed curves; ", RGB": on RGB
frames, as the API takes them; ", camera": RGB made planes as CameraSource does), Zero-DCE++ per
frame (the published checkpoint run the reference way), gamma 0.4, and FFmpeg's temporal
denoisers atadenoise and fftdnoiz (with one frame before and after) through PyAV's filter
graph, followed by the engine. (hqdn3d is GPL and not in PyAV's FFmpeg build.)
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import av
import cv2
import numpy as np

from realtime import Enhancer
from realtime.controls import Controls
from realtime.colour import interpret, rgb_to_yuv
from realtime.frame import YUVPlanes, as_rgb
from realtime.metrics import darken, mean_luma, psnr, ssim, tone
from realtime.model import load_checkpoint
from realtime.frame import i420_picture
from realtime.temporal import VideoEnhancer

from latency import reference_way  # benchmarks/, beside this script
from quality import gamma
from realtime.devdata import SHARED

BT709 = interpret(1, 1, 1, 1, 1920, 1080)


# --- reading footage -------------------------------------------------------------------------


def read_clip(path: Path, frames: int) -> tuple[list[np.ndarray], float]:
    out = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or 30)
        for vf in container.decode(stream):
            out.append(vf.to_ndarray(format="rgb24"))
            if len(out) == frames:
                break
    return out, fps


def to_planes(rgb: np.ndarray) -> YUVPlanes:
    return YUVPlanes(*rgb_to_yuv(rgb, BT709), BT709)


# --- methods: each maps the list of dark frames to a list of RGB outputs, timing itself ---------


def run_engine(enhancer, frames: list[np.ndarray]) -> tuple[list[np.ndarray], float]:
    outputs, times = [], []
    for rgb in frames:
        planes = to_planes(rgb)
        start = time.perf_counter()
        out = enhancer(planes)
        times.append(time.perf_counter() - start)
        outputs.append(out.to_rgb())
    return outputs, 1000 * statistics.median(times)


def run_rgb(fn, frames: list[np.ndarray]) -> tuple[list[np.ndarray], float]:
    outputs, times = [], []
    for rgb in frames:
        start = time.perf_counter()
        outputs.append(fn(rgb))
        times.append(time.perf_counter() - start)
    return outputs, 1000 * statistics.median(times)


def run_camera(video, frames: list[np.ndarray]) -> tuple[list[np.ndarray], float]:
    """As a camera's frames go: RGB converted to planes as CameraSource does (timed: it is
    the capture thread's work), enhanced, shown as RGB (not timed)."""
    outputs, ms = run_rgb(lambda rgb: video(i420_picture(rgb, cv2.COLOR_RGB2YUV_I420)), frames)
    return [as_rgb(out) for out in outputs], ms


def run_filtered(spec: str, enhancer: Enhancer, frames: list[np.ndarray], fps: float) -> tuple[list, float]:
    """An FFmpeg filter (on yuv420p, as it would run in ffmpeg) then the engine per frame.
    Filters that look ahead return frames late; the time is the whole run's per frame."""
    height, width = frames[0].shape[:2]
    graph = av.filter.Graph()
    source = graph.add_buffer(width=width, height=height, format="yuv420p", time_base=f"1/{round(fps)}")
    name, _, options = spec.partition("=")
    node = graph.add(name, options) if options else graph.add(name)
    sink = graph.add("buffersink")
    source.link_to(node)
    node.link_to(sink)
    graph.configure()
    outputs, converting = [], [0.0]

    def drain() -> None:
        while True:
            try:
                vf = graph.pull()
            except (av.error.BlockingIOError, av.error.EOFError):
                return
            planes = YUVPlanes(*(np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, : p.width].copy()
                                 for p in vf.planes), BT709)
            enhanced = enhancer(planes)
            start = time.perf_counter()
            outputs.append(enhanced.to_rgb())  # for scoring: not the method's time
            converting[0] += time.perf_counter() - start

    inputs = []
    for i, rgb in enumerate(frames):
        y, u, v = rgb_to_yuv(rgb, BT709)
        vf = av.VideoFrame(width, height, "yuv420p")
        for plane, data in zip(vf.planes, (y, u, v)):
            np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)[:, : plane.width] = data
        vf.pts = i
        inputs.append(vf)
    start = time.perf_counter()
    for vf in inputs:
        graph.push(vf)
        drain()
    graph.push(None)
    drain()
    seconds = time.perf_counter() - start - converting[0]
    return outputs[: len(frames)], 1000 * seconds / len(frames)


def zero_dce_pp():
    """The published Zero-DCE++ run the reference way (as in latency.py); None without ../shared."""
    path = SHARED / "reference-weights" / "zero_dce_pp.pth"
    return reference_way(load_checkpoint(path)) if path.exists() else None


# --- metrics ------------------------------------------------------------------------------------



def scores(outputs: list[np.ndarray], clean: list[np.ndarray], motion: np.ndarray) -> dict:
    per_psnr = np.array([psnr(o, c) for o, c in zip(outputs, clean)])
    per_ssim = np.array([ssim(o, c) for o, c in zip(outputs, clean)])
    noise = [np.abs((o1.astype(np.int16) - o0) - (c1.astype(np.int16) - c0)).mean()
             for o0, o1, c0, c1 in zip(outputs, outputs[1:], clean, clean[1:])]
    out_luma, clean_luma = np.array([mean_luma(o) for o in outputs]), np.array([mean_luma(c) for c in clean])
    flicker = float(np.abs(np.diff(out_luma)).mean() - np.abs(np.diff(clean_luma)).mean())
    top = motion >= np.quantile(motion, 0.9)
    tones = [tone(o, c) for o, c in zip(outputs[::10], clean[::10])]
    clipped = float(np.mean([(o >= 255).all(axis=2).mean() for o in outputs[::10]]))
    return {"psnr": float(per_psnr.mean()), "ssim": float(per_ssim.mean()), "temporal_noise": float(np.mean(noise)),
            "flicker": flicker, "motion_psnr": float(per_psnr[top].mean()),
            **{k: float(np.median([t[k] for t in tones])) for k in tones[0]}, "white_share": clipped}


# --- the run -----------------------------------------------------------------------------------------


def methods(args, fps: float) -> dict:
    """name -> callable(dark frames) -> (outputs, ms per frame)."""
    engine = Enhancer(args.weights, backend="cpu")
    table = {
        "engine per frame": lambda frames: run_engine(engine, frames),
        "engine + temporal": lambda frames: run_engine(VideoEnhancer(engine, denoise=args.denoise), frames),
        "engine + temporal, RGB": lambda frames: run_rgb(VideoEnhancer(engine, denoise=args.denoise), frames),
        "engine + temporal, camera": lambda frames: run_camera(VideoEnhancer(engine, denoise=args.denoise), frames),
        "gamma 0.4": lambda frames: run_rgb(gamma(0.4), frames),
        "atadenoise + engine": lambda frames: run_filtered("atadenoise", engine, frames, fps),
        "fftdnoiz + engine": lambda frames: run_filtered("fftdnoiz=prev=1:next=1", engine, frames, fps),
    }
    reference = zero_dce_pp()
    if reference is not None:
        table["Zero-DCE++ per frame"] = lambda frames: run_rgb(reference, frames)
    table = {name: fn for name, fn in table.items() if not args.methods or name in args.methods}
    for path in args.compare or []:
        other = Enhancer(path, backend="cpu")
        table[f"{Path(path).name} + temporal"] = lambda frames, other=other: run_engine(
            VideoEnhancer(other, denoise=args.denoise), frames)
    return table


def side_by_side(panels: list[tuple[str, np.ndarray]], width: int = 480) -> np.ndarray:
    tiles = []
    for label, image in panels:
        h = round(image.shape[0] * width / image.shape[1])
        tile = cv2.resize(image, (width, h), interpolation=cv2.INTER_AREA)
        cv2.putText(tile, label, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(tile, label, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(tile)
    return np.concatenate(tiles, axis=1)


def follow(clip: Path, args) -> list[dict]:
    """How fast the smoothed curves follow a real change of light: the clip made dark at
    0.03 for 60 frames, then the light raised (0.08: a lamp switched on, and 0.036: +20 %,
    a change below the cut threshold). The scene is the clip's first frame held still (a
    fixed camera; fresh noise every frame), so that only the light changes. The same
    VideoEnhancer without curve smoothing gives the instant value; counted: frames after
    the change until the smoothed output's mean luma stays within 10 % (and 2 %) of the
    change from it."""
    clean = read_clip(clip, 1)[0] * 120
    rows = []
    for after in (0.08, 0.036):
        rng = np.random.default_rng(args.seed)
        frames = [darken(f, 0.03 if i < 60 else after, args.full_well, args.read_noise, rng)
                  for i, f in enumerate(clean)]
        smoothed, instant = (VideoEnhancer(Enhancer(args.weights, backend="cpu"), smooth_curves=s) for s in (True, False))
        means = np.array([mean_luma(smoothed(to_planes(f)).to_rgb()) for f in frames])
        target = np.array([mean_luma(instant(to_planes(f)).to_rgb()) for f in frames])
        step = float(np.mean(target[60:70]) - np.mean(target[50:60]))

        def settled(share: float) -> int:
            off = np.abs(means[60:] - target[60:]) > share * abs(step)
            return int(np.flatnonzero(off)[-1]) + 1 if off.any() else 0

        rows.append({"clip": clip.name, "light": f"x0.03 -> x{after:g}", "step_luma": step,
                     "frames_to_10pct": settled(0.10), "frames_to_2pct": settled(0.02),
                     "cut_detected": bool(smoothed.smoother.cuts), "light_change_detected": bool(smoothed.smoother.light_changes)})
        print(f"# follow: {rows[-1]}", file=sys.stderr)
    return rows


def strength_scale(clip: Path, args) -> list[dict]:
    """Mean brightness and clipping at each --strength, on every 10th of the clip's frames
    made dark: is the scale even, and does the top of it clip?"""
    clean = read_clip(clip, args.frames)[0][::10]
    rows = []
    for factor in args.factors:
        rng = np.random.default_rng(args.seed)
        dark = [darken(frame, factor, args.full_well, args.read_noise, rng) for frame in clean]
        for strength in (0.0, 0.5, 1.0, 1.5, 2.0):
            with Enhancer(args.weights, backend="cpu", controls=Controls(strength=strength)) as enhancer:
                out = [enhancer(to_planes(frame)).to_rgb() for frame in dark]
            rows.append({"clip": clip.name, "factor": factor, "strength": strength,
                         "mean_luma": float(np.mean([mean_luma(o) for o in out])) / 255,
                         "pure_white": float(np.mean([(o >= 255).all(axis=2).mean() for o in out])),
                         "any_channel_clipped": float(np.mean([(o >= 255).any(axis=2).mean() for o in out]))})
            print(f"# strength: {rows[-1]}", file=sys.stderr)
    return rows


def table(args, params: dict, key: str, rows: list[dict], head: str, line) -> int:
    """Print rows as a markdown table under `head` (one `line(row)` each); write the JSON."""
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for r in rows:
        print(line(r))
    if args.json:
        args.json.write_text(json.dumps({"parameters": params, key: rows}, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--follow", action="store_true", help="only measure how fast the curves follow a change of light")
    p.add_argument("--strength-scale", action="store_true", help="only measure brightness and clipping per --strength")
    p.add_argument("clips", nargs="*", type=Path, help="real, normally lit videos (default: ../shared/data/video/real)")
    p.add_argument("--frames", type=int, default=120, help="frames per clip (from the start)")
    p.add_argument("--factors", type=float, nargs="+", default=[0.08, 0.03], help="dark factors (share of the light)")
    p.add_argument("--full-well", type=float, default=10000, help="photons at white before darkening")
    p.add_argument("--read-noise", type=float, default=2.0, help="read noise, electrons (σ)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--weights", help="engine checkpoint (default: the bundled weights)")
    p.add_argument("--denoise", default="auto", help="temporal denoise of 'engine + temporal' (auto, off, 0..1)")
    p.add_argument("--methods", nargs="*", help="only these methods")
    p.add_argument("--compare", nargs="*", help="other checkpoints, run as '<name> + temporal' (e.g. the previous default)")
    p.add_argument("--images", type=Path, help="write a side-by-side PNG per dark factor here (e.g. docs/img)")
    p.add_argument("--json", type=Path, help="write every number here")
    args = p.parse_args(argv)
    clips = args.clips or sorted((SHARED / "data" / "video" / "real").glob("*.mp4"))
    if not clips:
        p.error("no clips: give some, or put ../shared/data/video/real beside the checkout")
    params = {"frames": args.frames, "factors": args.factors, "full_well_photons": args.full_well,
              "read_noise_electrons": args.read_noise, "seed": args.seed, "transfer": "sRGB", "planes": "BT.709 4:2:0"}
    print(f"# dark-footage model: {params}", file=sys.stderr)
    if args.strength_scale:
        return table(args, params, "strength_scale", [row for clip in clips for row in strength_scale(clip, args)],
                     "| clip | factor | strength | mean luma | pure white | any channel at 255 |",
                     lambda r: f"| {r['clip']} | {r['factor']:g} | {r['strength']:g} | {r['mean_luma']:.3f} | "
                               f"{100 * r['pure_white']:.2f} % | {100 * r['any_channel_clipped']:.2f} % |")
    if args.follow:
        return table(args, params, "follow", [row for clip in clips for row in follow(clip, args)],
                     "| clip | light | change of mean luma | frames to within 10 % | within 2 % | taken at once as |",
                     lambda r: f"| {r['clip']} | {r['light']} | {r['step_luma']:+.1f} | {r['frames_to_10pct']} | "
                               f"{r['frames_to_2pct']} | {'a cut' if r['cut_detected'] else 'a change of light' if r['light_change_detected'] else 'no (averaged)'} |")
    rows = []
    for clip in clips:
        clean, fps = read_clip(clip, args.frames)
        motion = np.array([0.0] + [np.abs(b.astype(np.int16) - a).mean() for a, b in zip(clean, clean[1:])])
        for factor in args.factors:
            rng = np.random.default_rng(args.seed)
            dark = [darken(frame, factor, args.full_well, args.read_noise, rng) for frame in clean]
            results = {"input": scores(dark, clean, motion)}
            outputs = {}
            for name, run in methods(args, fps).items():
                outputs[name], ms = run(dark)
                results[name] = {**scores(outputs[name], clean, motion), "ms_per_frame": ms}
                print(f"# {clip.name} x{factor}: {name}: {results[name]}", file=sys.stderr)
            for name, r in results.items():
                rows.append({"clip": clip.name, "resolution": f"{clean[0].shape[1]}x{clean[0].shape[0]}",
                             "frames": len(clean), "factor": factor, "method": name, **r})
            if args.images and clip == clips[0]:
                i = int(np.argsort(motion)[len(motion) // 2])  # a frame of typical motion
                panels = [("dark input", dark[i])] + [(n, outputs[n][i]) for n in ("engine per frame", "engine + temporal")
                                                      if n in outputs] + [("clean", clean[i])]
                args.images.mkdir(parents=True, exist_ok=True)
                target = args.images / f"video_quality_{clip.stem}_x{factor:g}.png"
                cv2.imwrite(str(target), cv2.cvtColor(side_by_side(panels), cv2.COLOR_RGB2BGR))
    print(markdown(rows, params))
    if args.json:
        args.json.write_text(json.dumps({"parameters": params, "rows": rows}, indent=2))
    return 0


def markdown(rows: list[dict], params: dict) -> str:
    out = [f"Dark-footage model: {params}", "",
           "| clip | factor | method | PSNR dB | SSIM | temporal noise | flicker | motion PSNR dB | mean luma error | "
           "black point error | contrast ratio | colourfulness ratio | ms / frame |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ms = f"{r['ms_per_frame']:.1f}" if "ms_per_frame" in r else "–"
        out.append(f"| {r['clip']} ({r['resolution']}) | {r['factor']:g} | {r['method']} | {r['psnr']:.2f} | "
                   f"{r['ssim']:.3f} | {r['temporal_noise']:.2f} | {r['flicker']:+.3f} | {r['motion_psnr']:.2f} | "
                   f"{r['mean_luma_error']:+.1f} | {r['black_point_error']:+.1f} | {r['contrast_ratio']:.2f} | "
                   f"{r['colourfulness_ratio']:.2f} | {ms} |")
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
