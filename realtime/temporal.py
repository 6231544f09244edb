"""Video across time: temporal denoising before the curves, and curves that do not pump.

A dark video is the same scene 30 times a second under fresh sensor noise, which the
curves amplify five- to tenfold. :class:`TemporalDenoiser` averages it away with a
recursive filter that stops averaging wherever the picture moves:

    acc ← acc + k·(x − acc),  k = k_min where still, 1 where moving,

with motion told from noise by the 3x3 mean of the luma difference (x − acc), measured
against the noise level σ the stream has at that brightness (:class:`NoiseEstimate`,
re-estimated every frame from a subsample). Chroma follows its 2x2 luma block's k.
Where the picture moves there is nothing to average over time, so there (in planes) a pixel
is taken towards its 5x5 mean instead, unless that mean is beyond its noise (an edge).
The average is kept in 1/16 of a code, so the curves see the extra precision it has.
The planes the denoiser returns have their colour smoothed over 3x3 chroma samples
(:func:`smooth_chroma`): where the picture moves, colour speckle is what the average cannot
remove.

:class:`CurveSmoother` averages the curve maps over time (taking scene cuts and changes of
light at once) so that exposure does not pump. Once frames are averaged, the noise a
sensor clips at black is left as a grey floor; :func:`black_at_floor` moves the black point
onto it, and where the curves would still lift it, :func:`toe` takes the luma near it down
(planes; the floor as the 3x3 means show it, which is what the curves' dark denoise sees).
:class:`VideoEnhancer` runs all of it around an Enhancer (RGB frames averaged as planes); it
is what the pipeline uses for video files and live sources, reset at the start of each stream.
"""
from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numba
import numpy as np

from .checkpoint import TONE_LUMA, TONE_MAX_GAIN
from .curves import Curves, curve_float64, row_bands
from .engine import Enhancer, as_rgb_frame, check_out
from .frame import Picture, YUVPlanes, i420_picture

#: The average is kept in codes × SCALE (4 fraction bits).
SCALE = 16
#: σ is tracked per luma level, in this many bins over the code range.
LEVEL_BINS = 16
#: Normalised motion (|3x3 mean difference| in σ of that mean) below which a pixel is
#: still (k = k_min) and above which it is moving (k = 1), linear in between.
STILL, MOVING = 1.0, 6.0
#: k_min at full strength: the average then spans about (2 − k)/k ≈ 23 frames (1/8, 15 frames,
#: left a third more temporal noise on the dark dash-cam once its blacks were deep; docs/MODEL.md).
K_FLOOR = 1 / 12
#: How far a moving pixel is taken towards its 5x5 mean at full strength (planes only).
SPATIAL = 1.0


# --- kernels ------------------------------------------------------------------------------


@numba.njit(nogil=True, cache=True, fastmath=True)
def _aligned_row(x, acc, row, dy, dx, channels, scale, prev, diff):  # pragma: no cover - numba
    """prev = the previous average under frame row `row` when the picture moved by
    (dy, dx) pixels since (acc[row − dy] shifted by dx pixels of `channels` values; where
    the average has no such pixel, the frame's own value x·scale); diff = x·scale − prev."""
    xr, n = x[row], prev.shape[0]
    src = row - dy
    lo, hi = 0, 0
    if src >= 0 and src < acc.shape[0]:
        off = dx * channels
        lo, hi = max(off, 0), max(min(n + off, n), max(off, 0))
        # Slices, so that every index below is a non-negative loop counter (a signed index
        # makes Numba check for wrap-around, which stops the loop from vectorising).
        a_in, x_in, p_out, d_out = acc[src][lo - off: hi - off], xr[lo:hi], prev[lo:hi], diff[lo:hi]
        for i in range(hi - lo):
            a = np.float32(a_in[i])
            p_out[i] = a
            d_out[i] = np.float32(x_in[i]) * scale - a
    for i in range(lo):
        prev[i] = np.float32(xr[i]) * scale
        diff[i] = np.float32(0.0)
    tail_x, tail_p, tail_d = xr[hi:], prev[hi:], diff[hi:]
    for i in range(n - hi):
        tail_p[i] = np.float32(tail_x[i]) * scale
        tail_d[i] = np.float32(0.0)


@numba.njit(nogil=True, cache=True, fastmath=True)
def _motion_k(up, mid, down, level_row, inv_sigma, shift, k_min, gain, k, vs, isig):  # pragma: no cover - numba
    """k per pixel from the 3x3 mean of three difference rows: k_min where it stays within
    STILL σ, 1 beyond MOVING σ. inv_sigma: 1/σ of that mean per level bin (scaled codes),
    indexed by level_row >> shift; isig gets it per pixel."""
    width = k.shape[0]
    for i in range(width):
        vs[i + 1] = up[i] + mid[i] + down[i]
    vs[0], vs[width + 1] = vs[1], vs[width]
    for i in range(width):
        isig[i] = inv_sigma[np.uint32(level_row[i]) >> shift]
    for i in range(width):
        z = abs(vs[i] + vs[i + 1] + vs[i + 2]) * np.float32(1.0 / 9.0) * isig[i]
        k[i] = min(max(k_min + (z - np.float32(STILL)) * gain, k_min), np.float32(1.0))


@numba.njit(nogil=True, cache=True, fastmath=True)
def _blend(prev, diff, new, k, maxv):  # pragma: no cover - numba
    """new = prev + k·diff, rounded: one row's new average."""
    for i in range(new.shape[0]):
        new[i] = np.uint16(min(max(prev[i] + k[i] * diff[i] + np.float32(0.5), np.float32(0.0)), maxv))


