"""`Enhancer`: the public entry point of the engine.

An RGB frame in, an RGB frame out; or, for video, 4:2:0 planes in, planes out, with the
same curves computed in the frame's own colour space. The steps are: a small copy of
the frame (area downscale) -> the DCE-Net (a backend) -> curve maps -> one pass over
the full frame (curves.CurveApplier), split into row bands across the cores.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from importlib import resources
from pathlib import Path

import cv2
import numba
import numpy as np

from .backends import Backend, select_backend
from .cores import cpu_count
from .checkpoint import Checkpoint, load_weights
from .controls import LUMA, Controls, curve_small, effective_strength
from .curves import CurveApplier, Curves, row_bands
from .frame import Picture, YUVPlanes

DEFAULT_WEIGHTS = "default.safetensors"
#: Frames smaller than this are enhanced on the calling thread alone.
PARALLEL_PIXELS = 65536
_INTERPOLATION = {"area": cv2.INTER_AREA, "bilinear": cv2.INTER_LINEAR}


def default_weights_path() -> Path:
    """The project's own checkpoint: installed as package data `realtime.weights` (from
    the repository's weights/ folder), or read from that folder in a source checkout."""
    try:
        return Path(str(resources.files("realtime.weights").joinpath(DEFAULT_WEIGHTS)))
    except ModuleNotFoundError:  # running from a checkout or an editable install
        return Path(__file__).resolve().parent.parent / "weights" / DEFAULT_WEIGHTS


def as_rgb_frame(frame: object) -> np.ndarray:
    """Check a frame at the API boundary and return it as (H, W, 3), C-contiguous.

    Accepts (H, W, 3) RGB, contiguous or not, and (H, W) grayscale (converted to RGB),
    of dtype uint8 (0..255) or uint16 (0..65535, e.g. a 16-bit PNG). Raises ValueError
    naming what was expected otherwise.
    """
    if not isinstance(frame, np.ndarray):
        raise ValueError(f"expected a NumPy array of shape (H, W, 3) and dtype uint8, got {type(frame).__name__}")
    if frame.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"expected dtype uint8 (values 0..255) or uint16, got {frame.dtype}")
    if frame.ndim == 2:
        frame = np.repeat(frame[:, :, None], 3, axis=2)
    elif frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"expected shape (H, W, 3) RGB or (H, W) grayscale, got {frame.shape}")
    if frame.shape[0] < 1 or frame.shape[1] < 1:
        raise ValueError(f"expected a non-empty frame, got shape {frame.shape}")
    return np.ascontiguousarray(frame)


