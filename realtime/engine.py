"""`Enhancer`: the public entry point of the engine. uint8 RGB frame in, uint8 RGB frame out."""
from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np

from .backends import Backend, select_backend
from .model import DCENet, load_checkpoint

DEFAULT_WEIGHTS = "default.pt"


def default_weights_path() -> Path:
    """The project's own checkpoint: installed as package data `realtime.weights` (from
    the repository's weights/ folder), or read from that folder in a source checkout."""
    try:
        return Path(str(resources.files("realtime.weights").joinpath(DEFAULT_WEIGHTS)))
    except ModuleNotFoundError:  # running from a checkout or an editable install
        return Path(__file__).resolve().parent.parent / "weights" / DEFAULT_WEIGHTS


def as_rgb_frame(frame: object) -> np.ndarray:
    """Check a frame at the API boundary and return it as (H, W, 3) uint8, C-contiguous.

    Accepts (H, W, 3) uint8 RGB, contiguous or not, and (H, W) uint8 grayscale (converted
    to RGB). Raises ValueError naming what was expected otherwise.
    """
    if not isinstance(frame, np.ndarray):
        raise ValueError(f"expected a NumPy array of shape (H, W, 3) and dtype uint8, got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise ValueError(f"expected dtype uint8 (values 0..255), got {frame.dtype}")
    if frame.ndim == 2:
        frame = np.repeat(frame[:, :, None], 3, axis=2)
    elif frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"expected shape (H, W, 3) RGB or (H, W) grayscale, got {frame.shape}")
    if frame.shape[0] < 1 or frame.shape[1] < 1:
        raise ValueError(f"expected a non-empty frame, got shape {frame.shape}")
    return np.ascontiguousarray(frame)


class Enhancer:
    """Low-light enhancement of uint8 RGB frames with a DCE-Net.

    >>> enhancer = Enhancer()                     # the project's default weights
    >>> bright = enhancer(frame)                  # (H, W, 3) uint8 -> (H, W, 3) uint8

    weights: None for the default weights, or a path to any supported checkpoint (this
    project's, or the official Zero-DCE / Zero-DCE++ / Zero-DCE-improved state dicts).
    backend: "auto" (tensorrt, then cuda, then cpu), or one of them by name.
    One Enhancer serves one thread at a time.
    """

    def __init__(self, weights: str | Path | DCENet | None = None, backend: str = "auto") -> None:
        self.weights = default_weights_path() if weights is None else weights
        self.net = self.weights if isinstance(self.weights, DCENet) else load_checkpoint(self.weights)
        self.config = self.net.config
        self.backend: Backend = select_backend(backend, self.net)

    def __call__(self, frame: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Enhance one frame: (H, W, 3) uint8 RGB -> a new (H, W, 3) uint8 RGB array
        (or `out`, when given: a C-contiguous array of the same shape and dtype)."""
        frame = as_rgb_frame(frame)
        if out is not None and (out.shape != frame.shape or out.dtype != np.uint8 or not out.flags.c_contiguous):
            raise ValueError(f"out must be a C-contiguous uint8 array of shape {frame.shape}")
        return self.backend.enhance(frame, out)

    def curves(self, frame: np.ndarray) -> np.ndarray:
        """The low-resolution curve maps for a frame: (h, w, C) float32 α in [-1, 1],
        C = 3 (shared by all iterations) or 3·iterations; (h, w) = config.estimation_size."""
        return self.backend.curves(as_rgb_frame(frame))

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> "Enhancer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
