"""Backends run the per-frame computation: downscale -> DCE-Net -> upsample -> curves.

Every backend takes an H×W×3 uint8 RGB frame and returns a new H×W×3 uint8 frame
(`enhance`), or the low-resolution curve maps (`curves`). `select_backend` picks one.
"""
from __future__ import annotations

import logging
from typing import Protocol

import numpy as np

from ..model import DCENet

log = logging.getLogger("realtime")

BACKENDS = ("auto", "tensorrt", "cuda", "cpu")


class BackendUnavailable(RuntimeError):
    """The requested backend cannot run on this machine; the message says why."""


class Backend(Protocol):
    name: str

    def curves(self, frame: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 -> low-resolution α maps, (h, w, C) float32 in [-1, 1]."""

    def enhance(self, frame: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """(H, W, 3) uint8 C-contiguous -> (H, W, 3) uint8 (written into `out` if given)."""

    def close(self) -> None:
        """Release threads and device memory."""


def select_backend(name: str, net: DCENet) -> Backend:
    """The backend called `name`, or for "auto" the first that runs here of
    tensorrt, cuda, cpu. Raises BackendUnavailable when a named backend cannot run."""
    if name not in BACKENDS:
        raise BackendUnavailable(f"unknown backend {name!r}; choose from {', '.join(BACKENDS)}")
    from .cpu import CPUBackend

    if name == "cpu":
        return CPUBackend(net)
    from . import gpu

    if name == "auto":
        reasons = []
        for candidate in ("tensorrt", "cuda"):
            try:
                backend = gpu.create(candidate, net)
            except BackendUnavailable as why:
                reasons.append(str(why))
                continue
            log.info("backend %s (auto: the fastest that runs here)", candidate)
            return backend
        log.info("backend cpu (auto; %s)", "; ".join(reasons))
        return CPUBackend(net)
    return gpu.create(name, net)
