"""Fast application of curve maps to full-resolution frames, in one pass.

The net estimates α at low resolution; here the maps are upsampled bilinearly on the
fly and the curve LE(x) = x + α·x·(1 − x) is iterated in float32 in the same pass, so
the frame is read once and written once and no full-resolution float image exists.
Iterating in SIMD float (8 iterations = 16 fused multiply-adds per value) is faster on
a CPU than looking the result up in an (α, x) table, whose byte gathers do not
vectorise (1080p RGB: 1.8 vs 3.3 ms on one core), and it is exact where a table is
quantised: α = 0 returns its input unchanged.

Two kernels, one arithmetic per value: the optional dark denoise, the frame's tone (a
black point and a gain per channel: (x − black)·gain, clipped to [0, 1]), the curve.
- RGB frames (H, W, 3) uint8 or uint16: per value.
- YUV 4:2:0 planes, 8 to 16 bits: per 2x2 block, Y'CbCr -> R'G'B' with the frame's own
  matrix and range, the curve per channel, R'G'B' -> Y' per pixel, and the block's
  chroma from the mean of its four results. Only the change the curve makes is added
  back (out = in + curve(clip(in)) - clip(in)), so values outside the R'G'B' cube that
  the decoder delivered pass through unchanged.

Kernels are Numba-compiled, release the GIL and process a band of rows, so the caller
can split a frame across threads.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from functools import lru_cache

import numba
import numpy as np


def curve_float64(x: np.ndarray, alpha: np.ndarray | float, iterations: int = 8) -> np.ndarray:
    """The published curve in float64: LE(x) = x + α·x·(1 − x), applied `iterations` times.

    x in [0, 1]; α in [-1, 1], broadcast against x. Returns values in [0, 1].
    """
    x = np.asarray(x, dtype=np.float64)
    for _ in range(iterations):
        x = x + alpha * x * (1 - x)
    return x


@dataclass(frozen=True)
class Curves:
    """What the net estimates for one frame: low-resolution α maps (h, w, C) float32 in
    [-1, 1] (C = 3 shared by all iterations, or 3 per iteration) and the frame's tone, a
    black point and a gain per channel ((3,) float32 each: x -> (x − black)·gain, clipped,
    before the curves; 0 and 1 for the published models)."""

    maps: np.ndarray
    black: np.ndarray = field(default_factory=lambda: np.zeros(3, np.float32))
    gain: np.ndarray = field(default_factory=lambda: np.ones(3, np.float32))

    def tone_at(self, strength: float) -> tuple[np.ndarray, np.ndarray]:
        """(black, gain) at `strength`: linear from the identity (0) to the model's (1 and up)."""
        s = np.float32(np.clip(strength, 0.0, 1.0))
        return self.black * s, np.float32(1) + (self.gain - np.float32(1)) * s

    def replace(self, **changes: np.ndarray) -> "Curves":
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class Taps:
    """Bilinear taps along one axis: dst[i] = src[i0[i]]·(1 − w[i]) + src[i1[i]]·w[i]."""

    i0: np.ndarray  # int32
    i1: np.ndarray  # int32
    w: np.ndarray  # float32 in [0, 1]


@lru_cache(maxsize=64)
def linear_taps(src: int, dst: int, grid: str = "half_pixel") -> Taps:
    """Taps to resample `src` samples to `dst` samples on the given grid.

    half_pixel: sample centres at (i + 0.5)·src/dst − 0.5, as F.interpolate with
    align_corners=False and cv2.resize; corners: i·(src − 1)/(dst − 1).
    """
    i = np.arange(dst, dtype=np.float64)
    if grid == "corners":
        pos = i * ((src - 1) / (dst - 1)) if dst > 1 else np.zeros(dst)
    else:
        pos = np.maximum((i + 0.5) * (src / dst) - 0.5, 0.0)
    i0 = np.minimum(np.floor(pos).astype(np.int32), src - 1)
    i1 = np.minimum(i0 + 1, src - 1)
    w = (pos - i0).astype(np.float32)
    return Taps(i0, i1, w)


