"""GPU backends: `cuda` (PyTorch on CUDA, fp16 net) and `tensorrt` (torch-tensorrt, dynamo path).

For RGB frames both run :class:`FrameProgram`, the whole per-frame computation as
PyTorch ops: uint8 frame -> area downscale -> DCE-Net -> bilinear upsample of the maps
-> curve lookup -> uint8 frame. Frames cross to the GPU once, from a pinned host
buffer, on a stream of their own. For video planes (and any call with a strength other
than 1) they estimate the maps (`maps`) and the CPU pass applies them.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoint import Checkpoint
from ..curves import build_lut
from ..model import DCENet, apply_curves, denoise_dark, from_checkpoint
from . import BackendUnavailable

log = logging.getLogger("realtime")

#: Frame sizes a TensorRT engine accepts (height and width each), and the size it is tuned for.
TRT_MIN, TRT_OPT, TRT_MAX = 64, 1080, 4096


class FrameProgram(nn.Module):
    """(H, W, 3) uint8 frame + a (h, w) shape carrier -> (H, W, 3) uint8 enhanced frame.

    The estimation size travels as the *shape* of `size` (its values are ignored) so that
    torch.export keeps H, W, h and w symbolic. Shared-map models use the same curve
    lookup table as the CPU engine; per-iteration models compute the iterations in float32.
    """

    def __init__(self, net: DCENet, net_dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.net = net
        self.config = net.config
        self.net_dtype = net_dtype
        lut = build_lut(self.config.iterations) if self.config.shared_curves else None
        table = torch.from_numpy(lut.table.astype(np.int64).reshape(-1)) if lut else torch.zeros(1, dtype=torch.int64)
        self.register_buffer("table", table, persistent=False)
        self.levels = lut.levels if lut else 0

    def forward(self, frame: torch.Tensor, size: torch.Tensor) -> torch.Tensor:
        height, width = frame.shape[0], frame.shape[1]
        x = frame.permute(2, 0, 1).unsqueeze(0).float() / 255
        mode = "area" if self.config.downsample == "area" else "bilinear"
        small = F.interpolate(x, size=(size.shape[0], size.shape[1]), mode=mode) if mode == "area" else \
            F.interpolate(x, size=(size.shape[0], size.shape[1]), mode=mode, align_corners=False)
        alpha = self.net(small.to(self.net_dtype)).float()
        corners = self.config.upsample_grid == "corners"
        full = F.interpolate(alpha, size=(height, width), mode="bilinear", align_corners=corners)
        source = denoise_dark(frame.permute(2, 0, 1).unsqueeze(0), self.config.denoise_below)
        if self.config.shared_curves:
            level = ((full.clamp(-1, 1) + 1) * (0.5 * (self.levels - 1)) + 0.5).floor().long()
            out = self.table[level * 256 + source.long()]
        else:
            out = (apply_curves(source.float() / 255, full, self.config.iterations) * 255 + 0.5).floor().clamp(0, 255)
        return out[0].permute(1, 2, 0).to(torch.uint8)

    def example_inputs(self, height: int, width: int, device: str | torch.device = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        h, w = self.config.estimation_size(height, width)
        frame = torch.randint(0, 256, (height, width, 3), dtype=torch.uint8, device=device)
        return frame, torch.empty((h, w), dtype=torch.uint8, device=device)


def export_program(program: FrameProgram, height: int = 720, width: int = 1280) -> "torch.export.ExportedProgram":
    """torch.export with dynamic H, W (and estimation h, w): the step torch-tensorrt's dynamo path takes."""
    H = torch.export.Dim("H", min=TRT_MIN, max=TRT_MAX)
    W = torch.export.Dim("W", min=TRT_MIN, max=TRT_MAX)
    h = torch.export.Dim("h", min=1, max=TRT_MAX)
    w = torch.export.Dim("w", min=1, max=TRT_MAX)
    dynamic = {"frame": {0: H, 1: W}, "size": {0: h, 1: w}}
    return torch.export.export(program, program.example_inputs(height, width), dynamic_shapes=dynamic)


# --- the engine cache ---------------------------------------------------------------------


def cache_dir() -> Path:
    """$REALTIME_ENHANCE_CACHE, else $XDG_CACHE_HOME/realtime-enhance, else ~/.cache/realtime-enhance."""
    if os.environ.get("REALTIME_ENHANCE_CACHE"):
        return Path(os.environ["REALTIME_ENHANCE_CACHE"])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "realtime-enhance"


def engine_cache_key(checkpoint: Checkpoint, precision: str, shape_range: tuple[int, int, int], gpu: str,
                     tensorrt_version: str, torch_tensorrt_version: str) -> str:
    """A file name that changes whenever anything the compiled engine depends on changes."""
    fields = {"weights": checkpoint.digest(), "precision": precision, "shapes": list(shape_range),
              "gpu": gpu, "tensorrt": tensorrt_version, "torch_tensorrt": torch_tensorrt_version,
              "torch": torch.__version__}
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:20]
    return f"dcenet-{digest}.ep"


# --- backends -----------------------------------------------------------------------------