@lru_cache(maxsize=32)
def area_weights(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """An exact area downscale along one axis: output sample i is the mean of the input over
    [i·n_in/n_out, (i+1)·n_in/n_out), fractional pixels counted by their share (OpenCV's
    INTER_AREA; backends.gpu.area_matrix in tensor ops). Each input sample falls into at
    most two outputs: (first output, its weight, second output, its weight) per input,
    and the (n_out, n_in) matrix."""
    edges = np.arange(n_out + 1) * (n_in / n_out)
    pos = np.arange(n_in, dtype=np.float64)
    matrix = np.clip(np.minimum(edges[1:, None], pos[None, :] + 1) - np.maximum(edges[:-1, None], pos[None, :]),
                     0, None) * (n_out / n_in)
    first = matrix.argmax(axis=0)  # the output holding the larger share; the other is a neighbour
    second = np.clip(first + np.where(np.take_along_axis(matrix, np.clip(first + 1, 0, n_out - 1)[None], 0)[0] > 0,
                                      1, -1), 0, n_out - 1)
    w0 = matrix[first, np.arange(n_in)]
    w1 = np.where(second != first, matrix[second, np.arange(n_in)], 0.0)
    return (first.astype(np.int64), w0.astype(np.float32), second.astype(np.int64), w1.astype(np.float32),
            matrix.astype(np.float32))


@numba.njit(nogil=True, cache=True, fastmath=True)
def _area_rows(src, o0, w0, o1, w1, acc, r0, r1):  # pragma: no cover - numba
    """acc[o] = the weighted sum of rows r0..r1 of src (H, N) that fall into output row o."""
    acc[:] = 0.0
    for y in range(r0, r1):
        row, a, wa = src[y], acc[o0[y]], w0[y]
        for x in range(row.shape[0]):
            a[x] += wa * np.float32(row[x])
        if w1[y] > 0:
            b, wb = acc[o1[y]], w1[y]
            for x in range(row.shape[0]):
                b[x] += wb * np.float32(row[x])


def _area_downscale(plane: np.ndarray, size: tuple[int, int], interpolation: int,
                    pool: ThreadPoolExecutor | None = None) -> np.ndarray:
    """plane (H, W[, C]) -> (h, w[, C]) float32 levels. Area: the exact area mean, in one
    pass over the plane (rows into output rows, then the small column matrix), the same
    numbers the GPU program and the exported model compute; with a pool, the rows in two
    halves at once. Bilinear: OpenCV's."""
    h, w = size
    if interpolation != cv2.INTER_AREA:
        if plane.shape[:2] == (h, w):
            return plane.astype(np.float32)
        return cv2.resize(np.ascontiguousarray(plane), (w, h), interpolation=interpolation).astype(np.float32)
    height, width = plane.shape[:2]
    channels = plane.shape[2] if plane.ndim == 3 else 1
    src = np.ascontiguousarray(plane).reshape(height, width * channels)
    o0, w0, o1, w1, _ = area_weights(height, h)
    rows = np.empty((h, width * channels), np.float32)
    if pool is not None and height * width >= PARALLEL_PIXELS:
        other = np.empty_like(rows)
        half = pool.submit(_area_rows, src, o0, w0, o1, w1, other, height // 2, height)
        _area_rows(src, o0, w0, o1, w1, rows, 0, height // 2)
        half.result()
        rows += other
    else:
        _area_rows(src, o0, w0, o1, w1, rows, 0, height)
    columns = area_weights(width, w)[4]  # (w, W)
    out = np.einsum("vx,hxc->hvc", columns, rows.reshape(h, width, channels), optimize=True)
    return out if plane.ndim == 3 else out[:, :, 0]


def small_copy(picture: Picture, size: tuple[int, int], downsample: str = "area",
               pool: ThreadPoolExecutor | None = None) -> np.ndarray:
    """The copy the net sees: (h, w, 3) float32 R'G'B' in [0, 1]. Planes are downscaled as
    planes and converted at the small size (the area mean commutes with the linear matrix)."""
    interpolation = _INTERPOLATION[downsample]
    if isinstance(picture, np.ndarray):
        return _area_downscale(picture, size, interpolation, pool) * np.float32(1 / np.iinfo(picture.dtype).max)
    y, u, v = (_area_downscale(p, size, interpolation, pool) for p in (picture.y, picture.u, picture.v))
    yo, ys, co, cs, _, _, _, cr_v, cg_u, cg_v, cb_u = picture.colour.coefficients(picture.bits, picture.scale)
    luma, pb, pr = (y - yo) / ys, (u - co) / cs, (v - co) / cs
    rgb = np.stack([luma + cr_v * pr, luma - cg_u * pb - cg_v * pr, luma + cb_u * pb], axis=2)
    return np.clip(rgb, 0, 1, out=rgb)


class Enhancer:
    """Low-light enhancement of RGB frames and video planes with a DCE-Net.

    >>> enhancer = Enhancer()                     # the project's default weights
    >>> bright = enhancer(frame)                  # (H, W, 3) uint8 -> (H, W, 3) uint8
    >>> bright = enhancer(planes)                 # YUVPlanes -> YUVPlanes (video, see enhance_planes)

    weights: None for the default weights, a path to any supported checkpoint (this
    project's, or the official Zero-DCE / Zero-DCE++ / Zero-DCE-improved state dicts), or
    a loaded Checkpoint. backend: "auto" (tensorrt, then cuda, then cpu), or one by name.
    threads: cores the curve pass is split over (default: all this process may use).
    controls: strength and target exposure (realtime.controls; by default strength 1,
    attenuated in good light so that a well-lit frame is left nearly as it is).
    One Enhancer serves one thread at a time.
    """

    def __init__(self, weights: str | Path | Checkpoint | None = None, backend: str = "auto",
                 threads: int | None = None, controls: Controls | None = None) -> None:
        weights = default_weights_path() if weights is None else weights
        self.checkpoint = weights if isinstance(weights, Checkpoint) else load_weights(weights)
        self.config = self.checkpoint.config
        self.controls = controls or Controls()
        self.backend: Backend = select_backend(backend, self.checkpoint)
        c = self.config
        self.applier = CurveApplier(c.iterations, c.shared_curves, c.upsample_grid, c.denoise_below)
        self.threads = max(1, threads or cpu_count())
        self._pool = ThreadPoolExecutor(self.threads - 1, thread_name_prefix="curves") if self.threads > 1 else None
        self._closed = False

    # --- the public calls -------------------------------------------------------------

    def __call__(self, frame: Picture, out: Picture | None = None, strength: float | None = None) -> Picture:
        """Enhance one frame: (H, W, 3) RGB -> a new (H, W, 3) RGB array, or YUVPlanes ->
        YUVPlanes (see enhance_planes). `out`, when given, receives the result (it may be
        the input itself). strength (default: the controls'): 0 = unchanged, 1 = the
        model's curves, 2 = the curves applied twice as many times; attenuated in good
        light unless the controls set a target exposure."""
        if isinstance(frame, YUVPlanes):
            return self.enhance_planes(frame, out, strength)
        frame = as_rgb_frame(frame)
        check_out(frame, out)
        return self._enhance(frame, out, strength)

    def _enhance(self, picture: Picture, out: Picture | None, strength: float | None) -> Picture:
        self._check_open()
        whole_frame = getattr(self.backend, "enhance_rgb", None)  # a GPU program for the whole computation
        if whole_frame is not None and strength is None and self.controls.is_default() \
                and isinstance(picture, np.ndarray) and picture.dtype == np.uint8:
            return whole_frame(picture, out)
        small = self.small(picture)
        curves = self.curves_for(small)
        return self.apply(picture, curves, out, self.strength_for(small, curves, strength))

    def enhance_photo(self, image: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """One photograph: what __call__ does, then, where the checkpoint asks for it
        (config.photo_filter), an edge-preserving filter (a 5-px bilateral,
        realtime.engine.PHOTO_*) whose strength follows how far the curves lifted the
        picture: none in good light, in full from a lift of PHOTO_FULL_LIFT× (the shadows'
        noise comes up with them). A video has the temporal denoiser instead
        (VideoEnhancer), which this would only blur. (H, W, 3) RGB -> RGB; 16-bit pictures
        get no filter."""
        frame = as_rgb_frame(image)
        small = self.small(frame)
        curves = self.curves_for(small)
        strength = self.strength_for(small, curves)
        result = self.apply(frame, curves, out, strength)
        if not self.config.photo_filter or result.dtype != np.uint8:
            return result
        sigma = PHOTO_SIGMA * photo_lift_share(small, curves, self.config.iterations, strength)
        if sigma >= 1:
            result[...] = cv2.bilateralFilter(result, PHOTO_DIAMETER, sigma, PHOTO_DIAMETER)
        return result

    def strength_for(self, small: np.ndarray, curves: Curves, strength: float | None = None) -> float:
        """The strength a frame gets (see realtime.controls), given its small copy and curves."""
        controls = self.controls if strength is None else Controls(strength, self.controls.exposure,
                                                                     attenuate=self.controls.attenuate)
        return effective_strength(small, curves, self.config, controls)

    def enhance_planes(self, planes: YUVPlanes, out: YUVPlanes | None = None,
                       strength: float | None = None) -> YUVPlanes:
        """The planar entry point for video: 4:2:0 planes (8 to 16 bits, any matrix and
        range, as decoded) -> new planes of the same size, depth and colour description.
        The curves are those `__call__` applies to the frame decoded to RGB with its own
        matrix, computed per 2x2 block without leaving YUV (see realtime.curves)."""
        if not isinstance(planes, YUVPlanes):
            raise ValueError(f"expected YUVPlanes, got {type(planes).__name__}")
        check_out(planes, out)
        return self._enhance(planes, out, strength)

    def curves(self, frame: Picture) -> Curves:
        """What the net estimates for a frame (realtime.curves.Curves): the low-resolution
        curve maps, (h, w, C) float32 α in [-1, 1], C = 3 (shared by all iterations) or
        3·iterations, (h, w) = config.estimation_size; and its tone (black point and gain
        per channel)."""
        return self.estimate(frame if isinstance(frame, YUVPlanes) else as_rgb_frame(frame))

    # --- the steps (VideoEnhancer runs them with temporal state in between) -------------

    def small(self, picture: Picture) -> np.ndarray:
        """The copy of a checked picture that the net sees: (h, w, 3) float32 in [0, 1]."""
        height, width = picture.shape[:2]
        return small_copy(picture, self.config.estimation_size(height, width), self.config.downsample, self._pool)

    def estimate(self, picture: Picture) -> Curves:
        """Curves for a checked picture (see curves())."""
        self._check_open()
        return self.curves_for(self.small(picture))

    def curves_for(self, small: np.ndarray) -> Curves:
        """Curves for a small copy. A grey picture gets the same curve and tone in every
        channel, so that it stays grey (the net's three maps differ a little even for grey
        input)."""
        curves = self.backend.curves(small)
        if np.array_equal(small[..., 0], small[..., 1]) and np.array_equal(small[..., 0], small[..., 2]):
            maps = curves.maps
            sets = maps.reshape(*maps.shape[:2], -1, 3)
            grey = np.repeat(sets.mean(axis=3, keepdims=True), 3, axis=3).reshape(maps.shape)
            curves = curves.replace(maps=grey, black=np.full(3, curves.black.mean(), np.float32),
                                    gain=np.full(3, curves.gain.mean(), np.float32))
        return curves

    def apply(self, picture: Picture, curves: Curves, out: Picture | None = None, strength: float = 1.0) -> Picture:
        """Apply a frame's curves to a checked picture, into `out` (new when None). Planes
        may also go into a C-contiguous (H, W, 3) uint8 `out`: their enhanced R'G'B' as a
        player would show the enhanced planes, in the same pass (what VideoEnhancer does
        with the RGB frames it averages as planes)."""
        self._check_open()
        planar = isinstance(picture, YUVPlanes)
        height, width = picture.shape[:2]
        target = out
        shown = planar and isinstance(out, np.ndarray)  # planes in, R'G'B' out
        if not shown and (out is None or _shares_memory(picture, out) or (planar and out.scale != 1)):  # in place: neighbours are read
            target = YUVPlanes.empty(width, height, picture.colour, picture.bits) if planar else np.empty_like(picture)
        state = self.applier.prepare(curves, height, width, strength, planar=planar)
        band = self.applier.apply_planes_band if planar else self.applier.apply_band
        parts = self.threads if height * width >= PARALLEL_PIXELS else 1
        bands = row_bands(height, parts, align=2 if planar else 1)
        jobs = [self._pool.submit(band, picture, target, state, a, b) for a, b in bands[1:]] if len(bands) > 1 else []
        band(picture, target, state, *bands[0])  # the calling thread takes the first band itself
        for job in jobs:
            job.result()
        if out is not None and target is not out:
            _copy_into(out, target)
            return out
        return target

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError("this Enhancer is closed; make a new one")

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            if self._pool is not None:
                self._pool.shutdown(wait=True)
            self.backend.close()

    def __enter__(self) -> "Enhancer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: The photo filter (Enhancer.enhance_photo): a bilateral filter of this diameter (and
#: spatial σ), its colour σ in levels at full strength, reached at this lift of the mean
#: luma. Chosen on ../shared/data/lol-val: SSIM 0.73 -> 0.80 and PSNR +0.1 dB for the default
#: model (docs/MODEL.md), ~4 ms per 600x400 photo on one core.
PHOTO_DIAMETER, PHOTO_SIGMA, PHOTO_FULL_LIFT = 5, 25.0, 5.0


def photo_lift_share(small: np.ndarray, curves: Curves, iterations: int, strength: float) -> float:
    """0 for a picture the curves leave as it is, 1 from a lift of PHOTO_FULL_LIFT× of
    its mean luma, linear in between (measured on the small copy)."""
    before = float(small.reshape(-1, 3).mean(axis=0) @ LUMA)
    after = float(curve_small(small, curves, iterations, strength).reshape(-1, 3).mean(axis=0) @ LUMA)
    lift = after / max(before, 1 / 255)
    return float(np.clip((lift - 1) / (PHOTO_FULL_LIFT - 1), 0.0, 1.0))


def check_out(picture: Picture, out: Picture | None) -> None:
    """That `out` (None, or where an enhanced `picture` is to go) is of its kind and size:
    ValueError otherwise (the kernels write whole rows of it)."""
    if out is None:
        return
    if isinstance(picture, YUVPlanes):
        if not isinstance(out, YUVPlanes) or out.shape != picture.shape or out.bits != picture.bits:
            raise ValueError(f"out must be YUVPlanes of shape {picture.shape} and {picture.bits} bits")
    elif not isinstance(out, np.ndarray) or out.shape != picture.shape or out.dtype != picture.dtype \
            or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous {picture.dtype} array of shape {picture.shape}")


def _shares_memory(a: Picture, b: Picture) -> bool:
    if isinstance(a, YUVPlanes):
        return any(np.shares_memory(p, q) for p in (a.y, a.u, a.v) for q in (b.y, b.u, b.v))
    return np.shares_memory(a, b)


def _copy_into(out: Picture, src: Picture) -> None:
    if isinstance(out, YUVPlanes):
        out.y[...], out.u[...], out.v[...] = src.y, src.u, src.v
    else:
        out[...] = src
