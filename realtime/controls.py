"""How strongly to brighten: the user's strength, a target exposure, and good light left alone.

The curves are scaled by *strength*: s runs s times the model's iterations of the curve
(0 = the input unchanged, 1 = the model's curves, 2 = twice as many), which keeps them
monotone and costs one pass per pixel whatever s is (curves.Schedule).

By default the strength of this project's models is attenuated in good light (their
configuration says so; the published models compute what their papers describe): a
model trained to lift dark frames, applied as it is to a well-lit frame, washes it out
(+45 levels of mean luminance on LOL's normal-light references for the first default;
docs/MODEL.md).
The weight falls linearly from 1 at a mean luma of LIGHT_FULL to 0 at LIGHT_NONE; the
thresholds were chosen on ../shared/data/lol-val, whose low-light inputs have a median
mean luma of 0.05 (90th percentile 0.11) and its references 0.46 (10th percentile 0.33).

A target exposure (`exposure`) replaces both: the strength is then chosen per frame, on
the net's small copy, so that the output's mean luma is the target.

:class:`Controls` holds what a viewer may change while a live stream runs (the preview
window's keys, the browser page's slider); the engine reads it every frame.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .checkpoint import ModelConfig
    from .curves import Curves

#: Mean luma (R'G'B' in 0..1, BT.709 weights) below which the curves apply in full, and above
#: which not at all.
LIGHT_FULL, LIGHT_NONE = 0.15, 0.35
MAX_STRENGTH = 2.0
LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)


@dataclass
class Controls:
    """What may change while a stream runs. strength: 0..2; exposure: a target mean luma in
    (0, 1), or None for the default (the strength, attenuated in good light where
    `attenuate` says so: None = as the checkpoint's configuration says, on for this
    project's models, off for the published ones); show_both: viewers show before | after."""

    strength: float = 1.0
    exposure: float | None = None
    show_both: bool = False
    attenuate: bool | None = None

    def is_default(self) -> bool:
        """The model's own curves: strength 1, no target exposure, the checkpoint's attenuation."""
        return self.strength == 1.0 and self.exposure is None and self.attenuate is None

    def set_strength(self, value: float) -> float:
        self.strength = float(np.clip(value, 0.0, MAX_STRENGTH))
        return self.strength

    def set_exposure(self, value: float | None) -> float | None:
        self.exposure = None if value is None else float(np.clip(value, 0.01, 0.99))
        return self.exposure


def light_weight(mean_luma: float) -> float:
    """1 for dark frames, 0 for well-lit ones, linear in between."""
    return float(np.clip((LIGHT_NONE - mean_luma) / (LIGHT_NONE - LIGHT_FULL), 0.0, 1.0))


def curve_small(small: np.ndarray, curves: "Curves", iterations: int, strength: float) -> np.ndarray:
    """The tone and curves applied to the net's small copy (h, w, 3) with its own curves
    (maps (h, w, C)) at `strength`: what the frame will look like, at low resolution."""
    from .curves import Schedule

    schedule = Schedule.of(iterations, strength)
    sets = curves.maps.reshape(*curves.maps.shape[:2], -1, 3)
    black, gain = curves.tone_at(strength)
    x = np.clip((small.astype(np.float64) - black) * gain, 0, 1)
    for i in range(schedule.full + (schedule.last > 0)):
        a = sets[:, :, i % sets.shape[2]] * (schedule.last if i == schedule.full else 1.0)
        x = x + a * (x - x * x)
    return x


def effective_strength(small: np.ndarray, curves: "Curves", config: "ModelConfig", controls: Controls) -> float:
    """The strength to use for a frame, from its small copy and curves (see the module docstring)."""
    if controls.exposure is None:
        attenuate = config.attenuate_good_light if controls.attenuate is None else controls.attenuate
        if not attenuate:
            return controls.strength
        return controls.strength * light_weight(float(small.reshape(-1, 3).mean(axis=0) @ LUMA))

    def mean(strength: float) -> float:
        return float(curve_small(small, curves, config.iterations, strength).reshape(-1, 3).mean(axis=0) @ LUMA)

    # The output's mean moves one way with the strength (up for brightening maps, down for
    # darkening ones): bisect for the target, or stop at the end that comes closest.
    rising = mean(MAX_STRENGTH) >= mean(0.0)
    low, high = 0.0, MAX_STRENGTH
    for _ in range(12):
        middle = (low + high) / 2
        low, high = (middle, high) if (mean(middle) < controls.exposure) == rising else (low, middle)
    return (low + high) / 2
