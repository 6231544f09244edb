"""CPU backend: the DCE-Net on the CPU, in Numba for small copies, in PyTorch for large ones."""
from __future__ import annotations

import numpy as np

from ..checkpoint import Checkpoint
from ..curves import Curves
from ..errors import import_torch
from ..netcpu import MAX_PIXELS, NumpyDCENet


class CPUBackend:
    """Curve maps from a small copy. The default model's 32-px copy runs without PyTorch;
    copies above netcpu.MAX_PIXELS (the official full-resolution models) run in PyTorch,
    imported on first need."""

    name = "cpu"

    def __init__(self, checkpoint: Checkpoint) -> None:
        self.checkpoint = checkpoint
        self._small_net = NumpyDCENet(checkpoint)
        self._torch_net = None

    def curves(self, small: np.ndarray) -> Curves:
        if small.shape[0] * small.shape[1] <= MAX_PIXELS:
            return self._small_net(small)
        return self._large(small)

    def _large(self, small: np.ndarray) -> Curves:
        torch = import_torch("a model that sees a copy this large")
        from ..model import from_checkpoint

        if self._torch_net is None:
            self._torch_net = from_checkpoint(self.checkpoint)
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(small, dtype=np.float32)).permute(2, 0, 1)[None]
            alpha, black, gain = self._torch_net.estimate(x)
            return Curves(alpha[0].permute(1, 2, 0).contiguous().numpy(), black[0].numpy(), gain[0].numpy())

    def close(self) -> None:
        pass