@dataclass(frozen=True)
class Schedule:
    """How the curve is iterated: `full` iterations, then one more with α scaled by `last`
    when last > 0. Strength s runs s times the model's iterations (s = 0: unchanged;
    1: the model's curves; 2: twice as many). Each step is monotone, so the whole is."""

    full: int
    last: float

    @classmethod
    def of(cls, iterations: int, strength: float = 1.0) -> "Schedule":
        steps = max(0.0, strength) * iterations
        full = int(math.floor(steps + 1e-9))
        return cls(full, float(steps - full) if steps - full > 1e-9 else 0.0)


@numba.njit(nogil=True, cache=True)
def _upsample_rows(maps, x0, x1, xw, out):  # pragma: no cover - numba
    """out[r, X, c] = row r of maps resampled to len(x0) columns."""
    for r in range(maps.shape[0]):
        for x in range(x0.shape[0]):
            a, b, w = x0[x], x1[x], xw[x]
            for c in range(maps.shape[2]):
                out[r, x, c] = maps[r, a, c] + w * (maps[r, b, c] - maps[r, a, c])


@numba.njit(nogil=True, cache=True, fastmath=True)
def _alpha_row(la, lb, w, a):  # pragma: no cover - numba
    """a = la + w·(lb − la): α of one output row, bilinear between two upsampled rows."""
    for k in range(a.shape[0]):
        a[k] = la[k] + w * (lb[k] - la[k])


@numba.njit(nogil=True, cache=True, fastmath=True)
def _iterate8(v, la, lb, w):  # pragma: no cover - numba
    """_iterate for one set of maps and 8 full iterations, fused: one pass over the row
    (written out, so that the loop over the row vectorises with every step in registers)."""
    for k in range(v.shape[0]):
        a = la[k] + w * (lb[k] - la[k])
        x = v[k]
        x = x + a * (x - x * x)
        x = x + a * (x - x * x)
        x = x + a * (x - x * x)
        x = x + a * (x - x * x)
        x = x + a * (x - x * x)
        x = x + a * (x - x * x)
        x = x + a * (x - x * x)
        x = x + a * (x - x * x)
        v[k] = x


@numba.njit(nogil=True, cache=True, fastmath=True)
def _iterate(v, a, la, lb, w, full, last):  # pragma: no cover - numba
    """v (values in [0, 1]) through the schedule, in place. la, lb: (sets, n) upsampled α
    rows; iteration i uses set i mod sets (one set: maps shared by all iterations). The
    iterations are the outer loop so that the loop over a row vectorises."""
    sets = la.shape[0]
    if sets == 1 and full == 8 and last == 0:  # the models' own curves: all 8 steps in registers
        _iterate8(v, la[0], lb[0], w)
        return
    for i in range(full + (1 if last > 0 else 0)):
        if i == 0 or sets > 1:
            _alpha_row(la[i % sets], lb[i % sets], w, a)
        scale = last if i == full else np.float32(1.0)
        for k in range(v.shape[0]):
            x = v[k]
            v[k] = x + (a[k] * scale) * (x - x * x)


# --- RGB frames -----------------------------------------------------------------------


@numba.njit(nogil=True, cache=True, fastmath=True)
def _vertical_sums(src, y, vs):  # pragma: no cover - numba
    """vs[3 + k] = sum of element k (flattened RGB) over rows y - 1, y, y + 1, rows
    replicated at the frame's edges; vs[0:3] and vs[-3:] repeat the end pixels, so that
    vs[k] + vs[k + 3] + vs[k + 6] is the 3x3 sum around element k with no branches."""
    row, up, down = src[y].ravel(), src[max(y - 1, 0)].ravel(), src[min(y + 1, src.shape[0] - 1)].ravel()
    n = row.shape[0]
    for k in range(n):
        vs[k + 3] = np.float32(up[k]) + np.float32(row[k]) + np.float32(down[k])
    for k in range(3):
        vs[k] = vs[k + 3]
        vs[n + 3 + k] = vs[n + k]


