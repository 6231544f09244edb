"""CPU backend: OpenCV downscale, the DCE-Net in PyTorch, Numba curve kernels on all cores."""
from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import torch

from ..curves import CurveApplier, row_bands
from ..model import DCENet

_INTERPOLATION = {"area": cv2.INTER_AREA, "bilinear": cv2.INTER_LINEAR}


def cpu_count() -> int:
    """Cores this process may run on (the affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class CPUBackend:
    """One instance per thread: it keeps per-frame state and a worker pool."""

    name = "cpu"

    def __init__(self, net: DCENet, threads: int | None = None) -> None:
        self.config = net.config
        self.threads = threads or cpu_count()
        self._net = self._freeze(net)
        self._applier = CurveApplier(
            self.config.iterations, self.config.shared_curves, self.config.upsample_grid, self.config.denoise_below
        )
        self._pool = ThreadPoolExecutor(self.threads - 1, thread_name_prefix="curves") if self.threads > 1 else None

    @staticmethod
    def _freeze(net: DCENet) -> torch.nn.Module:
        # Tracing and freezing folds the small graph into one TorchScript call: at
        # estimation sizes of a few thousand pixels, Python dispatch is most of the cost.
        # TorchScript is deprecated upstream but still the cheapest way to run a tiny graph
        # on a CPU without a compiler toolchain; eager is the fallback where it is gone.
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                return torch.jit.freeze(torch.jit.trace(net.eval(), torch.rand(1, 3, 16, 16), check_trace=False))
            except Exception:
                return net.eval()

    def _small(self, frame: np.ndarray) -> np.ndarray:
        height, width = frame.shape[:2]
        h, w = self.config.estimation_size(height, width)
        if (h, w) == (height, width):
            return frame
        if self.config.downsample == "area":
            # OpenCV's 2x2 area reduction is SIMD-fast and a large non-integer area reduction is
            # not (1080p -> 32x18: 2.7 ms at once, 0.7 ms as 960x540 then 32x18); the mean of
            # 2x2 means is the area mean, up to uint8 rounding of the intermediate.
            # An odd last row or column is left out of the halvings (a view, no copy).
            while frame.shape[0] >= 4 * h and frame.shape[1] >= 4 * w:
                even = frame[: frame.shape[0] & ~1, : frame.shape[1] & ~1]
                frame = cv2.resize(even, (even.shape[1] // 2, even.shape[0] // 2), interpolation=cv2.INTER_AREA)
        return cv2.resize(frame, (w, h), interpolation=_INTERPOLATION[self.config.downsample])

    def curves(self, frame: np.ndarray) -> np.ndarray:
        small = self._small(frame)
        x = torch.from_numpy(np.ascontiguousarray(small)).permute(2, 0, 1)[None].float().div_(255)
        # One intra-op thread for a net this small: more only add overhead, and PyTorch's idle
        # OpenMP workers keep spinning on the cores that the curve kernel needs next (1080p:
        # 11 ms per frame with 2 threads, 4.6 ms with 1). Restored after, for the caller.
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with torch.inference_mode():
                alpha = self._net(x)
        finally:
            torch.set_num_threads(threads)
        return alpha[0].permute(1, 2, 0).contiguous().numpy()

    def enhance(self, frame: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        height, width = frame.shape[:2]
        out = np.empty_like(frame) if out is None else out
        state = self._applier.prepare(self.curves(frame), height, width)
        bands = row_bands(height, self.threads if height * width >= 65536 else 1)
        # The calling thread takes the first band itself: one hand-off fewer per frame.
        jobs = [self._pool.submit(self._applier.apply_band, frame, out, state, a, b) for a, b in bands[1:]] \
            if self._pool is not None else []
        first = bands[0] if jobs else (0, height)
        self._applier.apply_band(frame, out, state, *first)
        for job in jobs:
            job.result()
        return out

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
