"""The tone metrics on synthetic cases whose answers are known."""
from __future__ import annotations

import numpy as np
import pytest

from realtime.metrics import black_point, colourfulness, tone


def grey_ramp(low: int = 0, high: int = 255) -> np.ndarray:
    """A 100x256 grey ramp from `low` to `high`."""
    row = np.linspace(low, high, 256).round().astype(np.uint8)
    return np.repeat(np.repeat(row[None, :, None], 100, axis=0), 3, axis=2)


def test_the_same_picture_has_no_tone_error():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (64, 80, 3), dtype=np.uint8)
    report = tone(image, image)
    assert report["mean_luma_error"] == 0 and report["black_point_error"] == 0
    assert report["contrast_ratio"] == pytest.approx(1) and report["colourfulness_ratio"] == pytest.approx(1)


def test_lifted_blacks_and_half_contrast_are_measured():
    reference = grey_ramp(0, 200)
    washed = grey_ramp(60, 160)  # blacks lifted to 60, half the range, mean +10
    report = tone(washed, reference)
    assert report["black_point_error"] == pytest.approx(60, abs=1.5)
    assert report["contrast_ratio"] == pytest.approx(0.5, abs=0.01)
    assert report["mean_luma_error"] == pytest.approx(10, abs=0.5)


def test_a_brighter_picture_has_a_positive_mean_error():
    reference = np.full((10, 10, 3), 100, np.uint8)
    assert tone(reference + 18, reference)["mean_luma_error"] == pytest.approx(18, abs=1e-3)
    assert black_point(reference) == pytest.approx(100, abs=1e-3)


def test_colourfulness_is_zero_for_grey_and_ratios_follow_saturation():
    grey = grey_ramp()
    assert colourfulness(grey) == pytest.approx(0, abs=1e-9)
    rng = np.random.default_rng(1)
    colour = rng.integers(0, 256, (50, 50, 3)).astype(np.float64)
    mean = colour.mean(axis=2, keepdims=True)
    pale = np.rint(mean + 0.5 * (colour - mean)).astype(np.uint8)  # half the saturation
    ratio = tone(pale, colour.astype(np.uint8))["colourfulness_ratio"]
    assert ratio == pytest.approx(0.5, abs=0.02)
    assert tone(grey, grey)["colourfulness_ratio"] == 1.0