class CUDABackend:
    """FrameProgram on CUDA: fp16 net in channels-last, pinned host buffers, its own stream."""

    name = "cuda"

    def __init__(self, checkpoint: Checkpoint, program: torch.nn.Module | None = None) -> None:
        self.device = torch.device("cuda")
        self.config = checkpoint.config
        half = FrameProgram(from_checkpoint(checkpoint), torch.float16)
        half.net = half.net.to(memory_format=torch.channels_last).half()
        self.eager = half.to(self.device).eval()  # also serves curves()
        self.program = program or self.eager
        self.stream = torch.cuda.Stream()
        self._buffers: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}

    def _buffers_for(self, height: int, width: int):
        key = (height, width)
        if key not in self._buffers:
            h, w = self.config.estimation_size(height, width)
            host_in = torch.empty((height, width, 3), dtype=torch.uint8).pin_memory()
            host_out = torch.empty((height, width, 3), dtype=torch.uint8).pin_memory()
            size = torch.empty((h, w), dtype=torch.uint8, device=self.device)
            self._buffers = {key: (host_in, host_out, size)}  # one size at a time: video
        return self._buffers[key]

    @torch.inference_mode()
    def _run(self, frame: np.ndarray) -> torch.Tensor:
        host_in, host_out, size = self._buffers_for(*frame.shape[:2])
        host_in.numpy()[...] = frame
        with torch.cuda.stream(self.stream):
            result = self.program(host_in.to(self.device, non_blocking=True), size)
            host_out.copy_(result, non_blocking=True)
        self.stream.synchronize()
        return host_out

    def enhance_rgb(self, frame: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The whole per-frame computation on the GPU: (H, W, 3) uint8 -> (H, W, 3) uint8."""
        result = self._run(frame).numpy()
        if out is None:
            return result.copy()
        out[...] = result
        return out

    @torch.inference_mode()
    def maps(self, small: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(small, dtype=np.float32)).to(self.device).permute(2, 0, 1)[None]
        return self.eager.net(x.half().contiguous(memory_format=torch.channels_last))[0].float() \
            .permute(1, 2, 0).cpu().numpy()

    def close(self) -> None:
        self._buffers.clear()


def _compile_tensorrt(checkpoint: Checkpoint):
    """Load the cached TensorRT program for this net and GPU, or compile and cache it."""
    import tensorrt
    import torch_tensorrt

    gpu = torch.cuda.get_device_name(0)
    net = from_checkpoint(checkpoint)
    key = engine_cache_key(checkpoint, "fp16", (TRT_MIN, TRT_OPT, TRT_MAX), gpu, tensorrt.__version__, torch_tensorrt.__version__)
    path = cache_dir() / key
    if path.exists():
        log.info("tensorrt: cached engine %s", path)
        return torch_tensorrt.load(str(path)).module()
    log.warning("tensorrt: compiling the engine for %s (once per GPU and weights; cached in %s)", gpu, path.parent)
    program = FrameProgram(net, torch.float16).cuda().eval()
    program.net.half()
    exported = export_program(program)
    inputs = [
        torch_tensorrt.Input(min_shape=(TRT_MIN, TRT_MIN, 3), opt_shape=(TRT_OPT, 1920, 3),
                             max_shape=(TRT_MAX, TRT_MAX, 3), dtype=torch.uint8),
        torch_tensorrt.Input(min_shape=(1, 1), opt_shape=program.config.estimation_size(TRT_OPT, 1920),
                             max_shape=(TRT_MAX, TRT_MAX), dtype=torch.uint8),
    ]
    compiled = torch_tensorrt.dynamo.compile(exported, inputs=inputs, enabled_precisions={torch.float16})
    path.parent.mkdir(parents=True, exist_ok=True)
    torch_tensorrt.save(compiled, str(path), inputs=list(program.example_inputs(TRT_OPT, 1920, "cuda")))
    return compiled


class TensorRTBackend(CUDABackend):
    """The FrameProgram compiled by torch-tensorrt (fp16), run like the cuda backend."""

    name = "tensorrt"

    def __init__(self, checkpoint: Checkpoint) -> None:
        super().__init__(checkpoint, program=_compile_tensorrt(checkpoint))

    def enhance_rgb(self, frame: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        height, width = frame.shape[:2]
        if not (TRT_MIN <= height <= TRT_MAX and TRT_MIN <= width <= TRT_MAX):
            raise ValueError(f"tensorrt backend: frames from {TRT_MIN} to {TRT_MAX} pixels a side, got {width}x{height}")
        return super().enhance_rgb(frame, out)


def availability(name: str) -> str | None:
    """None when backend `name` can run here, else the reason it cannot."""
    if not torch.cuda.is_available():
        build = " (this torch is a CPU-only build)" if torch.version.cuda is None else ""
        return f"{name}: no CUDA device{build}"
    if name == "tensorrt":
        try:
            import tensorrt  # noqa: F401
            import torch_tensorrt  # noqa: F401
        except ImportError as exc:
            return f"tensorrt: torch-tensorrt is not installed ({exc.name}); pip install 'realtime-enhance[tensorrt]'"
    return None


def create(name: str, checkpoint: Checkpoint):
    why = availability(name)
    if why:
        raise BackendUnavailable(why)
    try:
        return TensorRTBackend(checkpoint) if name == "tensorrt" else CUDABackend(checkpoint)
    except BackendUnavailable:
        raise
    except Exception as exc:  # a failed compile or CUDA error: say so, let auto fall back
        raise BackendUnavailable(f"{name}: failed to start ({exc.__class__.__name__}: {str(exc).splitlines()[0][:200]})") from exc
