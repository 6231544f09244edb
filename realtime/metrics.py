"""Full-reference quality metrics on uint8 RGB images: PSNR and SSIM against a reference."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .controls import LUMA
from .sources import read_image


def mean_luma(image: np.ndarray) -> float:
    """Mean BT.709 luma of a uint8 RGB image (H, W, 3), in levels 0..255."""
    return float((image.astype(np.float32) @ LUMA).mean())


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