@numba.njit(nogil=True, cache=True, fastmath=True)
def _denoised(vs, s, k, below, scale):  # pragma: no cover - numba
    """Input level s of element k after the dark denoise (s itself when below == 0).

    Same results as the integer arithmetic of realtime.model.denoise_dark, computed in
    float32 so that the loops around it vectorise: every intermediate is an integer below
    2^24, so exact, and t/9 is never within 0.05 of a rounding tie.
    """
    mean = np.floor((vs[k] + vs[k + 3] + vs[k + 6]) * np.float32(1.0 / 9.0) + np.float32(0.5))
    w = max(below - s, np.float32(0.0)) * scale
    return s + np.floor((w * (mean - s) + np.float32(128.0)) * np.float32(1.0 / 256.0))


@numba.njit(nogil=True, cache=True, fastmath=True)
def _rgb_rows(src, dst, maps, y0, y1, yw, full, last, fb, scale, maxv, inv, black, gain, r0, r1):  # noqa: E501  # pragma: no cover - numba
    """dst[y] = curves of src[y] for rows r0..r1 (levels 0..maxv: uint8 or uint16; inv =
    1/maxv). Dark denoise below level fb (0: off) with weight (fb − s)·scale/256; these
    constants come exact from the caller (a reciprocal taken here under fastmath may be
    approximate, and the denoise's integer arithmetic has exact ties). Then the tone
    (black, gain: (W·3,) per element; empty: none), then the curves.
    maps: (h, sets, W·3) row-upsampled α."""
    n = src.shape[1] * 3
    v = np.empty(n, np.float32)
    a = np.empty(n, np.float32)
    vs = np.zeros(n + 6, np.float32)
    below = fb > 0
    toned = black.shape[0] > 0
    for y in range(r0, r1):
        row, d = src[y].ravel(), dst[y].ravel()
        if below:
            _vertical_sums(src, y, vs)
            for k in range(n):
                v[k] = _denoised(vs, np.float32(row[k]), k, fb, scale) * inv
        else:
            for k in range(n):
                v[k] = np.float32(row[k]) * inv
        if toned:
            for k in range(n):
                v[k] = min(max((v[k] - black[k]) * gain[k], np.float32(0.0)), np.float32(1.0))
        _iterate(v, a, maps[y0[y]], maps[y1[y]], yw[y], full, last)
        for k in range(n):
            d[k] = min(max(v[k] * maxv + np.float32(0.5), np.float32(0.0)), maxv)


# --- YUV 4:2:0 planes -------------------------------------------------------------------


@numba.njit(nogil=True, cache=True, fastmath=True)
def _code(value, scale, offset, maxv):  # pragma: no cover - numba
    return min(max(np.floor(value * scale + offset + np.float32(0.5)), np.float32(0.0)), maxv)


@numba.njit(nogil=True, cache=True, fastmath=True)
def _chroma_terms(urow, vrow, co, inv_cs, cr_v, cg_u, cg_v, cb_u, pb, pr, off):  # pragma: no cover - numba
    """off[c, x]: what chroma adds to channel c of luma column x (each sample serves 2)."""
    for j in range(urow.shape[0]):
        pb[j] = (np.float32(urow[j]) - co) * inv_cs
        pr[j] = (np.float32(vrow[j]) - co) * inv_cs
    for x in range(off.shape[1]):
        b, r = pb[x >> 1], pr[x >> 1]
        off[0, x] = cr_v * r
        off[1, x] = -(cg_u * b + cg_v * r)
        off[2, x] = cb_u * b


@numba.njit(nogil=True, cache=True, fastmath=True)
def _decoded_row(y, u, v, yy, coef, levels, pb, pr, off, rgb):  # pragma: no cover - numba
    """rgb (3, W): luma row yy as a decoder delivers it: R'G'B' levels 0..`levels`
    (integers, in float32), clipped to the cube."""
    yo, ys, co, cs = coef[0], coef[1], coef[2], coef[3]
    _chroma_terms(u[yy >> 1], v[yy >> 1], co, np.float32(1.0) / cs, coef[7], coef[8], coef[9], coef[10], pb, pr, off)
    row, inv_ys = y[yy], np.float32(1.0) / ys
    for c in range(3):
        o, dst = off[c], rgb[c]
        for x in range(row.shape[0]):
            value = min(max((np.float32(row[x]) - yo) * inv_ys + o[x], np.float32(0.0)), np.float32(1.0))
            dst[x] = np.floor(value * levels + np.float32(0.5))


