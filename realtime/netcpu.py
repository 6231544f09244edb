"""The DCE-Net forward pass without PyTorch, for the small copies the engine estimates
curves on.

The PyTorch :class:`realtime.model.DCENet` is the reference (training, GPUs, export);
this is the CPU fast path. A 32-px copy is a few hundred pixels, where the arithmetic
is cheaper than PyTorch's import (~1 s and ~200 MB per process) and its per-op
dispatch. The convolutions are Numba kernels over channel-major (C, h, w) float32
arrays, the inner loop running along a row so that it vectorises; on the default
model's 18x32 copy the whole net takes ~0.3 ms on one core, as TorchScript did.
"""
from __future__ import annotations

import numba
import numpy as np

from .checkpoint import Checkpoint, tone_parameters
from .curves import Curves

#: Estimation copies up to this many pixels run here; larger ones (the official
#: full-resolution Zero-DCE, Zero-DCE++ on big frames) run in PyTorch, whose
#: convolutions are blocked for caches and threaded.
MAX_PIXELS = 64 * 64


@numba.njit(nogil=True, fastmath=True, cache=True)
def _padded(x):  # pragma: no cover - numba
    c, h, w = x.shape
    pad = np.zeros((c, h + 2, w + 2), np.float32)
    pad[:, 1:-1, 1:-1] = x
    return pad


@numba.njit(nogil=True, fastmath=True, cache=True)
def _relu(out):  # pragma: no cover - numba
    flat = out.ravel()
    for i in range(flat.shape[0]):
        flat[i] = max(flat[i], np.float32(0.0))


@numba.njit(nogil=True, fastmath=True, cache=True)
def conv3x3(x, weight, bias, relu):  # pragma: no cover - numba
    """(cin, h, w) -> (cout, h, w), weight (cout, cin, 3, 3) as in PyTorch, padding 1."""
    cin, h, w = x.shape
    pad = _padded(x)
    out = np.empty((weight.shape[0], h, w), np.float32)
    for co in range(weight.shape[0]):
        o = out[co]
        o[:] = bias[co]
        for ci in range(cin):
            p = pad[ci]
            for ky in range(3):
                for kx in range(3):
                    k = weight[co, ci, ky, kx]
                    for y in range(h):
                        src, dst = p[y + ky], o[y]
                        for i in range(w):
                            dst[i] += k * src[i + kx]
    if relu:
        _relu(out)
    return out


@numba.njit(nogil=True, fastmath=True, cache=True)
def depthwise3x3(x, weight, bias):  # pragma: no cover - numba
    """(c, h, w) -> (c, h, w), weight (c, 1, 3, 3), padding 1."""
    c, h, w = x.shape
    pad = _padded(x)
    out = np.empty_like(x)
    for ch in range(c):
        o, p = out[ch], pad[ch]
        o[:] = bias[ch]
        for ky in range(3):
            for kx in range(3):
                k = weight[ch, 0, ky, kx]
                for y in range(h):
                    src, dst = p[y + ky], o[y]
                    for i in range(w):
                        dst[i] += k * src[i + kx]
    return out


@numba.njit(nogil=True, fastmath=True, cache=True)
def pointwise(x, weight, bias, relu):  # pragma: no cover - numba
    """(cin, h, w) -> (cout, h, w), weight (cout, cin, 1, 1)."""
    cin, h, w = x.shape
    src = x.reshape(cin, h * w)
    out = np.empty((weight.shape[0], h * w), np.float32)
    for co in range(weight.shape[0]):
        dst = out[co]
        dst[:] = bias[co]
        for ci in range(cin):
            k, s = weight[co, ci, 0, 0], src[ci]
            for i in range(h * w):
                dst[i] += k * s[i]
    if relu:
        _relu(out)
    return out.reshape(weight.shape[0], h, w)


@numba.njit(nogil=True, fastmath=True, cache=True)
def max_pool3x3(x):  # pragma: no cover - numba
    """3x3 max-pool, stride 1, padding 1 (the padding never wins, as in PyTorch)."""
    c, h, w = x.shape
    out = np.empty_like(x)
    for ch in range(c):
        for y in range(h):
            for i in range(w):
                m = x[ch, y, i]
                for yy in range(max(y - 1, 0), min(y + 2, h)):
                    for ii in range(max(i - 1, 0), min(i + 2, w)):
                        m = max(m, x[ch, yy, ii])
                out[ch, y, i] = m
    return out


class NumpyDCENet:
    """Curves for a small RGB image (h, w, 3) float32 in [0, 1]: α maps (h, w, C) float32
    in (-1, 1), C = checkpoint.config.curve_maps, and the tone. The arithmetic of
    DCENet.estimate."""

    def __init__(self, checkpoint: Checkpoint) -> None:
        self.config = checkpoint.config
        self.state = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in checkpoint.state.items()}

    def _layer(self, name: str, x: np.ndarray, relu: bool = True) -> np.ndarray:
        s = self.state
        if self.config.conv == "plain":
            return conv3x3(x, s[f"{name}.weight"], s[f"{name}.bias"], relu)
        x = depthwise3x3(x, s[f"{name}.depth_conv.weight"], s[f"{name}.depth_conv.bias"])
        return pointwise(x, s[f"{name}.point_conv.weight"], s[f"{name}.point_conv.bias"], relu)

    def __call__(self, image: np.ndarray) -> Curves:
        small = np.ascontiguousarray(np.asarray(image, dtype=np.float32).transpose(2, 0, 1))
        x = small
        if self.config.input_gamma != 1.0:
            x = np.maximum(x, 0) ** np.float32(self.config.input_gamma)
        x1 = self._layer("e_conv1", x)
        x2 = self._layer("e_conv2", x1)
        x3 = self._layer("e_conv3", x2)
        x4 = self._layer("e_conv4", max_pool3x3(x3) if self.config.pool_before_conv4 else x3)
        x5 = self._layer("e_conv5", np.concatenate((x3, x4)))
        x6 = self._layer("e_conv6", np.concatenate((x2, x5)))
        alpha = self._layer("e_conv7", np.concatenate((x1, x6)), relu=False)
        maps = np.negative(np.tanh(alpha, out=alpha), out=alpha).transpose(1, 2, 0)
        if not self.config.tone:
            return Curves(maps)
        means = small.mean(axis=(1, 2), dtype=np.float64)
        features = [x6.mean(axis=(1, 2), dtype=np.float64), x6.max(axis=(1, 2)), means, small.max(axis=(1, 2))]
        if self.config.tone_reads_floor:
            features.append(small.min(axis=(1, 2)))
        pooled = np.concatenate(features)
        z = self.state["tone.weight"].astype(np.float64) @ pooled + self.state["tone.bias"]
        return Curves(maps, *tone_parameters(z, means))
