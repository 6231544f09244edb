"""Backends run the DCE-Net: a small copy of the frame in, low-resolution curve maps out.

`curves(small)` takes (h, w, 3) float32 R'G'B' in [0, 1] and returns the frame's
curves.Curves (α maps (h, w, C) float32 in [-1, 1], black point and gain). A backend that can also run the whole per-frame computation on its device
(the GPU ones, for RGB frames) offers `enhance_rgb(frame, out)`. `select_backend` picks one.
"""
from __future__ import annotations

import ctypes.util
import logging
import os
import sys
from typing import Protocol

import numpy as np

from ..checkpoint import Checkpoint
from ..curves import Curves  # noqa: F401  (the protocol's return type)
from ..errors import install_hint

log = logging.getLogger("realtime")

BACKENDS = ("auto", "tensorrt", "cuda", "cpu")


class BackendUnavailable(RuntimeError):
    """The requested backend cannot run on this machine; the message says why."""


class Backend(Protocol):
    name: str

    def curves(self, small: np.ndarray) -> "Curves":
        """(h, w, 3) float32 in [0, 1] -> the frame's Curves."""

    def close(self) -> None:
        """Release threads and device memory."""


def nvidia_driver() -> bool:
    """Whether an NVIDIA driver is installed: without one no CUDA backend can run, and
    the CPU path does not import PyTorch (~1 s, ~200 MB) only to find that out."""
    if sys.platform.startswith("linux") and os.path.exists("/proc/driver/nvidia/version"):
        return True
    return ctypes.util.find_library("nvcuda" if sys.platform == "win32" else "cuda") is not None


def select_backend(name: str, checkpoint: Checkpoint) -> Backend:
    """The backend called `name`, or for "auto" the first that runs here of
    tensorrt, cuda, cpu. Raises BackendUnavailable when a named backend cannot run."""
    if name not in BACKENDS:
        raise BackendUnavailable(f"unknown backend {name!r}; choose from {', '.join(BACKENDS)}")
    from .cpu import CPUBackend

    if name == "cpu":
        return CPUBackend(checkpoint)
    if not nvidia_driver():
        why = "no CUDA device (no NVIDIA driver found)"
        if name == "auto":
            log.info("backend cpu (auto; %s)", why)
            return CPUBackend(checkpoint)
        raise BackendUnavailable(f"{name}: {why}")
    try:
        from . import gpu
    except ImportError as exc:  # PyTorch (or its CUDA build) is not installed
        why = f"the GPU backends need PyTorch ({exc.name} is missing): {install_hint('gpu')}"
        if name == "auto":
            log.info("backend cpu (auto; %s)", why)
            return CPUBackend(checkpoint)
        raise BackendUnavailable(f"{name}: {why}") from None
    if name == "auto":
        reasons = []
        for candidate in ("tensorrt", "cuda"):
            try:
                backend = gpu.create(candidate, checkpoint)
            except BackendUnavailable as why:
                reasons.append(str(why))
                continue
            log.info("backend %s (auto: the fastest that runs here)", candidate)
            return backend
        log.info("backend cpu (auto; %s)", "; ".join(reasons))
        return CPUBackend(checkpoint)
    return gpu.create(name, checkpoint)