@numba.njit(nogil=True, cache=True, fastmath=True)
def _rgb_of_planes(y, u, v, coef, out):  # pragma: no cover - numba
    """out (H, W·3) uint8: 4:2:0 planes as a decoder delivers them, each channel clipped to
    the cube and rounded (as _decoded_row, fused into one loop per row)."""
    yo, ys, co, cs = coef[0], coef[1], coef[2], coef[3]
    cr_v, cg_u, cg_v, cb_u = coef[7], coef[8], coef[9], coef[10]
    to_y, to_c = np.float32(255.0) / ys, np.float32(255.0) / cs
    half, top, zero = np.float32(0.5), np.float32(255.0), np.float32(0.0)
    offsets = np.empty((3, 2 * u.shape[1]), np.float32)  # what chroma adds to each channel, + 0.5 to round
    for r in range(y.shape[0]):
        if r % 2 == 0:
            ur, vr = u[r >> 1], v[r >> 1]
            for j in range(ur.shape[0]):
                pb, pr = (np.float32(ur[j]) - co) * to_c, (np.float32(vr[j]) - co) * to_c
                o0, o1, o2 = cr_v * pr + half, half - (cg_u * pb + cg_v * pr), cb_u * pb + half
                offsets[0, 2 * j], offsets[0, 2 * j + 1] = o0, o0
                offsets[1, 2 * j], offsets[1, 2 * j + 1] = o1, o1
                offsets[2, 2 * j], offsets[2, 2 * j + 1] = o2, o2
        yr, row = y[r], out[r]
        red, green, blue = offsets[0], offsets[1], offsets[2]
        for x in range(yr.shape[0]):
            luma = (np.float32(yr[x]) - yo) * to_y
            row[3 * x] = np.uint8(min(max(luma + red[x], zero), top))
            row[3 * x + 1] = np.uint8(min(max(luma + green[x], zero), top))
            row[3 * x + 2] = np.uint8(min(max(luma + blue[x], zero), top))


@numba.njit(nogil=True, cache=True, fastmath=True)
def _box_mean(up, mid, down, out):  # pragma: no cover - numba
    """out = 3x3 mean of three rows (edge columns replicated)."""
    width = out.shape[0]
    vs = np.empty(width + 2, np.float32)
    for x in range(width):
        vs[x + 1] = up[x] + mid[x] + down[x]
    vs[0], vs[width + 1] = vs[1], vs[width]
    for x in range(width):
        out[x] = (vs[x] + vs[x + 1] + vs[x + 2]) * np.float32(1.0 / 9.0)


@numba.njit(nogil=True, cache=True, fastmath=True)
def _block_chroma(out, rows, kr, kg, kb, cr_v, cb_u, cs, co, maxv, sums, uo, vo):  # pragma: no cover - numba
    """The chroma of each 2x2 block (2x1, 1x2, 1x1 at odd edges) from the mean of its
    enhanced R'G'B' (out: (2, 3, W), `rows` of them valid)."""
    width = out.shape[2]
    for c in range(3):
        for x in range(width):
            sums[c, x] = out[0, c, x] + out[1, c, x] if rows == 2 else np.float32(2.0) * out[0, c, x]
    if width % 2:  # the last block has one column: count it twice, as if replicated
        for c in range(3):
            sums[c, width] = sums[c, width - 1]
    scale = np.float32(0.25)
    for j in range(uo.shape[0]):
        rs = (sums[0, 2 * j] + sums[0, 2 * j + 1]) * scale
        gs = (sums[1, 2 * j] + sums[1, 2 * j + 1]) * scale
        bs = (sums[2, 2 * j] + sums[2, 2 * j + 1]) * scale
        luma = kr * rs + kg * gs + kb * bs
        uo[j] = _code((bs - luma) / cb_u, cs, co, maxv)
        vo[j] = _code((rs - luma) / cr_v, cs, co, maxv)