@numba.njit(nogil=True, cache=True, fastmath=True)
def _column_sums(y, row, cols, sign):  # pragma: no cover - numba
    """cols[i + 2] += sign · y[row, i] (row clamped to the plane): the vertical window moves on."""
    src = y[min(max(row, 0), y.shape[0] - 1)]
    window = cols[2: y.shape[1] + 2]
    for i in range(y.shape[1]):
        window[i] += sign * np.float32(src[i])


@numba.njit(nogil=True, cache=True, fastmath=True)
def _blend_moving(prev, diff, cols, isig, new, k, k_min, spatial, maxv):  # pragma: no cover - numba
    """new = prev + k·(target − prev): the frame's value taken towards its 5x5 mean (from the
    vertical 5-sums in cols, in codes) as far as the pixel moves (k above k_min) and as long
    as the mean is within noise of it (not an edge; isig: 1/σ of a pixel, scaled codes)."""
    width = new.shape[0]
    cols[0], cols[1], cols[width + 2], cols[width + 3] = cols[2], cols[2], cols[width + 1], cols[width + 1]
    unit = np.float32(SCALE / 25.0)
    for i in range(width):
        box = (cols[i] + cols[i + 1] + cols[i + 2] + cols[i + 3] + cols[i + 4]) * unit
        x = prev[i] + diff[i]
        gate = min(max(np.float32(1.5) - np.float32(0.5) * abs(box - x) * isig[i], np.float32(0.0)), np.float32(1.0))
        target = x + spatial * (k[i] - k_min) * gate * (box - x)
        new[i] = np.uint16(min(max(prev[i] + k[i] * (target - prev[i]) + np.float32(0.5), np.float32(0.0)), maxv))


