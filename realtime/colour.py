"""Colour descriptions of video frames, and YUV <-> RGB for them.

A decoded video frame is Y'CbCr with a colour description: the matrix that made it
from R'G'B' (BT.601, BT.709, BT.2020), the range of its codes (limited: Y' 16..235, or
full: 0..255, scaled for higher bit depths), its primaries and transfer function. The
engine's curves are defined on R'G'B', so the video path converts with the frame's own
matrix and range and writes the same description into the output.

An untagged frame is interpreted as players do (mpv, VLC, browsers): BT.709 for HD
(width >= 1280 or height > 576), BT.601 otherwise; limited range unless the pixel
format is a JPEG one (yuvj*). That interpretation is then written as tags, so the
output means what the input was shown as.

Values follow FFmpeg's enums (AVColorSpace, AVColorRange, AVColorPrimaries,
AVColorTransferCharacteristic), which PyAV exposes as plain ints.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

UNSPECIFIED = 2  # AVCOL_SPC / AVCOL_PRI / AVCOL_TRC _UNSPECIFIED
RANGE_UNSPECIFIED, RANGE_LIMITED, RANGE_FULL = 0, 1, 2
SPACE_BT709, SPACE_BT470BG, SPACE_SMPTE170M, SPACE_BT2020_NCL = 1, 5, 6, 9
PRIMARIES_BT709, PRIMARIES_BT470BG, PRIMARIES_SMPTE170M, PRIMARIES_BT2020 = 1, 5, 6, 9
TRANSFER_BT709 = 1

#: (Kr, Kb) of each matrix, by AVColorSpace value.
MATRICES: dict[int, tuple[str, float, float]] = {
    1: ("bt709", 0.2126, 0.0722),
    4: ("fcc", 0.30, 0.11),
    5: ("bt470bg", 0.299, 0.114),
    6: ("smpte170m", 0.299, 0.114),
    7: ("smpte240m", 0.212, 0.087),
    9: ("bt2020nc", 0.2627, 0.0593),
    10: ("bt2020c", 0.2627, 0.0593),  # constant-luminance, approximated by its non-constant matrix
}
#: HDR transfer functions. PQ (16) codes are absolute light levels (a code is so many
#: nits), so an SDR curve on them means nothing and such input is refused until a PQ path
#: exists. HLG (18) is built to be shown as it is on SDR displays (its lower half is a
#: square root, like SDR gamma): it is enhanced in that SDR-compatible signal and keeps
#: its HLG tags (docs/MODEL.md).
TRANSFER_PQ, TRANSFER_HLG = 16, 18
HDR_TRANSFERS = {TRANSFER_PQ: "PQ (SMPTE 2084)", TRANSFER_HLG: "HLG (ARIB STD-B67)"}


@dataclass(frozen=True)
class ColourDescription:
    """How a frame's codes map to colour. `space` always names a known matrix (see
    MATRICES); `guessed` says what was interpreted for an untagged input ("" if nothing)."""

    space: int = SPACE_BT709
    full_range: bool = False
    primaries: int = PRIMARIES_BT709
    transfer: int = TRANSFER_BT709
    guessed: str = ""

    @property
    def matrix(self) -> str:
        return MATRICES[self.space][0]

    @property
    def range(self) -> int:
        return RANGE_FULL if self.full_range else RANGE_LIMITED

    def __str__(self) -> str:
        return f"{self.matrix}, {'full' if self.full_range else 'limited'} range"

    def coefficients(self, bits: int = 8, scale: int = 1) -> np.ndarray:
        """float32 [y_off, y_scale, c_off, c_scale, kr, kg, kb, cr_v, cg_u, cg_v, cb_u] for
        codes of `bits` bits: Y' = (Y - y_off) / y_scale, Pb = (U - c_off) / c_scale, and
        R' = Y' + cr_v·Pr, G' = Y' - cg_u·Pb - cg_v·Pr, B' = Y' + cb_u·Pb (R'G'B' in 0..1).
        scale: the codes are stored multiplied by it (fixed point with fractions)."""
        _, kr, kb = MATRICES[self.space]
        kg = 1.0 - kr - kb
        unit = 1 << (bits - 8)
        if self.full_range:
            y_off, y_scale, c_off, c_scale = 0.0, (1 << bits) - 1.0, float(1 << (bits - 1)), (1 << bits) - 1.0
        else:
            y_off, y_scale, c_off, c_scale = 16.0 * unit, 219.0 * unit, 128.0 * unit, 224.0 * unit
        cr_v, cb_u = 2 * (1 - kr), 2 * (1 - kb)
        cg_u, cg_v = cb_u * kb / kg, cr_v * kr / kg
        return np.array([y_off * scale, y_scale * scale, c_off * scale, c_scale * scale, kr, kg, kb, cr_v, cg_u, cg_v,
                         cb_u], np.float32)


def interpret(space: int, colour_range: int, primaries: int, transfer: int, width: int, height: int,
              full_range_format: bool = False) -> ColourDescription:
    """The ColourDescription of a stream or frame from its FFmpeg tags; untagged (or
    unusable) parts are interpreted as players do (see the module docstring)."""
    hd = width >= 1280 or height > 576
    guesses = []
    if space not in MATRICES:
        space = SPACE_BT709 if hd else (SPACE_BT470BG if height == 576 else SPACE_SMPTE170M)
        guesses.append(f"matrix {MATRICES[space][0]} (by resolution)")
    if colour_range not in (RANGE_LIMITED, RANGE_FULL):
        colour_range = RANGE_FULL if full_range_format else RANGE_LIMITED
        guesses.append("full range (JPEG pixel format)" if full_range_format else "limited range")
    if primaries == UNSPECIFIED or primaries <= 0:
        primaries = {1: PRIMARIES_BT709, 5: PRIMARIES_BT470BG, 6: PRIMARIES_SMPTE170M, 9: PRIMARIES_BT2020,
                     10: PRIMARIES_BT2020}.get(space, PRIMARIES_BT709)
        guesses.append("primaries from the matrix")
    if transfer == UNSPECIFIED or transfer <= 0:
        transfer = TRANSFER_BT709
        guesses.append("BT.709 transfer")
    return ColourDescription(space, colour_range == RANGE_FULL, primaries, transfer, ", ".join(guesses))


#: What OpenCV's RGB <-> I420 conversions use: BT.601, limited range (cameras' frames, RGB
#: sources' output).
OPENCV_I420 = ColourDescription(space=SPACE_SMPTE170M, full_range=False, primaries=1, transfer=1)


# --- reference conversions (NumPy; the engine's fused kernel does the same arithmetic) ---


def yuv_to_rgb(y: np.ndarray, u: np.ndarray, v: np.ndarray, colour: ColourDescription, bits: int = 8,
               scale: int = 1) -> np.ndarray:
    """4:2:0 planes -> (H, W, 3) float32 R'G'B' in nominal 0..1 (not clipped).

    y: (H, W); u, v: (ceil(H/2), ceil(W/2)); each chroma sample serves its 2x2 block.
    """
    yo, ys, co, cs, _, _, _, cr_v, cg_u, cg_v, cb_u = colour.coefficients(bits, scale)
    height, width = y.shape
    up = lambda c: np.repeat(np.repeat(c, 2, axis=0), 2, axis=1)[:height, :width]  # noqa: E731
    luma = (y.astype(np.float32) - yo) / ys
    pb, pr = (up(u).astype(np.float32) - co) / cs, (up(v).astype(np.float32) - co) / cs
    return np.stack([luma + cr_v * pr, luma - cg_u * pb - cg_v * pr, luma + cb_u * pb], axis=2)


def rgb_to_yuv(rgb: np.ndarray, colour: ColourDescription, bits: int = 8
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(H, W, 3) R'G'B' (float in 0..1, or uint8 codes 0..255) -> 4:2:0 planes of `bits`
    bits (uint8 or uint16), chroma from the mean of each 2x2 block's R'G'B'."""
    if rgb.dtype == np.uint8:
        rgb = rgb.astype(np.float32) / 255
    yo, ys, co, cs, kr, kg, kb, cr_v, _, _, cb_u = colour.coefficients(bits)
    height, width = rgb.shape[:2]
    maxv, dtype = (1 << bits) - 1, np.uint8 if bits == 8 else np.uint16
    luma = kr * rgb[..., 0] + kg * rgb[..., 1] + kb * rgb[..., 2]
    codes = lambda a, off, scale: np.clip(np.floor(a * scale + off + 0.5), 0, maxv).astype(dtype)  # noqa: E731
    padded = np.pad(rgb, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")
    block = padded.reshape(padded.shape[0] // 2, 2, padded.shape[1] // 2, 2, 3).mean(axis=(1, 3))
    block_luma = kr * block[..., 0] + kg * block[..., 1] + kb * block[..., 2]
    u = codes((block[..., 2] - block_luma) / cb_u, co, cs)
    v = codes((block[..., 0] - block_luma) / cr_v, co, cs)
    return codes(luma, yo, ys), u, v


def to_uint8_rgb(rgb: np.ndarray) -> np.ndarray:
    """float R'G'B' in 0..1 -> uint8, rounded and clipped as a display would."""
    return np.clip(np.floor(rgb * 255 + 0.5), 0, 255).astype(np.uint8)
