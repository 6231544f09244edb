"""GPU backends (cuda, tensorrt). Placeholder until the GPU issue: both report unavailable."""
from __future__ import annotations

from ..model import DCENet
from . import BackendUnavailable


def create(name: str, net: DCENet):
    import torch

    if not torch.cuda.is_available():
        raise BackendUnavailable(f"{name}: no CUDA device (torch {torch.__version__}, cuda {torch.version.cuda})")
    raise BackendUnavailable(f"{name}: not implemented yet")
