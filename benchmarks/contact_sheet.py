"""Contact sheets: input | before | after | reference, for looking at tone rather than reading it.

    python benchmarks/contact_sheet.py --before PATH --out docs/img

One JPEG per set: ../shared/data/lol-val (six pairs spread over the set), LIME, six DICM
photos, and one frame of each real clip in ../shared/data/video/real made dark with the
physical camera model at each dark factor (realtime.metrics.darken; fresh noise, seed 0).
"before" is the checkpoint given by --before (e.g. the previous default), "after" the
bundled default (or --after); both run through the engine with their defaults. Sets
without a reference show three columns.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import av
import cv2
import numpy as np

from realtime import Enhancer
from realtime.metrics import darken, read_pairs
from realtime.sources import read_image
from realtime.devdata import SHARED

ROOT = Path(__file__).resolve().parents[1]
TILE = 300  # width of each picture on the sheet


def tile(image: np.ndarray, label: str) -> np.ndarray:
    h = round(image.shape[0] * TILE / image.shape[1])
    out = cv2.resize(image, (TILE, h), interpolation=cv2.INTER_AREA)
    for colour, thickness in (((0, 0, 0), 3), ((255, 255, 255), 1)):
        cv2.putText(out, label, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, thickness, cv2.LINE_AA)
    return out


def sheet(rows: list[list[np.ndarray]]) -> np.ndarray:
    width = max(sum(t.shape[1] for t in row) for row in rows)
    lines = []
    for row in rows:
        line = np.concatenate(row, axis=1)
        lines.append(np.pad(line, ((0, 4), (0, width - line.shape[1]), (0, 0)), constant_values=255))
    return np.concatenate(lines, axis=0)


def clip_frame(path: Path, index: int = 30) -> np.ndarray:
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i == index:
                return frame.to_ndarray(format="rgb24")
    raise ValueError(f"{path}: fewer than {index + 1} frames")


def sets(args) -> dict[str, list[tuple[str, np.ndarray, np.ndarray | None]]]:
    """name -> [(label, dark input, reference or None)]."""
    out: dict[str, list] = {}
    pairs = read_pairs(SHARED / "data" / "lol-val")
    if pairs:
        picks = np.linspace(0, len(pairs) - 1, 6).round().astype(int)
        out["lol-val"] = [(f"lol-val #{i}", *pairs[i]) for i in picks]
    lime = sorted((SHARED / "data" / "LIME").glob("*.bmp"), key=lambda p: int(p.stem))
    out["lime"] = [(p.name, read_image(p), None) for p in lime if p.name != "10.bmp"]  # 10 is 5 again
    dicm = sorted((SHARED / "data" / "DICM").glob("*.jpg"))
    out["dicm"] = [(p.name, read_image(p), None) for p in dicm[:: max(1, len(dicm) // 6)][:6]]
    clips = []
    for path in sorted((SHARED / "data" / "video" / "real").glob("*.mp4")):
        clean = clip_frame(path)
        for factor in args.factors:
            dark = darken(clean, factor, args.full_well, args.read_noise, np.random.default_rng(0))
            clips.append((f"{path.stem} x{factor:g}", dark, clean))
    out["real-clips"] = clips
    return {k: v for k, v in out.items() if v}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--before", required=True, help="the checkpoint to compare with (e.g. the previous default)")
    p.add_argument("--after", help="default: the bundled weights")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    p.add_argument("--factors", type=float, nargs="+", default=[0.08, 0.03])
    p.add_argument("--full-well", type=float, default=300.0)
    p.add_argument("--read-noise", type=float, default=2.35)
    args = p.parse_args(argv)
    if not SHARED.is_dir():
        sys.exit("error: ../shared is not beside the checkout")
    args.out.mkdir(parents=True, exist_ok=True)
    with Enhancer(args.before, backend="cpu") as before, Enhancer(args.after, backend="cpu") as after:
        for name, items in sets(args).items():
            rows = []
            for label, dark, reference in items:
                row = [tile(dark, f"input {label}"), tile(before(dark), "before"), tile(after(dark), "after")]
                if reference is not None:
                    row.append(tile(reference, "reference"))
                rows.append(row)
            target = args.out / f"contact_{name}.jpg"
            cv2.imwrite(str(target), cv2.cvtColor(sheet(rows), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
            print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
