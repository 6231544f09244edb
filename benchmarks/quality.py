"""Quality against references: PSNR / SSIM on paired low/normal-light images, plus speed.

    python benchmarks/quality.py                              # default weights + references
    python benchmarks/quality.py runs/*/best.pt --val ../shared/data/lol-val

For each checkpoint: its configuration, parameter count, median ms per 1920x1080 uint8
frame through the engine (CPU backend), and mean PSNR (uint8 RGB) / SSIM of the enhanced
low-light images against their normal-light references, with the tone against them
(realtime.metrics.tone); twice: per frame (Enhancer(), what video frames get before their
temporal processing) and as photos (Enhancer.enhance_photo, what the command line does
with an image: the same with its edge-preserving filter). Simple baselines (the input
itself, PIL-style autocontrast, gamma 0.4) are measured by the same code.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from realtime import Enhancer
from realtime.controls import Controls
from realtime.engine import default_weights_path
from realtime.checkpoint import load_weights
from realtime.metrics import mean_luma, psnr, read_pairs, ssim, tone
from realtime.devdata import SHARED

ROOT = Path(__file__).resolve().parents[1]


def score(fn, pairs) -> dict[str, float]:
    """Mean PSNR and SSIM over the pairs, and the tone against the references
    (realtime.metrics.tone): median |mean-luma error|, median |black-point error|, and the
    medians of the signed errors, the contrast ratio and the colourfulness ratio."""
    outputs = [(fn(low), high) for low, high in pairs]
    tones = [tone(out, high) for out, high in outputs]

    def median(key: str, transform=lambda v: v) -> float:
        return float(np.median([transform(t[key]) for t in tones]))

    return {"psnr": float(np.mean([psnr(o, h) for o, h in outputs])),
            "ssim": float(np.mean([ssim(o, h) for o, h in outputs])),
            "abs_mean_luma_error": median("mean_luma_error", abs), "mean_luma_error": median("mean_luma_error"),
            "abs_black_point_error": median("black_point_error", abs), "black_point_error": median("black_point_error"),
            "contrast_ratio": median("contrast_ratio"), "colourfulness_ratio": median("colourfulness_ratio")}


TONE_COLUMNS = "| |mean-luma error| (signed) | |black-point error| (signed) | contrast ratio | colourfulness ratio |"


def tone_cells(r: dict) -> str:
    return (f"| {r['abs_mean_luma_error']:.1f} ({r['mean_luma_error']:+.1f}) | {r['abs_black_point_error']:.1f} "
            f"({r['black_point_error']:+.1f}) | {r['contrast_ratio']:.2f} | {r['colourfulness_ratio']:.2f} |")


def autocontrast(image: np.ndarray) -> np.ndarray:
    """Per channel, stretch the 0..100 % range to 0..255 (PIL ImageOps.autocontrast, cutoff 0)."""
    out = np.empty_like(image)
    for c in range(3):
        lo, hi = int(image[..., c].min()), int(image[..., c].max())
        scale = 255.0 / max(1, hi - lo)
        lut = np.clip((np.arange(256) - lo) * scale, 0, 255).round().astype(np.uint8)
        out[..., c] = lut[image[..., c]]
    return out


def gamma(g: float):
    lut = np.clip(np.rint((np.arange(256) / 255.0) ** g * 255), 0, 255).astype(np.uint8)
    return lambda image: lut[image]


def frame_ms(enhancer: Enhancer, repeat: int) -> float:
    frame = np.random.default_rng(0).integers(0, 60, (1080, 1920, 3), dtype=np.uint8)
    for _ in range(3):
        enhancer(frame)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        enhancer(frame)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def shown(path: Path | str) -> str:
    """A path as the docs name it: relative to the repository (../shared/... for the shared data)."""
    return os.path.relpath(Path(path).resolve(), ROOT)



def psnr_of(mse: float) -> float:
    return float("inf") if mse == 0 else float(10 * np.log10(255 ** 2 / mse))


def good_light(args) -> list[dict]:
    """Do no harm: the default on normally lit pictures (LOL's normal-light references, and
    frames of the real clips as shot), scored against the picture itself, with and without
    the good-light attenuation."""
    sets = {"lol-val/high": [high for _, high in read_pairs(args.val)]}
    for clip in sorted((SHARED / "data" / "video" / "real").glob("*.mp4")):
        import av

        with av.open(str(clip)) as container:
            frames = [f.to_ndarray(format="rgb24") for i, f in zip(range(150), container.decode(video=0))]
        sets[f"{clip.name} (as shot)"] = frames[::15]
    rows = []
    for attenuate in (False, True):
        with Enhancer(backend="cpu", controls=Controls(attenuate=attenuate)) as enhancer:
            for name, images in sets.items():
                out = [enhancer(image) for image in images]
                changes = [mean_luma(o) - mean_luma(i) for o, i in zip(out, images)]
                errors = [float(np.mean((o.astype(np.float64) - i) ** 2)) for o, i in zip(out, images)]
                rows.append({"set": name, "attenuation": attenuate, "images": len(images),
                             "unchanged": sum(e == 0 for e in errors),
                             "psnr_vs_input": psnr_of(float(np.mean(errors))),
                             "worst_psnr_vs_input": psnr_of(max(errors)),
                             "mean_luma_change": float(np.mean(changes)), "largest_luma_change": float(max(changes)),
                             "input_mean_luma": float(np.mean([mean_luma(i) for i in images]))})
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoints", nargs="*", help="default: the bundled weights and ../shared/reference-weights/*.pth")
    p.add_argument("--val", type=Path, default=SHARED / "data" / "lol-val")
    p.add_argument("--repeat", type=int, default=20, help="timed runs per 1080p measurement (median)")
    p.add_argument("--no-baselines", action="store_true")
    p.add_argument("--denoise-below", type=int, action="append", default=None,
                   help="evaluate each checkpoint with this dark-denoise threshold instead of its own "
                        "(repeatable: one row per value; 0 = off)")
    p.add_argument("--good-light", action="store_true", help="only the do-no-harm table (normally lit pictures)")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    if args.good_light:
        rows = good_light(args)
        print("PSNR vs input: of the mean squared error over the set (worst image); unchanged: images left exactly as they were\n")
        print("| pictures | attenuation | n | input mean luma | PSNR vs input dB (worst) | unchanged | mean luma change (largest) |")
        print("|---|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['set']} | {'on (default)' if r['attenuation'] else 'off'} | {r['images']} | "
                  f"{r['input_mean_luma']:.0f} | {r['psnr_vs_input']:.1f} ({r['worst_psnr_vs_input']:.1f}) | {r['unchanged']} | "
                  f"{r['mean_luma_change']:+.1f} ({r['largest_luma_change']:+.1f}) |")
        if args.json:
            args.json.write_text(json.dumps(rows, indent=2))
        return 0
    pairs = read_pairs(args.val)
    if not pairs:
        sys.exit(f"error: no low/high pairs in {args.val}")
    checkpoints = [Path(c) for c in args.checkpoints] or [
        default_weights_path(), *sorted((SHARED / "reference-weights").glob("*.pth"))]
    rows = []
    if not args.no_baselines:
        for name, fn in (("input", lambda x: x), ("autocontrast", autocontrast), ("gamma 0.4", gamma(0.4))):
            rows.append({"name": name, **score(fn, pairs)})
    variants = [(path, d) for path in checkpoints for d in (args.denoise_below or [None])]
    for path, denoise in variants:
        checkpoint = load_weights(path)
        if denoise is not None:
            checkpoint = checkpoint.replace(denoise_below=denoise)
        with Enhancer(checkpoint, backend="cpu") as enhancer:
            c = enhancer.config
            estimation = f"long side {c.long_side}" if c.long_side else ("full" if c.scale == 1 else f"1/{c.scale:g}")
            row = {"name": shown(path), "denoise_below": c.denoise_below, "width": c.width, "conv": c.conv,
                   "maps": c.curve_maps, "tone": c.tone, "estimation": estimation,
                   "parameters": sum(t.size for t in checkpoint.state.values())}
            row["ms_1080p"] = frame_ms(enhancer, 1 if c.scale == 1 and not c.long_side else args.repeat)
            row.update(score(enhancer, pairs))
            photo = {**row, "name": f"{row['name']} (photos)", **score(enhancer.enhance_photo, pairs)}
        rows += [row, photo]
        print(f"# {row}", file=sys.stderr)
    print(f"Validation: {len(pairs)} pairs from {shown(args.val)}; PSNR on uint8 RGB, SSIM (Gaussian 11x11, σ 1.5) per channel.\n")
    print("| model | width | conv | maps | tone head | estimation | dark denoise | parameters | ms / 1080p frame | "
          "PSNR dB | SSIM " + TONE_COLUMNS)
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "width" in r:
            denoise = f"< {r['denoise_below']}" if r["denoise_below"] else "off"
            print(f"| {r['name']} | {r['width']} | {r['conv']} | {r['maps']} | {'yes' if r['tone'] else 'no'} | "
                  f"{r['estimation']} | {denoise} | {r['parameters']} | {r['ms_1080p']:.1f} | {r['psnr']:.2f} | "
                  f"{r['ssim']:.3f} " + tone_cells(r))
        else:
            print(f"| {r['name']} | – | – | – | – | – | – | – | – | {r['psnr']:.2f} | {r['ssim']:.3f} " + tone_cells(r))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
