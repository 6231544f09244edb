"""How much of the lol-val error is exposure, and could features of the dark image predict it?

    python benchmarks/exposure_bound.py [--weights W]

An analysis, not a method: it uses the references in ways the engine never may.

1. Exposure known: the engine's photo output scaled to its reference's mean luma (PSNR,
   SSIM): what the same curves would score with a perfect exposure.
2. Exposure known to within a spread: the same, scaled to the reference's mean luma times
   e^N(0, σ) — how close an exposure estimate has to be for a given PSNR, beside the
   spread of the engine's own estimate (σ of its log mean-luma error).
3. Exposure from features: regressions of the reference's log mean luma on features of the
   dark image's 32-px copy, the output scaled to what they predict. Global features (log
   mean luma, seven log-percentiles, log channel means, relative spread) fitted on
   ../shared/data/lol-train; then richer ones (also an 8×6 grid of log luma and a 16-bin
   log histogram) fitted on lol-train and the other 60 lol-val pairs, leave-one-out — an
   optimistic bound, since it learns from lol-val's own scenes. If any of them predicted
   LOL's hand-set exposure better than the tone head, the tone head could learn it.
4. The black point: the median |black-point error| (1st-percentile luma) of the photos, at
   the reference's mean luma, and with the output's black moved down by a constant.
"""
from __future__ import annotations

import argparse

import cv2
import numpy as np

from realtime import Enhancer
from realtime.devdata import SHARED
from realtime.metrics import luma, psnr, read_pairs, ssim, tone

LUMA = np.float32([0.2126, 0.7152, 0.0722])
SHARES = [0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99]


def features(low: np.ndarray) -> np.ndarray:
    """Global features of the 32-px copy of a dark (H, W, 3) uint8 image, and a constant 1."""
    small = cv2.resize(low, (32, 21), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    y = small @ LUMA
    means = small.reshape(-1, 3).mean(axis=0)
    return np.concatenate([[np.log(y.mean() + 1e-3)], np.log(np.quantile(y, SHARES) + 1e-3),
                           np.log(means + 1e-3), [y.std() / (y.mean() + 1e-3), 1.0]])


def rich_features(low: np.ndarray) -> np.ndarray:
    """The global features, an 8×6 grid of log luma and a 16-bin histogram of log luma."""
    small = cv2.resize(low, (32, 21), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    y = small @ LUMA
    grid = cv2.resize(y, (8, 6), interpolation=cv2.INTER_AREA).ravel()
    hist = np.histogram(np.log(y + 1e-3), bins=16, range=(np.log(1e-3), 0.0))[0] / y.size
    return np.concatenate([features(low)[:-1], np.log(grid + 1e-3), hist])


def exposure(image: np.ndarray) -> float:
    """log mean luma in [0, 1]."""
    return float(np.log(luma(image).mean() / 255))


def levels_off(predicted: np.ndarray, wanted: np.ndarray) -> float:
    return float(np.median(np.abs(np.exp(predicted) - np.exp(wanted))) * 255)


def ridge(x: np.ndarray, y: np.ndarray, lam: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ridge on standardised features with an unpenalised intercept: (mean, scale, weights)."""
    mu, sd = x.mean(axis=0), x.std(axis=0) + 1e-6
    xn = (x - mu) / sd
    w = np.linalg.solve(xn.T @ xn + lam * np.eye(x.shape[1]), xn.T @ (y - y.mean()))
    return mu, sd, np.append(w, y.mean())


def predict(model: tuple[np.ndarray, np.ndarray, np.ndarray], x: np.ndarray) -> np.ndarray:
    mu, sd, w = model
    return ((x - mu) / sd) @ w[:-1] + w[-1]


def at_exposure(photos: list[np.ndarray], log_mean: np.ndarray) -> list[np.ndarray]:
    """Each photo scaled to the mean luma exp(log_mean) (in [0, 1])."""
    return [np.clip(o.astype(np.float32) * (np.exp(t) * 255 / max(luma(o).mean(), 1.0)), 0, 255)
            .round().astype(np.uint8) for o, t in zip(photos, log_mean)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", help="engine checkpoint (default: the bundled weights)")
    args = p.parse_args()
    train, val = read_pairs(SHARED / "data" / "lol-train"), read_pairs(SHARED / "data" / "lol-val")
    y_train = np.array([exposure(high) for _, high in train])
    y_val = np.array([exposure(high) for _, high in val])
    engine = Enhancer(args.weights, backend="cpu")
    photos = [engine.enhance_photo(low) for low, _ in val]
    y_engine = np.array([exposure(o) for o in photos])

    def report(name: str, images: list[np.ndarray]) -> None:
        print(f"  {name:58s} PSNR {np.mean([psnr(o, h) for o, (_, h) in zip(images, val)]):5.2f} dB, "
              f"SSIM {np.mean([ssim(o, h) for o, (_, h) in zip(images, val)]):.3f}, median |mean-luma error| "
              f"{levels_off(np.array([exposure(o) for o in images]), y_val):4.1f}")

    print(f"lol-val, {len(val)} pairs; lol-train, {len(train)} pairs")
    report("engine, photos", photos)
    report("a constant exposure (lol-train's mean)", at_exposure(photos, np.full_like(y_val, y_train.mean())))
    report("at the reference's mean luma", at_exposure(photos, y_val))
    print(f"  σ of the engine's log mean-luma error: {np.std(y_engine - y_val):.3f}")
    rng = np.random.default_rng(0)
    for sigma in (0.05, 0.1, 0.15, 0.2):
        report(f"at the reference's mean luma × e^N(0, {sigma})",
               at_exposure(photos, y_val + rng.normal(0.0, sigma, len(val))))
    x_train = np.array([features(low) for low, _ in train])
    x_val = np.array([features(low) for low, _ in val])
    for lam in (0.1, 1.0, 10.0, 30.0):
        w = np.linalg.solve(x_train.T @ x_train + lam * np.eye(x_train.shape[1]), x_train.T @ y_train)
        report(f"global features, ridge on lol-train, λ = {lam:g}", at_exposure(photos, x_val @ w))
    r_train = np.array([rich_features(low) for low, _ in train])
    r_val = np.array([rich_features(low) for low, _ in val])
    for lam in (10.0, 100.0, 1000.0):
        predicted = []
        for i in range(len(val)):
            others = np.arange(len(val)) != i
            model = ridge(np.vstack([r_train, r_val[others]]), np.concatenate([y_train, y_val[others]]), lam)
            predicted.append(predict(model, r_val[i:i + 1])[0])
        report(f"rich features, ridge leave-one-out incl. lol-val, λ = {lam:g}",
               at_exposure(photos, np.array(predicted)))

    def black(name: str, images: list[np.ndarray]) -> None:
        errors = np.array([tone(o, h)["black_point_error"] for o, (_, h) in zip(images, val)])
        print(f"  {name:58s} median |black-point error| {np.median(np.abs(errors)):4.1f} "
              f"(signed {np.median(errors):+.1f}, 10-90 % {np.quantile(errors, 0.1):+.1f} to {np.quantile(errors, 0.9):+.1f})")

    black("engine, photos", photos)
    black("at the reference's mean luma", at_exposure(photos, y_val))
    for levels in (2, 4):
        moved = [np.clip((o.astype(np.float32) - levels) * 255 / (255 - levels), 0, 255).round().astype(np.uint8)
                 for o in photos]
        black(f"black moved down {levels} levels", moved)
        report(f"black moved down {levels} levels", moved)


if __name__ == "__main__":
    main()