@numba.njit(nogil=True, cache=True, fastmath=True)
def _denoise_planes(y, u, v, ay, au, av, ny, nu, nv, inv_sigma, shift, k_min, gain, maxv, dy, dx, spatial, r0, r1):  # noqa
    """Row pairs r0..r1 of 4:2:0 planes: the new averages (ny, nu, nv) from the frame
    (y, u, v) and the previous averages (ay, au, av) moved by (dy, dx) luma pixels; all
    averages in scaled codes. Moving luma is also taken towards its 5x5 mean (see
    _blend_moving), as far as `spatial` at full motion (0: not at all)."""
    height, width = y.shape
    scale = np.float32(SCALE)
    prev = np.empty((4, width), np.float32)  # the aligned previous average of rows around the pair
    diff = np.empty((4, width), np.float32)  # and the frame's difference to it
    ring_row = np.full(4, -1, np.int64)
    k = np.empty((2, width), np.float32)
    vs, isig = np.empty(width + 2, np.float32), np.empty(width, np.float32)
    cols = np.zeros(width + 4, np.float32)  # vertical 5-sums of the frame around the current row
    for row in range(r0 - 2, r0 + 2):
        _column_sums(y, row, cols, np.float32(1))
    per_motion = spatial / (np.float32(1.0) - k_min)  # (k − k_min)/(1 − k_min): how far the pixel moves
    cw = u.shape[1]
    kc = np.empty(cw, np.float32)
    prev_c, diff_c = np.empty(cw, np.float32), np.empty(cw, np.float32)
    cdy, cdx = (dy + 1) // 2 if dy > 0 else -((-dy + 1) // 2), (dx + 1) // 2 if dx > 0 else -((-dx + 1) // 2)
    for r in range(r0, r1, 2):
        for yy in range(r - 1, r + 3):
            row = min(max(yy, 0), height - 1)
            slot = row % 4
            if ring_row[slot] != row:
                _aligned_row(y, ay, row, dy, dx, 1, scale, prev[slot], diff[slot])
                ring_row[slot] = row
        rows = min(2, height - r)
        for j in range(rows):
            yy = r + j
            _motion_k(diff[max(yy - 1, 0) % 4], diff[yy % 4], diff[min(yy + 1, height - 1) % 4], prev[yy % 4],
                      inv_sigma, shift, k_min, gain, k[j], vs, isig)
            _column_sums(y, yy + 2, cols, np.float32(1))
            if yy > r0:
                _column_sums(y, yy - 3, cols, np.float32(-1))
            isig *= np.float32(1.0 / 3.0)  # σ of a pixel is about 3σ of the 3x3 mean difference
            _blend_moving(prev[yy % 4], diff[yy % 4], cols, isig, ny[yy], k[j], k_min, per_motion, maxv)
        if rows == 1:
            k[1] = k[0]
        for c in range(width // 2):  # chroma moves with its block: the largest k of it
            kc[c] = max(max(k[0, 2 * c], k[0, 2 * c + 1]), max(k[1, 2 * c], k[1, 2 * c + 1]))
        if width % 2:
            kc[width // 2] = max(k[0, width - 1], k[1, width - 1])
        _aligned_row(u, au, r // 2, cdy, cdx, 1, scale, prev_c, diff_c)
        _blend(prev_c, diff_c, nu[r // 2], kc, maxv)
        _aligned_row(v, av, r // 2, cdy, cdx, 1, scale, prev_c, diff_c)
        _blend(prev_c, diff_c, nv[r // 2], kc, maxv)


@numba.njit(nogil=True, cache=True, fastmath=True)
def _denoise_rgb(x, acc, new, out, inv_sigma, shift, k_min, gain, dy, dx, r0, r1):  # pragma: no cover - numba
    """Rows r0..r1 of an RGB frame: x (H, W·3) uint8, the averages acc and new (H, W·3)
    in scaled codes, acc moved by (dy, dx) pixels; one k per pixel, the largest of its
    channels' (a change of colour at the same brightness is motion too: a mean over the
    channels would cancel it and leave a trail); out (H, W·3) = the new average rounded to
    uint8."""
    height, n = x.shape
    width = n // 3
    scale, third = np.float32(SCALE), np.float32(1.0 / 3.0)
    prev = np.empty((3, n), np.float32)
    diff = np.empty((3, n), np.float32)
    ring = np.empty((3, 3, width), np.float32)  # per-pixel, per-channel difference of rows r-1, r, r+1
    ring_row = np.full(3, -1, np.int64)
    k = np.empty(width, np.float32)
    kc = np.empty(width, np.float32)
    k3 = np.empty(n, np.float32)
    vs, isig = np.empty(width + 2, np.float32), np.empty(width, np.float32)
    level = np.empty(width, np.int32)
    for r in range(r0, r1):
        for yy in range(r - 1, r + 2):
            row = min(max(yy, 0), height - 1)
            slot = row % 3
            if ring_row[slot] != row:
                _aligned_row(x, acc, row, dy, dx, 3, scale, prev[slot], diff[slot])
                d, dst = diff[slot], ring[slot]
                for c in range(3):
                    for i in range(width):
                        dst[c, i] = d[3 * i + c]
                ring_row[slot] = row
        p = prev[r % 3]
        for i in range(width):
            level[i] = np.int32((p[3 * i] + p[3 * i + 1] + p[3 * i + 2]) * third)
        up, mid, down = ring[max(r - 1, 0) % 3], ring[r % 3], ring[min(r + 1, height - 1) % 3]
        _motion_k(up[0], mid[0], down[0], level, inv_sigma, shift, k_min, gain, k, vs, isig)
        for c in range(1, 3):
            _motion_k(up[c], mid[c], down[c], level, inv_sigma, shift, k_min, gain, kc, vs, isig)
            for i in range(width):
                k[i] = max(k[i], kc[i])
        for i in range(width):
            k3[3 * i] = k[i]
            k3[3 * i + 1] = k[i]
            k3[3 * i + 2] = k[i]
        d, nr, orow = diff[r % 3], new[r], out[r]
        for j in range(n):
            value = p[j] + k3[j] * d[j]
            nr[j] = np.uint16(min(max(value + np.float32(0.5), np.float32(0.0)), np.float32(255 * SCALE)))
            orow[j] = np.uint8(min(max(value * np.float32(1.0 / SCALE) + np.float32(0.5), np.float32(0.0)),
                                   np.float32(255.0)))


@numba.njit(nogil=True, cache=True, fastmath=True)
def _profiles(plane, rows, values):  # pragma: no cover - numba
    """rows[r] = the mean of row r of a (H, N) plane; values[i] = the mean of column i."""
    values[:] = 0.0
    for r in range(rows.shape[0]):
        pr = plane[r]
        total = np.float32(0.0)
        for i in range(pr.shape[0]):
            value = np.float32(pr[i])
            total += value
            values[i] += value
        rows[r] = total / pr.shape[0]
    values /= rows.shape[0]


@numba.njit(nogil=True, cache=True)
def _best_shift(previous, current, max_shift):  # pragma: no cover - numba
    """The shift s (|s| <= max_shift) minimising the mean |current[i] − previous[i − s]| over
    the overlap, profiles made zero-mean; returns (s, its cost, the cost of s = 0)."""
    n = current.shape[0]
    a = previous - previous.mean()
    b = current - current.mean()
    best, best_cost, zero_cost = 0, np.inf, np.inf
    for s in range(-max_shift, max_shift + 1):
        lo, hi = max(s, 0), min(n, n + s)
        if hi - lo < n // 2:
            continue
        cost = 0.0
        for i in range(lo, hi):
            cost += abs(b[i] - a[i - s])
        cost /= hi - lo
        if s == 0:
            zero_cost = cost
        if cost < best_cost:
            best, best_cost = s, cost
    return best, best_cost, zero_cost


@numba.njit(nogil=True, cache=True)
def _noise_histograms(x, acc, scale, step, shift, dy, dx, channels, temporal, spatial):  # pragma: no cover
    """For a grid of pixels every `step` (level bin from acc, in quarters of a code, capped):
    temporal[bin, q] counts q = |x·scale − acc| (acc moved by (dy, dx) values), spatial[bin,
    q] counts q = |4x − the 4 neighbours| (a Laplacian). x, acc: (H, W) or (H, W·3) views;
    neighbours are `channels` values apart along a row."""
    cap = temporal.shape[1] - 1
    height, n = x.shape
    for r in range(max(1, dy), min(height - 1, height + dy), step):
        xr, ar, up, down = x[r], acc[r - dy], x[r - 1], x[r + 1]
        for i in range(max(channels, dx), min(n - channels, n + dx), step):
            a = np.int64(ar[i - dx])
            level = a >> shift
            centre = np.int64(xr[i])
            q = min(abs(centre * scale - a) * 4 // scale, cap)
            temporal[level, q] += 1
            lap = abs(4 * centre - np.int64(up[i]) - np.int64(down[i]) - np.int64(xr[i - channels])
                      - np.int64(xr[i + channels]))
            spatial[level, min(lap, cap)] += 1


def _quantile(hist: np.ndarray, share: float) -> np.ndarray:
    """Per row of a histogram of integer values, the value below which `share` of its
    samples lie, interpolated within the bin that holds it (a value v counts as spread
    over [v − 0.5, v + 0.5), so that a histogram of small integers still gives a smooth
    estimate); NaN for rows with too few samples."""
    counts = hist.sum(axis=1)
    cumulative = np.cumsum(hist, axis=1)
    target = counts * share
    q = (cumulative >= np.maximum(target, 1)[:, None]).argmax(axis=1)
    rows = np.arange(hist.shape[0])
    below = np.where(q > 0, cumulative[rows, np.maximum(q - 1, 0)], 0)
    inside = (target - below) / np.maximum(hist[rows, q], 1)
    return np.where(counts >= 64, np.maximum(q - 0.5 + inside, 0.0), np.nan)


class NoiseEstimate:
    """σ of the stream's noise per luma level bin, in codes; an exponential average over
    frames. Two estimates from a subsample of pixels, each from the 25th percentile of its
    absolute values (motion and texture sit in the upper part): the frame-to-average
    difference, which motion inflates, and a Laplacian, which texture inflates; the
    smaller of the two is taken."""

    def __init__(self, bits: int, smoothing: float = 0.2) -> None:
        self.bits = bits
        self.shift = bits + 4 - 4  # scaled code (bits + 4 bits) -> one of 16 bins
        self.smoothing = smoothing
        self.sigma: np.ndarray | None = None  # (LEVEL_BINS,) codes

    def update(self, x: np.ndarray, acc: np.ndarray, k_min: float, dy: int = 0, dx: int = 0,
               channels: int = 1) -> None:
        """x: the frame's luma (or RGB as (H, W·3), channels=3); acc: the running average
        (scaled), moved by (dy, dx) values since."""
        temporal = np.zeros((LEVEL_BINS, 1024), np.int64)
        spatial = np.zeros((LEVEL_BINS, 1024), np.int64)
        step = max(1, int(np.sqrt(x.size / 40_000)))  # ~40k samples per frame
        _noise_histograms(x, acc, SCALE, step, self.shift, dy, dx, channels, temporal, spatial)
        # |N(0, σ)| has its 25th percentile at 0.3186 σ. x − acc of still pixels has the
        # variance σ² (1 + k/(2 − k)) of noise plus average; the Laplacian 4x − its four
        # neighbours, 20 σ² (and its histogram counts whole codes, i.e. 4 quarters each).
        from_time = _quantile(temporal, 0.25) / 4 / 0.3186 / np.sqrt(1 + k_min / (2 - k_min))
        from_space = _quantile(spatial, 0.25) / 0.3186 / np.sqrt(20)
        sigma = np.fmin(from_time, from_space)
        if np.all(np.isnan(sigma)):
            return
        valid = ~np.isnan(sigma)
        sigma = np.interp(np.arange(LEVEL_BINS), np.flatnonzero(valid), sigma[valid])  # fill sparse bins
        floor = 0.25 * (1 << (self.bits - 8))  # quantisation alone: never trust less than a quarter code
        sigma = np.maximum(sigma, floor)
        self.sigma = sigma if self.sigma is None else self.sigma + self.smoothing * (sigma - self.sigma)

    def dark_sigma8(self) -> float:
        """σ in the darkest quarter of levels, in 8-bit codes (what decides `auto`)."""
        if self.sigma is None:
            return 0.0
        return float(np.median(self.sigma[: LEVEL_BINS // 4])) / (1 << (self.bits - 8))


class GlobalMotion:
    """How far the whole picture moved since the previous frame, in whole pixels: the shift
    that best matches the row means and the column means to the previous frame's (a
    stabiliser's projections). A shift is taken only when it matches clearly better than
    none (`accept`), so moving objects and flat scenes give (0, 0)."""

    def __init__(self, accept: float = 0.8) -> None:
        self.accept = accept
        self._profiles: tuple | None = None

    def reset(self) -> None:
        self._profiles = None

    def __call__(self, plane: np.ndarray, channels: int = 1) -> tuple[int, int]:
        """plane: (H, W·channels) luma or RGB; returns (dy, dx)."""
        rows = np.empty(plane.shape[0], np.float32)
        values = np.empty(plane.shape[1], np.float32)
        _profiles(plane, rows, values)
        cols = values.reshape(-1, channels).mean(axis=1)
        previous, self._profiles = self._profiles, (rows, cols)
        if previous is None or previous[0].shape != rows.shape or previous[1].shape != cols.shape:
            return 0, 0
        limit = max(4, min(plane.shape[0], cols.shape[0]) // 24)  # 45 px at 1080p
        dy, cost_y, still_y = _best_shift(previous[0], rows, limit)
        dx, cost_x, still_x = _best_shift(previous[1], cols, limit)
        return (dy if cost_y < self.accept * still_y else 0), (dx if cost_x < self.accept * still_x else 0)


# --- the denoiser -----------------------------------------------------------------------------


def auto_strength(dark_sigma8: float) -> float:
    """Denoise strength for `auto`: none on clean video (σ below 0.3 of an 8-bit code in the
    shadows, what compression leaves), full from 1 code up (the curves multiply shadow
    noise by 10 or more), linear in between."""
    return float(np.clip((dark_sigma8 - 0.3) / 0.7, 0.0, 1.0))


def smooth_chroma(planes: YUVPlanes, share: float) -> YUVPlanes:
    """The planes with their colour averaged over its neighbours, their brightness untouched:
    `share` (0..1) of the way to the 3x3 mean of the chroma planes (6x6 pixels).

    Why: where the picture moves the temporal average falls back to the frame itself, and
    in the dark its colour noise is the loudest part of what is left (purple and green
    speckle, colourfulness 1.3-1.5 times the clean clip's); the eye resolves colour far
    more coarsely than brightness, so cameras filter chroma hard and luma gently. The
    average itself is not filtered (the planes returned are new), so this never
    accumulates. (Planes only: VideoEnhancer averages RGB frames as planes too,
    frame.i420_picture. On RGB the same filter costs about 4 ms per 720p frame on this
    project's 2-core machine even in OpenCV, against 0.5 ms for 1080p planes, and took
    live 720p30 p99 over 30 ms; docs/MODEL.md.)"""
    if share <= 0:
        return planes
    u, v = (cv2.blur(p, (3, 3), borderType=cv2.BORDER_REPLICATE) for p in (planes.u, planes.v))
    if share < 1:
        u, v = (cv2.addWeighted(p, 1 - share, q, share, 0) for p, q in ((planes.u, u), (planes.v, v)))
    return YUVPlanes(planes.y, u, v, planes.colour, planes.bits, owner=None, scale=planes.scale)


class TemporalDenoiser:
    """Motion-adaptive recursive averaging of a stream's frames (see the module docstring).

    strength: 0..1 (0 = off), or None for automatic (from the noise estimate). One frame in,
    the denoised frame out: planes in scaled codes (YUVPlanes with scale = SCALE) for
    planes, uint8 RGB for RGB. Returned planes are the running average itself: valid until
    the next call (copy them to keep them). `reset()` starts over (a new stream, a cut, a
    seek).
    """

    def __init__(self, strength: float | None = None, threads: int = 1) -> None:
        if strength is not None and not 0.0 <= strength <= 1.0:
            raise ValueError(f"denoise strength must be in [0, 1], got {strength}")
        self.strength = strength
        self.threads = threads
        self._pool = ThreadPoolExecutor(threads - 1, thread_name_prefix="denoise") if threads > 1 else None
        self.reset()

    def reset(self) -> None:
        self._acc: tuple | None = None  # the running average
        self._spare: tuple | None = None  # the buffers the next average is written to
        self._key = None
        self.noise: NoiseEstimate | None = None
        self.motion = GlobalMotion()
        self.shift = (0, 0)  # the last frame's global motion (dy, dx) in pixels

    @property
    def found_clean(self) -> bool:
        """Whether the stream is known to need no averaging (off, or `auto` found no noise);
        not yet on its first frame."""
        return self.strength == 0.0 or (self.strength is None and self.noise is not None
                                        and self.noise.sigma is not None and self.current_strength == 0.0)

    @property
    def current_strength(self) -> float:
        if self.strength is not None:
            return self.strength
        return auto_strength(self.noise.dark_sigma8()) if self.noise else 0.0

    def _parameters(self) -> tuple[np.ndarray, float, float]:
        """(1/σ of the 3x3 mean difference per level bin, in scaled codes; k_min; gain)."""
        k_min = 1.0 - self.current_strength * (1.0 - K_FLOOR)
        # The mean of 9 differences of independent noise has σ/3 (times the average's share).
        sigma = np.asarray(self.noise.sigma, np.float32) * SCALE / 3 * np.float32(np.sqrt(1 + k_min / (2 - k_min)))
        return (1 / np.maximum(sigma, np.float32(1e-3))).astype(np.float32), np.float32(k_min), \
            np.float32((1 - k_min) / (MOVING - STILL))

    def __call__(self, picture: Picture) -> Picture:
        if self.strength == 0.0:
            return picture
        planar = isinstance(picture, YUVPlanes)
        key = (planar, picture.shape, getattr(picture, "bits", 8), getattr(picture, "colour", None))
        if key != self._key:  # a new stream, or one that changed its format: start over
            self.reset()
            self._key = key
        if self._acc is None:
            return self._follow(picture)
        bits = picture.bits if planar else 8
        if self.noise is None:
            self.noise = NoiseEstimate(bits)
        k_min_now = 1.0 - self.current_strength * (1.0 - K_FLOOR)
        channels = 1 if planar else 3
        luma_x, luma_acc = (picture.y, self._acc[0]) if planar else (picture.reshape(picture.shape[0], -1),
                                                                    self._acc[0].reshape(picture.shape[0], -1))
        self.shift = self.motion(luma_x, channels)
        self.noise.update(luma_x, luma_acc, k_min_now, self.shift[0], self.shift[1] * channels, channels)
        if self.noise.sigma is None or self.current_strength == 0.0:
            return self._follow(picture)  # nothing to average (yet): the average is the frame
        sigma, k_min, gain = self._parameters()
        return self._denoise(picture, sigma, k_min, gain)

    def _follow(self, picture: Picture) -> Picture:
        """Take the frame itself as the average (kept for the noise estimate); return it."""
        sources = (picture.y, picture.u, picture.v) if isinstance(picture, YUVPlanes) else (picture,)
        if self._acc is None:  # the first frame: its profiles are the reference for the next one's motion
            self.motion(*((picture.y, 1) if isinstance(picture, YUVPlanes) else (picture.reshape(picture.shape[0], -1), 3)))
        if self._spare is None:
            self._spare = tuple(np.empty(p.shape, np.uint16) for p in sources)
        for dst, src in zip(self._spare, sources):
            np.multiply(src, np.uint16(SCALE), out=dst, dtype=np.uint16)
        self._acc, self._spare = self._spare, self._acc if self._acc is not None else \
            tuple(np.empty_like(p) for p in self._spare)
        return picture

    def _planes(self, acc: tuple, like: YUVPlanes) -> YUVPlanes:
        return YUVPlanes(*acc, like.colour, like.bits, owner=None, scale=SCALE)

    def _denoise(self, picture: Picture, sigma: np.ndarray, k_min: np.float32, gain: np.float32) -> Picture:
        acc, new = self._acc, self._spare
        if isinstance(picture, YUVPlanes):
            maxv = np.float32(((1 << picture.bits) - 1) * SCALE)
            shift = self.noise.shift
            args = (picture.y, picture.u, picture.v, *acc, *new, sigma, shift, k_min, gain, maxv, *self.shift,
                    np.float32(SPATIAL * self.current_strength))
            self._run(lambda a, b: _denoise_planes(*args, a, b), picture.height, 2)
            out = smooth_chroma(self._planes(new, picture), self.current_strength)
        else:
            out = np.empty_like(picture)
            flat = lambda a: a.reshape(a.shape[0], -1)  # noqa: E731 - rows of W·3 values
            self._run(lambda a, b: _denoise_rgb(flat(picture), flat(acc[0]), flat(new[0]), flat(out), sigma,
                                                self.noise.shift, k_min, gain, *self.shift, a, b), picture.shape[0], 1)
        self._acc, self._spare = new, acc
        return out

    def _run(self, band, height: int, align: int) -> None:
        parts = self.threads if self._pool is not None else 1
        bands = row_bands(height, parts, align)
        jobs = [self._pool.submit(band, a, b) for a, b in bands[1:]] if len(bands) > 1 else []
        band(*bands[0])
        for job in jobs:
            job.result()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)


# --- curves over time ----------------------------------------------------------------------------


@dataclass
class CurveSmoother:
    """An exponential average of the curves (maps and tone) over frames, so that exposure does not pump.

    follow: the share of a new estimate taken each frame (0.25: 90 % of a change within 8
    frames, 0.27 s at 30 fps). Two changes are taken at once: a scene cut (the small copy
    changes by more than `cut`, mean absolute difference in [0, 1]) and a change of light
    (its mean changes by more than `light`, relative: a lamp switched on), because the
    new maps are right at once and averaging them in would show as a slow drift.
    """

    follow: float = 0.25
    cut: float = 0.08
    light: float = 0.25
    curves: Curves | None = None
    thumbnail: np.ndarray | None = None
    cuts: int = 0
    light_changes: int = 0

    def reset(self) -> None:
        self.curves = self.thumbnail = None

    def changes(self, small: np.ndarray) -> tuple[bool, bool]:
        """(cut, light changed): how `small` (the net's input) differs from the last one; remembers it."""
        last, self.thumbnail = self.thumbnail, small
        if last is None or last.shape != small.shape:
            return True, False
        cut = float(np.abs(small - last).mean()) > self.cut
        before, now = float(last.mean()), float(small.mean())
        light = not cut and abs(now - before) > self.light * max(before, 1 / 255)
        self.cuts += int(cut)
        self.light_changes += int(light)
        return cut, light

    def __call__(self, curves: Curves, at_once: bool) -> Curves:
        """The average of the curves (maps and tone) so far, `curves` taken in."""
        if at_once or self.curves is None or self.curves.maps.shape != curves.maps.shape:
            self.curves = curves
        else:
            k, last = self.follow, self.curves
            self.curves = Curves(last.maps + k * (curves.maps - last.maps), last.black + k * (curves.black - last.black),
                                 last.gain + k * (curves.gain - last.gain))
        return self.curves


# --- the black point of an averaged stream --------------------------------------------------------------


def subsample_stride(height: int, width: int) -> int:
    """The stride in both directions that leaves about 10,000 of a picture's pixels."""
    return max(1, math.isqrt(height * width // 10_000))


def picture_floor(picture: Picture, share: float = 0.01, box: int = 1) -> float:
    """Where a picture's black sits: the luma below which `share` of a subsample of its
    pixels lies (about 10,000 of them, whatever the size: 0.08 ms per 1080p frame, 0.27 with
    box=3), in [0, 1] of the full range
    (0 = black, 1 = white); with box > 1, of the mean of each sample's box x box pixels
    (the floor the curves see: their dark denoise takes each dark pixel to its 3x3 mean,
    so noise left in an average pulls single pixels below the floor it shows). picture:
    YUVPlanes (any scale, depth and range) or uint8 RGB (H, W, 3)."""
    height, width = picture.shape[:2]
    box = min(box, height, width)
    n = max(box, subsample_stride(height, width))
    rows, cols = (height - box) // n + 1, (width - box) // n + 1
    if isinstance(picture, YUVPlanes):
        black, span = luma_range(picture)
        luma = lambda dy, dx: picture.y[dy::n, dx::n][:rows, :cols].astype(np.float32)  # noqa: E731
    else:
        black, span = 0, 255
        luma = lambda dy, dx: picture[dy::n, dx::n][:rows, :cols].astype(np.float32) @ np.float32(TONE_LUMA)  # noqa: E731
    values = sum(luma(dy, dx) for dy in range(box) for dx in range(box)).ravel() / (box * box)
    k = min(int(share * values.size), values.size - 1)
    return float(np.clip((float(np.partition(values, k)[k]) - black) / span, 0.0, 1.0))


def luma_range(planes: YUVPlanes) -> tuple[int, int]:
    """(the luma code of black, codes from black to white) as the planes store them (their
    range, depth and fixed-point scale)."""
    unit = planes.scale << (planes.bits - 8)
    return (0, 255 * unit) if planes.colour.full_range else (16 * unit, 219 * unit)


def black_at_floor(curves: Curves, small: np.ndarray, floor: float, toned_floor: float = 0.04,
                   max_lift: float = 1.5) -> Curves:
    """The curves with their black point raised so that the picture's floor (see
    picture_floor: VideoEnhancer reads the floor of 3x3 means) is toned to `toned_floor`,
    the toned mean luma kept.

    Why: a sensor clips its noise at black, so the noise of a dark frame has a positive
    mean there. Frame by frame that floor is noise, and the net (trained on single frames)
    keeps a black point below it; once the frames are averaged over time the noise is gone
    and the clipped mean is left as a flat grey level, which the tone would lift to grey.
    The black point never drops, and the gain grows at most `max_lift`-fold, so a picture
    with no black in it (fog, a grey wall) is not stretched into noise. Luma figures, one
    shift for the three channels. small: the net's copy (h, w, 3) in [0, 1]."""
    luma = np.asarray(TONE_LUMA, np.float32)
    mean = float(small.reshape(-1, 3).mean(axis=0) @ luma)
    black = float(curves.black @ luma)
    toned_mean = (mean - black) * float(curves.gain @ luma)
    if floor <= black or toned_mean <= 2 * toned_floor:
        return curves
    # (floor − b)·g = toned_floor with (mean − b)·g = toned_mean: solved for b.
    raised = (floor * toned_mean - toned_floor * mean) / (toned_mean - toned_floor)
    raised = min(raised, mean - (mean - black) / max_lift)
    if raised <= black:
        return curves
    lift = (mean - black) / (mean - raised)
    return curves.replace(black=(curves.black + np.float32(raised - black)).astype(np.float32),
                          gain=np.minimum(curves.gain * np.float32(lift), np.float32(TONE_MAX_GAIN)))


#: Where the tone and the curves should leave the floor of an averaged picture (as its 3x3
#: means show it): 15 levels of 255, about where a clean scene's darkest 1 % sits (15-17 on
#: the real clips).
TOE_TARGET = 0.06


def toe_step(curves: Curves, small: np.ndarray, floor: float, iterations: int, target: float = TOE_TARGET,
             max_step: float = 0.012) -> float:
    """How far (in [0, 1] of the input's luma) the picture's floor must come down for the tone
    and the curves to leave it at `target`; 0 where they already do, and at most `max_step`
    (3 codes of 255: a sensor's clipped noise is a few codes, a higher floor is picture, a
    grey wall or fog).

    Why: black_at_floor tones the floor to about 0.04, but the curves come after the tone
    and their slope at black is about 5, so that floor still comes out at 35-50 levels on
    very dark footage (3 % of the light at 300 photons), against 15-20 for the clean
    scene's darkest 1 %. The curve taken is the one where the small copy is darkest (its
    darkest 5 %, where the floor is)."""
    luma = np.asarray(TONE_LUMA, np.float32)
    black, gain = float(curves.black @ luma), float(curves.gain @ luma)
    copy_luma = small.reshape(-1, 3) @ luma
    maps = curves.maps.reshape(copy_luma.shape[0], -1)
    alpha = float(np.median(maps[copy_luma <= np.quantile(copy_luma, 0.05)].mean(axis=1)))
    inputs = np.linspace(0.0, 0.2, 2001)
    toned = float(np.interp(target, curve_float64(inputs, alpha, iterations), inputs))  # the curve is monotone
    return float(np.clip(floor - black - toned / gain, 0.0, max_step))


def toe_mean_kept(curves: Curves, small: np.ndarray, planes: YUVPlanes, toed: YUVPlanes) -> Curves:
    """The curves with their gain raised so that the toned mean luma stays where it was
    before `toed` (toe(planes, ...)) took the floor down, measured on the subsample
    picture_floor reads. Why: on very dark footage most of the picture is near its floor,
    and the toe alone took the mean of the whole frame down 2-3 levels, which the
    picture's exposure did not ask for (the dash-cam was already too dark)."""
    n = subsample_stride(*planes.shape[:2])
    taken = (planes.y[::n, ::n].astype(np.float32) - toed.y[::n, ::n]).mean() / luma_range(planes)[1]
    luma = np.asarray(TONE_LUMA, np.float32)
    above = float(small.reshape(-1, 3).mean(axis=0) @ luma) - float(curves.black @ luma)
    if above <= 0:
        return curves
    lift = above / max(above - float(taken), 0.5 * above)
    return curves.replace(gain=np.minimum(curves.gain * np.float32(lift), np.float32(TONE_MAX_GAIN)))


@numba.njit(nogil=True, cache=True, fastmath=True)
def _toe(y, out, knee, slope, step, black):  # pragma: no cover - numba
    """out = y − step·clip((knee − y)·slope, 0, 1), not below black (codes as stored)."""
    for r in range(y.shape[0]):
        src, dst = y[r], out[r]
        for i in range(src.shape[0]):
            value = np.float32(src[i])
            down = step * min(max((knee - value) * slope, np.float32(0.0)), np.float32(1.0))
            dst[i] = np.uint16(max(value - down, black) + np.float32(0.5))


def toe(planes: YUVPlanes, floor: float, step: float, ramp: float = 2.0) -> YUVPlanes:
    """The planes with the luma at their floor (0..1 from black to white) taken down by `step`:
    fully up to half a step above the floor, handing over linearly to unchanged `ramp` steps
    higher (a slope of 1 + 1/ramp there, so the picture stays monotone). Only the floor's
    neighbourhood moves, unlike a black point (VideoEnhancer then raises the gain just enough
    to keep the toned mean: toe_mean_kept). The chroma is kept (R', G', B' move together).
    New luma; planes with scale > 1 (averages).

    Why a toe and not more black point: at 3 % of the light the floor is half the picture's
    mean, and a black point on it would double the gain and the noise (docs/MODEL.md)."""
    black, span = luma_range(planes)
    width = ramp * step * span
    out = np.empty(planes.y.shape, np.uint16)
    _toe(planes.y, out, np.float32(black + (floor + 0.5 * step) * span + width), np.float32(1.0 / width),
         np.float32(step * span), np.float32(black))
    return YUVPlanes(out, planes.u, planes.v, planes.colour, planes.bits, owner=None, scale=planes.scale)


def eased(last: float | None, new: float, at_once: bool, follow: float) -> float:
    """An exponential average's next value: `new` at once (or as the first), else `follow` of the way to it."""
    return new if at_once or last is None else last + follow * (new - last)


# --- the video engine ---------------------------------------------------------------------------------


class VideoEnhancer:
    """An Enhancer for streams: frames are denoised over time before the curves, and the
    curves are smoothed over time. Frames must come in order; `reset()` (or a frame of
    another size or format) starts a new stream.

    >>> video = VideoEnhancer()                   # the default weights
    >>> for frame in frames: bright = video(frame)

    Frames: YUVPlanes, or uint8 RGB (H, W, 3), returned as they came. RGB frames are
    averaged as BT.601 4:2:0 planes (frame.i420_picture, as a camera's are), where the
    denoiser also filters colour and moving regions and the toe takes the floor to black;
    with `denoise="off"`, at odd sizes and once `auto` has found a stream clean (from its
    second frame) they stay RGB throughout.

    enhancer: an Enhancer, or what to make one from (weights path, checkpoint, None).
    denoise: "auto" (strength from the stream's noise), "off", or a strength 0..1.
    smooth_curves: average the curve maps over time (cuts and changes of light taken at once).
    """

    def __init__(self, enhancer: Enhancer | object = None, denoise: float | str = "auto",
                 smooth_curves: bool = True, backend: str = "auto") -> None:
        self.enhancer = enhancer if isinstance(enhancer, Enhancer) else Enhancer(enhancer, backend=backend)
        strength = None if denoise == "auto" else 0.0 if denoise == "off" else float(denoise)
        self.denoiser = TemporalDenoiser(strength, threads=self.enhancer.threads)
        self.smoother = CurveSmoother()  # detects cuts whether or not it smooths
        self.smooth = smooth_curves
        self.strength: float | None = None  # the effective strength, smoothed over frames
        self.floor: float | None = None  # the averaged picture's floor (of 3x3 means), smoothed over frames
        self.step: float | None = None  # its toe, smoothed over frames

    @property
    def controls(self):
        return self.enhancer.controls

    @property
    def config(self):
        return self.enhancer.config

    def reset(self) -> None:
        self.denoiser.reset()
        self.strength = self.floor = self.step = None
        self.smoother.reset()

    def __call__(self, frame: Picture, out: Picture | None = None) -> Picture:
        if not isinstance(frame, YUVPlanes):
            frame = as_rgb_frame(frame)
            if frame.dtype != np.uint8:
                raise ValueError("VideoEnhancer takes uint8 RGB frames or YUVPlanes (use Enhancer for 16-bit images)")
        check_out(frame, out)
        # RGB frames are averaged as 4:2:0 planes, as a camera's are: only there does the
        # denoiser smooth colour and moving regions, and the toe take the floor to black.
        # Once a stream is known to be clean, its frames are enhanced as they came.
        planes = frame if isinstance(frame, YUVPlanes) or self.denoiser.strength == 0.0 else \
            i420_picture(frame, cv2.COLOR_RGB2YUV_I420)  # RGB still where a size is odd
        small = self.enhancer.small(frame)
        cut, light = self.smoother.changes(small)
        if cut:
            self.denoiser.reset()
        clean = self.denoiser(planes)
        averaged = clean is not planes
        if not averaged and self.denoiser.found_clean:
            clean = frame
        # The net keeps seeing the noisy frame's small copy: each of its pixels is the mean
        # of thousands, where the noise has already averaged out.
        at_once = cut or light or not self.smooth
        curves = self.smoother(self.enhancer.curves_for(small), at_once)
        follow = self.smoother.follow
        toned = averaged and self.config.tone  # the average's floor is the scene's black
        if toned:
            # The floor of 3x3 means, as the curves' dark denoise sees it (single pixels of an
            # average scatter below it, the more the fewer frames it holds); averaged over
            # frames like the curves, since each frame's floor moves with its noise.
            self.floor = eased(self.floor, picture_floor(clean, box=3), at_once, follow)
            curves = black_at_floor(curves, small, self.floor)
        strength = self.enhancer.strength_for(small, curves)
        jump = self.strength is not None and abs(strength - self.strength) > 0.5  # the user's hand
        self.strength = eased(self.strength, strength, at_once or jump, follow)
        if toned and isinstance(clean, YUVPlanes):
            step = toe_step(curves, small, self.floor, self.config.iterations) * min(self.strength, 1.0)
            self.step = eased(self.step, step, at_once, follow)
            if self.step > 0:
                toed = toe(clean, self.floor, self.step)
                curves = toe_mean_kept(curves, small, clean, toed)
                clean = toed
        elif not toned:
            self.floor = self.step = None
        if isinstance(frame, YUVPlanes) or not isinstance(clean, YUVPlanes):
            return self.enhancer.apply(clean, curves, out, self.strength)
        # An RGB frame averaged as planes: the pass writes R'G'B' (of the planes) directly.
        rgb = np.empty(frame.shape, np.uint8) if out is None else out
        return self.enhancer.apply(clean, curves, rgb, self.strength)

    def close(self) -> None:
        self.denoiser.close()
        self.enhancer.close()

    def __enter__(self) -> "VideoEnhancer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
