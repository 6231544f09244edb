"""How much of the lol-val error is exposure, and could global features predict it?

    python benchmarks/exposure_bound.py [--weights W]

An analysis, not a method: it uses the references in ways the engine never may.

1. Exposure from features: a ridge regression of the reference's log mean luma on
   features of the dark image's 32-px copy (log mean luma, seven log-percentiles of luma,
   log channel means, relative spread), fitted on ../shared/data/lol-train and scored on
   ../shared/data/lol-val as the median |mean-luma error| in levels — beside the engine's
   own and a constant exposure's. If richer global features predicted LOL's hand-set
   exposure, the tone head could learn them.
2. Exposure known: the engine's photo output scaled to its reference's mean luma (PSNR,
   SSIM): what the same curves would score with a perfect exposure.
"""
from __future__ import annotations

import argparse

import cv2
import numpy as np

from realtime import Enhancer
from realtime.devdata import SHARED
from realtime.metrics import luma, psnr, read_pairs, ssim

LUMA = np.float32([0.2126, 0.7152, 0.0722])
SHARES = [0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99]


def features(low: np.ndarray) -> np.ndarray:
    small = cv2.resize(low, (32, 21), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    y = small @ LUMA
    means = small.reshape(-1, 3).mean(axis=0)
    return np.concatenate([[np.log(y.mean() + 1e-3)], np.log(np.quantile(y, SHARES) + 1e-3),
                           np.log(means + 1e-3), [y.std() / (y.mean() + 1e-3), 1.0]])


def exposure(image: np.ndarray) -> float:
    """log mean luma in [0, 1]."""
    return float(np.log(luma(image).mean() / 255))


def levels_off(predicted: np.ndarray, wanted: np.ndarray) -> float:
    return float(np.median(np.abs(np.exp(predicted) - np.exp(wanted))) * 255)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", help="engine checkpoint (default: the bundled weights)")
    args = p.parse_args()
    train, val = read_pairs(SHARED / "data" / "lol-train"), read_pairs(SHARED / "data" / "lol-val")
    x_train = np.array([features(low) for low, _ in train])
    y_train = np.array([exposure(high) for _, high in train])
    x_val = np.array([features(low) for low, _ in val])
    y_val = np.array([exposure(high) for _, high in val])
    engine = Enhancer(args.weights, backend="cpu")
    photos = [engine.enhance_photo(low) for low, _ in val]
    print(f"lol-val, {len(val)} pairs; ridge fitted on lol-train, {len(train)} pairs")
    print(f"median |mean-luma error|, levels: engine {levels_off(np.array([exposure(o) for o in photos]), y_val):.1f}, "
          f"a constant (lol-train's mean) {levels_off(np.full_like(y_val, y_train.mean()), y_val):.1f}")
    for lam in (0.01, 0.1, 1.0, 10.0):
        w = np.linalg.solve(x_train.T @ x_train + lam * np.eye(x_train.shape[1]), x_train.T @ y_train)
        print(f"  ridge, λ = {lam:g}: {levels_off(x_val @ w, y_val):.1f}")
    scaled = [np.clip(o * (luma(h).mean() / max(luma(o).mean(), 1.0)), 0, 255).round().astype(np.uint8)
              for o, (_, h) in zip(photos, val)]
    print(f"photos: PSNR {np.mean([psnr(o, h) for o, (_, h) in zip(photos, val)]):.2f} dB, "
          f"SSIM {np.mean([ssim(o, h) for o, (_, h) in zip(photos, val)]):.3f}; "
          f"at the reference's mean luma {np.mean([psnr(o, h) for o, (_, h) in zip(scaled, val)]):.2f} dB, "
          f"SSIM {np.mean([ssim(o, h) for o, (_, h) in zip(scaled, val)]):.3f}")


if __name__ == "__main__":
    main()