@numba.njit(nogil=True, cache=True, fastmath=True)
def _yuv_rows(y, u, v, oy, ou, ov, maps, y0, y1, yw, coef, coef_out, maxv, full, last, below, share, black,  # noqa: E501
              tone_gain, rgb, r0, r1):
    """Rows r0..r1 (r0 even) of 4:2:0 planes through the curves. maps: (h, 3, sets, W)
    row-upsampled α, so that each channel's rows are contiguous. coef / coef_out: the
    input's and the output's colour coefficients (ColourDescription.coefficients). rgb:
    (H, W·3) uint8 to take the enhanced R'G'B' as 8-bit codes instead of oy, ou, ov (which
    are then not written), or (0, 0) for planes out.

    Each channel value is decoded as a decoder would deliver it: clipped to the R'G'B'
    cube and rounded to `maxv` levels (255 for 8-bit input, 1023 for 10-bit). The dark
    denoise and the curve see that value, with the RGB path's integer arithmetic, so both
    paths compute the same curves; only the curve's change is added to the unrounded
    value, so codes outside the cube pass through and α = 0 changes nothing. The tone
    (black, gain: (3,) per channel; empty: none) comes between the denoise and the curve."""
    height, width = y.shape
    yo, ys, co, cs = coef[0], coef[1], coef[2], coef[3]  # coef[4:7], the luma weights, are not needed here
    cr_v, cg_u, cg_v, cb_u = coef[7], coef[8], coef[9], coef[10]
    inv_ys, inv_cs = np.float32(1.0) / ys, np.float32(1.0) / cs
    cw = (width + 1) // 2
    pb, pr = np.empty(cw, np.float32), np.empty(cw, np.float32)
    off = np.empty((3, width), np.float32)  # each channel's chroma term, per luma column
    out = np.zeros((2, 3, width), np.float32)  # enhanced R'G'B' of the row pair
    sums = np.empty((3, width + 1), np.float32)
    luma = np.empty(width, np.float32)
    curved = np.empty(width, np.float32)
    mean = np.empty(width, np.float32)
    a = np.empty(width, np.float32)
    # For the dark denoise: decoded rows around the pair (a ring of 4, each row decoded once).
    ring = np.empty((4, 3, width), np.float32)
    ring_row = np.full(4, -1, np.int64)
    scratch = np.empty((3, width), np.float32)
    levels, inv_levels = maxv, np.float32(1.0) / maxv
    toned = black.shape[0] > 0
    to_rgb = rgb.shape[0] > 0
    fb = np.float32(below) * maxv / np.float32(255.0)  # the threshold in this depth's levels
    gain = np.float32(1.0) / fb if below else np.float32(0.0)
    oyo, oys, oco, ocs, okr, okg, okb, ocr_v, ocb_u = (coef_out[0], coef_out[1], coef_out[2], coef_out[3],
                                                       coef_out[4], coef_out[5], coef_out[6], coef_out[7], coef_out[10])
    for r in range(r0, r1, 2):
        rows = min(2, height - r)
        if below:
            for yy in range(r - 1, r + 3):
                row = min(max(yy, 0), height - 1)
                if ring_row[row % 4] != row:
                    _decoded_row(y, u, v, row, coef, levels, pb, pr, scratch, ring[row % 4])
                    ring_row[row % 4] = row
        _chroma_terms(u[r // 2], v[r // 2], co, inv_cs, cr_v, cg_u, cg_v, cb_u, pb, pr, off)
        for k in range(rows):
            yy = r + k
            yrow, orow, w = y[yy], oy[yy], yw[yy]
            for x in range(width):
                luma[x] = (np.float32(yrow[x]) - yo) * inv_ys
            la, lb = maps[y0[yy]], maps[y1[yy]]
            for c in range(3):
                o, s = off[c], out[k, c]
                if below:
                    _box_mean(ring[max(yy - 1, 0) % 4, c], ring[yy % 4, c], ring[min(yy + 1, height - 1) % 4, c],
                              mean)
                for x in range(width):
                    value = luma[x] + o[x]
                    t = np.floor(min(max(value, np.float32(0.0)), np.float32(1.0)) * levels + np.float32(0.5))
                    s[x] = value - t * inv_levels  # what the decoded level leaves out, added back unchanged
                    if below:  # towards the rounded 3x3 mean, fully at black, not from `below` up
                        m = np.floor(mean[x] + np.float32(0.5))
                        t = t + np.floor(max(fb - t, np.float32(0.0)) * gain * (m - t) + np.float32(0.5))
                    curved[x] = t * inv_levels
                if toned:
                    bc, gc = black[c], tone_gain[c]
                    for x in range(width):
                        curved[x] = min(max((curved[x] - bc) * gc, np.float32(0.0)), np.float32(1.0))
                _iterate(curved, a, la[c], lb[c], w, full, last)
                for x in range(width):
                    s[x] += curved[x]
            if to_rgb:
                dst = rgb[yy]
                for c in range(3):
                    s = out[k, c]
                    for x in range(width):
                        dst[3 * x + c] = np.uint8(min(max(s[x], np.float32(0.0)), np.float32(1.0)) * np.float32(255.0)
                                                  + np.float32(0.5))
                continue
            for x in range(width):
                orow[x] = _code(okr * out[k, 0, x] + okg * out[k, 1, x] + okb * out[k, 2, x], oys, oyo, maxv)
        if not to_rgb:
            _block_chroma(out, rows, okr, okg, okb, ocr_v, ocb_u, ocs, oco, maxv, sums, ou[r // 2], ov[r // 2])


# --- the applier ------------------------------------------------------------------------

_NO_RGB = np.empty((0, 0), np.uint8)  # _yuv_rows' rgb when planes are written


def row_bands(height: int, parts: int, align: int = 1) -> list[tuple[int, int]]:
    """Split range(height) into at most `parts` contiguous bands of near-equal size whose
    inner edges are multiples of `align` (2 for 4:2:0 row pairs)."""
    parts = max(1, min(parts, height // align or 1))
    edges = (np.linspace(0, height, parts + 1) / align).round().astype(int) * align
    edges[-1] = height
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]) if b > a]


def denoise_share(strength: float) -> float:
    """The dark denoise's share at a strength: the strength up to 1, in 1/256 steps, so that
    the denoise's arithmetic stays exact in float32 (realtime.model.denoise_dark) on the
    CPU and in the GPU program alike."""
    return float(np.floor(np.clip(strength, 0.0, 1.0) * 256 + 0.5) / 256)


@dataclass(frozen=True)
class PassState:
    """What one frame's pass needs besides the pixels (made by CurveApplier.prepare)."""

    maps: np.ndarray  # row-upsampled α: (h, sets, W·3) for RGB, (h, 3, sets, W) for planes
    rows: Taps  # vertical taps into maps
    schedule: Schedule
    denoise: float = 1.0  # share of the dark denoise: denoise_share(strength) (strength 0: nothing changes)
    black: np.ndarray = field(default_factory=lambda: np.empty(0, np.float32))  # (3,) tone, or empty for none
    gain: np.ndarray = field(default_factory=lambda: np.empty(0, np.float32))


class CurveApplier:
    """Applies low-resolution curve maps to full-resolution frames.

    Call :meth:`prepare` once per frame (cheap: touches only low-resolution data), then
    :meth:`apply_band` / :meth:`apply_planes_band` for row bands, possibly from several
    threads at once.
    """

    def __init__(self, iterations: int, shared: bool, grid: str = "half_pixel", denoise_below: int = 0) -> None:
        self.iterations = iterations
        self.shared = shared
        self.grid = grid
        self.denoise_below = denoise_below

    def prepare(self, curves: "Curves | np.ndarray", height: int, width: int, strength: float = 1.0,
                planar: bool = False) -> PassState:
        """curves: the frame's Curves (or bare α maps (h, w, C) float32 in [-1, 1]) -> the
        state for the band calls."""
        curves = curves if isinstance(curves, Curves) else Curves(curves)
        black, gain = curves.tone_at(strength)
        if not (black.any() or (gain != 1).any()):  # no tone: the kernels skip it
            black = gain = np.empty(0, np.float32)
        black, gain = np.ascontiguousarray(black, np.float32), np.ascontiguousarray(gain, np.float32)
        maps = np.clip(np.ascontiguousarray(curves.maps, dtype=np.float32), -1, 1)
        h, w, c = maps.shape
        rows = np.empty((h, width, c), np.float32)
        tx = linear_taps(w, width, self.grid)
        _upsample_rows(maps, tx.i0, tx.i1, tx.w, rows)
        sets = rows.reshape(h, width, c // 3, 3)  # channel 3i + k: set i (iteration i), colour k
        order = (0, 3, 2, 1) if planar else (0, 2, 1, 3)  # (h, 3, sets, W) or (h, sets, W, 3)
        rows = np.ascontiguousarray(sets.transpose(order)).reshape((h, 3, c // 3, width) if planar else (h, c // 3, -1))
        return PassState(rows, linear_taps(h, height, self.grid), Schedule.of(self.iterations, strength),
                         denoise_share(strength), black, gain)

    def apply_band(self, frame: np.ndarray, out: np.ndarray, state: PassState, r0: int, r1: int) -> None:
        """Rows r0..r1 of out from frame (H, W, 3, uint8 or uint16, C-contiguous rows)."""
        t, s = state.rows, state.schedule
        maxv = np.iinfo(frame.dtype).max
        fb = self.denoise_below * maxv // 255 if state.denoise > 0 else 0  # 8-bit levels to this depth's
        scale = 256 / fb * state.denoise if fb else 0.0
        black, gain = (np.tile(state.black, frame.shape[1]), np.tile(state.gain, frame.shape[1])) \
            if state.black.size else (state.black, state.gain)
        _rgb_rows(frame, out, state.maps, t.i0, t.i1, t.w, s.full, np.float32(s.last), np.float32(fb),
                  np.float32(scale), np.float32(maxv), np.float32(1 / maxv), black, gain, r0, r1)

    def apply_planes_band(self, planes, out, state: PassState, r0: int, r1: int) -> None:
        """Rows r0..r1 (r0 even) of `out` from `planes` (YUVPlanes of one size and depth).
        `out`: YUVPlanes, possibly of another colour description (the result is converted
        into it), or (H, W, 3) uint8 for the enhanced R'G'B' as a player would show the
        planes, without encoding them to planes first."""
        t, s = state.rows, state.schedule
        coef = planes.colour.coefficients(planes.bits, planes.scale)
        if isinstance(out, np.ndarray):
            rgb, coef_out, target = out.reshape(out.shape[0], -1), coef, planes
        else:
            rgb, coef_out, target = _NO_RGB, out.colour.coefficients(out.bits), out
        maxv = np.float32((1 << planes.bits) - 1)
        _yuv_rows(planes.y, planes.u, planes.v, target.y, target.u, target.v, state.maps, t.i0, t.i1, t.w, coef,
                  coef_out, maxv, s.full, np.float32(s.last), self.denoise_below if state.denoise > 0 else 0,
                  np.float32(state.denoise), state.black, state.gain, rgb, r0, r1)

    def apply(self, frame: np.ndarray, curves: "Curves | np.ndarray", out: np.ndarray | None = None,
              strength: float = 1.0) -> np.ndarray:
        """Single-threaded convenience: the whole RGB frame at once."""
        height, width = frame.shape[:2]
        out = np.empty_like(frame) if out is None else out
        self.apply_band(frame, out, self.prepare(curves, height, width, strength), 0, height)
        return out



def planes_to_rgb(planes) -> np.ndarray:
    """YUVPlanes (any depth, range, matrix and scale) -> (H, W, 3) uint8 R'G'B', each 2x2
    block's chroma for its pixels, as a player shows them; what the curves see as their
    input (about 1 ms per 720p frame on one core of this project's machine, a sixteenth of
    the NumPy reference colour.yuv_to_rgb)."""
    out = np.empty((planes.height, planes.width, 3), np.uint8)
    _rgb_of_planes(planes.y, planes.u, planes.v, planes.colour.coefficients(planes.bits, planes.scale),
                   out.reshape(planes.height, -1))
    return out
