"""Full-reference quality metrics on uint8 RGB images (PSNR, SSIM and tone against a
reference), and the physical camera model that makes dark test footage (and training
pairs) from normally lit pictures."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .controls import LUMA
from .sources import read_image


def mean_luma(image: np.ndarray) -> float:
    """Mean BT.709 luma of a uint8 RGB image (H, W, 3), in levels 0..255."""
    return float(luma(image).mean())


def luma(image: np.ndarray) -> np.ndarray:
    """BT.709 luma of a uint8 RGB image (H, W, 3): (H, W) float32 levels 0..255."""
    return image.astype(np.float32) @ LUMA


def black_point(image: np.ndarray, share: float = 0.01) -> float:
    """The level below which `share` of the pixels' luma lies (default the darkest 1 %),
    in levels 0..255: where the picture's black sits."""
    return float(np.quantile(luma(image), share))


def colourfulness(image: np.ndarray) -> float:
    """Hasler and Süsstrunk's colourfulness M (2003) of a uint8 RGB image: the spread and
    mean of the opponent channels rg = R − G and yb = (R + G)/2 − B, in levels; 0 for grey."""
    r, g, b = (image[..., c].astype(np.float64) for c in range(3))
    rg, yb = r - g, 0.5 * (r + g) - b
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def tone(image: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """How the tone of `image` compares with its reference (uint8 RGB, one shape):
    mean_luma_error and black_point_error in levels (image minus reference, so positive =
    too bright / blacks lifted); contrast_ratio = std of luma, image / reference (below 1:
    flatter); colourfulness_ratio, image / reference (below 1: paler). Ratios of a flat or
    grey reference are inf (or 1 when both are)."""
    _check_pair(image, reference)
    li, lr = luma(image), luma(reference)

    def ratio(a: float, b: float) -> float:
        return a / b if b > 1e-9 else (1.0 if a <= 1e-9 else float("inf"))

    return {"mean_luma_error": float(li.mean() - lr.mean()),
            "black_point_error": black_point(image) - black_point(reference),
            "contrast_ratio": ratio(float(li.std()), float(lr.std())),
            "colourfulness_ratio": ratio(colourfulness(image), colourfulness(reference))}


def psnr(image: np.ndarray, reference: np.ndarray) -> float:
    """PSNR in dB of uint8 `image` against uint8 `reference` (same shape), peak 255."""
    _check_pair(image, reference)
    mse = np.mean((image.astype(np.float64) - reference.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def ssim(image: np.ndarray, reference: np.ndarray) -> float:
    """SSIM (Wang et al. 2004: 11x11 Gaussian window, σ = 1.5, K1 = 0.01, K2 = 0.03,
    peak 255), computed per channel and averaged; uint8 inputs of the same shape."""
    _check_pair(image, reference)
    x, y = image.astype(np.float64), reference.astype(np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def blur(a: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(a, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(s[5:-5, 5:-5].mean()) if min(s.shape[:2]) > 10 else float(s.mean())


def _check_pair(image: np.ndarray, reference: np.ndarray) -> None:
    if image.shape != reference.shape or image.dtype != np.uint8 or reference.dtype != np.uint8:
        raise ValueError(
            f"expected two uint8 images of one shape, got {image.dtype}{image.shape} and {reference.dtype}{reference.shape}"
        )


# --- making footage dark ------------------------------------------------------------------


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0, 1)
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * x ** (1 / 2.4) - 0.055)


def darken(frame: np.ndarray, factor: float, full_well: float, read_noise: float, rng: np.random.Generator
           ) -> np.ndarray:
    """A clean uint8 sRGB frame as a camera would record the scene with `factor` of the light:
    photons = linear light · factor · full_well, Poisson-distributed, plus Gaussian read noise
    (electrons), back to sRGB 8 bits."""
    photons = srgb_to_linear(frame.astype(np.float32) / 255) * (factor * full_well)
    electrons = rng.poisson(photons).astype(np.float32) + rng.normal(0, read_noise, frame.shape).astype(np.float32)
    return np.clip(np.rint(linear_to_srgb(electrons / full_well) * 255), 0, 255).astype(np.uint8)


def read_pairs(folder: str | Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """(low, reference) uint8 RGB pairs from folder/low/NAME and folder/high/NAME
    (the LOL layout); files that do not decode, or have no partner, are left out."""
    folder = Path(folder)
    pairs = []
    for low_path in sorted((folder / "low").glob("*")):
        low, high = read_image(low_path), read_image(folder / "high" / low_path.name)
        if low is not None and high is not None:
            pairs.append((low, high))
    return pairs
