"""Fast application of curve maps to uint8 frames: uint8 in, uint8 out, one pass.

The net estimates α at low resolution; here the maps are upsampled bilinearly on the
fly and the curve is applied in the same pass, so the full-resolution frame is read
once and written once and no full-resolution float image ever exists.

- Shared maps (3 maps for all iterations, Zero-DCE++ style): the output depends only
  on (α, x), so it is looked up in a :class:`CurveLUT` of `levels` α values × 256 inputs.
- Per-iteration maps (Zero-DCE style): the iterations are computed in float32 per
  element, fused in the same pass.

Kernels are Numba-compiled, release the GIL and process a band of rows, so the
caller can split a frame across threads.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numba
import numpy as np

#: α levels in the lookup table. With 8 iterations, |∂y/∂α| reaches ~510 uint8 levels
#: per unit α; 2048 levels over [-1, 1] keep every output within 0.75 of the float64
#: curve (1024 would give 0.99), and the table (512 KiB) still fits in L2.
LUT_LEVELS = 2048


def curve_float64(x: np.ndarray, alpha: np.ndarray | float, iterations: int = 8) -> np.ndarray:
    """The published curve in float64: LE(x) = x + α·x·(1 − x), applied `iterations` times.

    x in [0, 1]; α in [-1, 1], broadcast against x. Returns values in [0, 1].
    """
    x = np.asarray(x, dtype=np.float64)
    for _ in range(iterations):
        x = x + alpha * x * (1 - x)
    return x


@dataclass(frozen=True)
class CurveLUT:
    """Output level for every (α level, input level): y = table[l, x].

    Level l stands for α = -1 + 2·l / (levels - 1). Built once per iteration count.
    """

    table: np.ndarray  # (levels, 256) uint8
    iterations: int

    @property
    def levels(self) -> int:
        return self.table.shape[0]

    def alpha_to_level(self, alpha: np.ndarray) -> np.ndarray:
        """α in [-1, 1] -> fractional level + 0.5, so that int() rounds to nearest."""
        return (np.clip(alpha, -1, 1) + 1) * (0.5 * (self.levels - 1)) + 0.5


@lru_cache(maxsize=8)
def build_lut(iterations: int = 8, levels: int = LUT_LEVELS) -> CurveLUT:
    """The CurveLUT for `iterations` iterations (cached: it depends on nothing else)."""
    alpha = np.linspace(-1, 1, levels)[:, None]
    x = np.arange(256)[None, :] / 255.0
    table = np.clip(np.rint(curve_float64(x, alpha, iterations) * 255), 0, 255).astype(np.uint8)
    table.setflags(write=False)
    return CurveLUT(table, iterations)


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


@numba.njit(nogil=True, cache=True)
def _upsample_rows(maps, x0, x1, xw, out):  # pragma: no cover - numba
    """out[r, X, c] = row r of maps resampled to len(x0) columns."""
    for r in range(maps.shape[0]):
        for x in range(x0.shape[0]):
            a, b, w = x0[x], x1[x], xw[x]
            for c in range(maps.shape[2]):
                out[r, x, c] = maps[r, a, c] + w * (maps[r, b, c] - maps[r, a, c])


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
    return np.int32(s + np.floor((w * (mean - s) + np.float32(128.0)) * np.float32(1.0 / 256.0)))


@numba.njit(nogil=True, cache=True, fastmath=True)
def _lut_rows(src, dst, levels, y0, y1, yw, table, below, r0, r1):  # pragma: no cover - numba
    """dst[y] = table[level(y), x(y)] for rows r0..r1; levels are row-upsampled already.

    Two passes per row: the first (vectorisable) denoises and forms table indices, the
    second gathers.
    """
    n = src.shape[1] * 3
    flat = table.ravel()
    idx = np.empty(n, np.int32)
    vs = np.zeros(n + 6, np.float32)
    fb, scale = np.float32(below), np.float32(256 // below if below else 0)
    for y in range(r0, r1):
        if below:
            _vertical_sums(src, y, vs)
        row = src[y].ravel()
        la, lb, w = levels[y0[y]].ravel(), levels[y1[y]].ravel(), yw[y]
        for k in range(n):
            x = _denoised(vs, np.float32(row[k]), k, fb, scale)
            idx[k] = (np.int32(la[k] + w * (lb[k] - la[k])) << 8) | x
        d = dst[y].ravel()
        for k in range(n):
            d[k] = flat[idx[k]]


@numba.njit(nogil=True, cache=True, fastmath=True)
def _iterate_rows(src, dst, maps, y0, y1, yw, iterations, below, r0, r1):  # pragma: no cover - numba
    """Per-iteration maps: dst[y] = LE applied with maps[..., 3i:3i+3] for i < iterations."""
    width = src.shape[1]
    vs = np.zeros(width * 3 + 6, np.float32)
    fb, scale = np.float32(below), np.float32(256 // below if below else 0)
    for y in range(r0, r1):
        if below:
            _vertical_sums(src, y, vs)
        ma, mb, w = maps[y0[y]], maps[y1[y]], yw[y]
        s, d = src[y], dst[y]
        for x in range(width):
            for c in range(3):
                v = np.float32(_denoised(vs, np.float32(s[x, c]), 3 * x + c, fb, scale)) * np.float32(1.0 / 255.0)
                for i in range(iterations):
                    k = 3 * i + c
                    a = ma[x, k] + w * (mb[x, k] - ma[x, k])
                    v = v + a * v * (np.float32(1.0) - v)
                v = v * np.float32(255.0) + np.float32(0.5)
                d[x, c] = np.uint8(min(max(v, np.float32(0.0)), np.float32(255.0)))


def row_bands(height: int, parts: int) -> list[tuple[int, int]]:
    """Split range(height) into at most `parts` contiguous bands of near-equal size."""
    parts = max(1, min(parts, height))
    edges = np.linspace(0, height, parts + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]) if b > a]


class CurveApplier:
    """Applies low-resolution curve maps to full-resolution uint8 frames.

    Call :meth:`prepare` once per frame (cheap: touches only low-resolution data),
    then :meth:`apply_band` for row bands, possibly from several threads at once.
    """

    def __init__(self, iterations: int, shared: bool, grid: str = "half_pixel", denoise_below: int = 0) -> None:
        self.iterations = iterations
        self.shared = shared
        self.grid = grid
        self.denoise_below = denoise_below
        self.lut = build_lut(iterations) if shared else None

    def prepare(self, maps: np.ndarray, height: int, width: int) -> tuple:
        """maps: (h, w, C) float32 α in [-1, 1]; returns the per-frame state for apply_band."""
        maps = np.ascontiguousarray(maps, dtype=np.float32)
        if self.lut is not None:
            maps = self.lut.alpha_to_level(maps).astype(np.float32)
        h, w, c = maps.shape
        rows = np.empty((h, width, c), np.float32)
        tx = linear_taps(w, width, self.grid)
        _upsample_rows(maps, tx.i0, tx.i1, tx.w, rows)
        ty = linear_taps(h, height, self.grid)
        return rows, ty

    def apply_band(self, frame: np.ndarray, out: np.ndarray, state: tuple, r0: int, r1: int) -> None:
        """Write rows r0..r1 of out (H, W, 3 uint8) from frame (H, W, 3 uint8, C-contiguous rows)."""
        rows, ty = state
        if self.lut is not None:
            _lut_rows(frame, out, rows, ty.i0, ty.i1, ty.w, self.lut.table, self.denoise_below, r0, r1)
        else:
            _iterate_rows(frame, out, rows, ty.i0, ty.i1, ty.w, self.iterations, self.denoise_below, r0, r1)

    def apply(self, frame: np.ndarray, maps: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Single-threaded convenience: the whole frame at once."""
        height, width = frame.shape[:2]
        out = np.empty_like(frame) if out is None else out
        self.apply_band(frame, out, self.prepare(maps, height, width), 0, height)
        return out
