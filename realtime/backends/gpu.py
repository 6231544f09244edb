"""GPU backends: `cuda` (PyTorch on CUDA, fp16 net) and `tensorrt` (torch-tensorrt, dynamo path).

For RGB frames both run :class:`FrameProgram`, the whole per-frame computation as
PyTorch ops: uint8 frame -> area downscale -> DCE-Net -> bilinear upsample of the maps
-> tone and curves -> uint8 frame. Frames cross to the GPU once, from a pinned host
buffer, on a stream of their own. For video planes (and any call with controls other
than the model's own) they estimate the curves (`curves`) and the CPU pass applies them.
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
from ..controls import LIGHT_FULL, LIGHT_NONE, LUMA
from ..curves import Curves
from ..errors import install_hint
from ..model import DCENet, from_checkpoint
from . import BackendUnavailable

log = logging.getLogger("realtime")

#: Frame sizes a TensorRT engine accepts (height and width each), and the size it is tuned for.
TRT_MIN, TRT_OPT, TRT_MAX = 64, 1080, 4096


def area_matrix(n_in, n_out) -> torch.Tensor:
    """(n_out, n_in) weights of an area downscale along one axis: output sample i is the
    mean of the input over [i·n_in/n_out, (i+1)·n_in/n_out), fractional pixels counted by
    their share (as OpenCV's INTER_AREA). Built from the (symbolic) sizes with tensor ops,
    so that exported programs keep their height and width dynamic."""
    edges = torch.arange(n_out + 1, dtype=torch.float32) * (n_in / n_out)
    pos = torch.arange(n_in, dtype=torch.float32)
    lo = torch.maximum(edges[:-1, None], pos[None, :])
    hi = torch.minimum(edges[1:, None], pos[None, :] + 1)
    return (hi - lo).clamp_min(0) * (n_out / n_in)


class FrameProgram(nn.Module):
    """(H, W, 3) uint8 frame -> (H, W, 3) uint8 enhanced frame: the whole per-frame
    computation of the CPU engine with the model's own controls, as tensor ops that export
    with dynamic H and W (torch.export, ONNX): the estimation size from the frame's own
    size, an area downscale (two matrix products), the DCE-Net and its tone head, the
    good-light attenuation where the configuration asks for it, a bilinear upsample of the
    maps, the dark denoise (exact, as the CPU kernels), the tone, and the curves iterated in
    float32 as the CPU kernels iterate them.
    """

    def __init__(self, net: DCENet, net_dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.net = net
        self.config = net.config
        self.net_dtype = net_dtype

    def estimation_size(self, height, width):
        """config.estimation_size in integer arithmetic on (symbolic) sizes."""
        c = self.config
        if c.long_side:
            longest = torch.sym_max(height, width)
            return (torch.sym_min(height, (2 * height * c.long_side + longest) // (2 * longest)),
                    torch.sym_min(width, (2 * width * c.long_side + longest) // (2 * longest)))
        return height // int(c.scale), width // int(c.scale)

    def forward(self, frame: torch.Tensor) -> torch.Tensor:
        height, width = frame.shape[0], frame.shape[1]
        h, w = self.estimation_size(height, width)
        x = frame.permute(2, 0, 1).float()  # (3, H, W) levels
        if self.config.downsample == "area":
            small = area_matrix(height, h) @ x @ area_matrix(width, w).T / 255
        else:
            small = F.interpolate(x[None] / 255, size=(h, w), mode="bilinear", align_corners=False)[0]
        alpha, black, gain = (t.float() for t in self.net.estimate(small[None].to(self.net_dtype)))
        strength = self._strength(small)
        corners = self.config.upsample_grid == "corners"
        full = F.interpolate(alpha, size=(height, width), mode="bilinear", align_corners=corners)[0].clamp(-1, 1)
        v = self._denoised(x, torch.floor(strength * 256 + 0.5) / 256) / 255  # curves.denoise_share
        v = ((v - (black[0] * strength)[:, None, None]) * (1 + (gain[0] - 1) * strength)[:, None, None]).clamp(0, 1)
        n = self.config.iterations
        sets = full.shape[0] // 3
        for i in range(n):  # step i at its share of the schedule (realtime.curves.Schedule): 1, a fraction, or 0
            a = full[3 * (i % sets): 3 * (i % sets) + 3] * (n * strength - i).clamp(0, 1)
            v = v + a * (v - v * v)
        return torch.floor(v * 255 + 0.5).clamp(0, 255).permute(1, 2, 0).to(torch.uint8)

    def _strength(self, small: torch.Tensor) -> torch.Tensor:
        """The good-light attenuation (realtime.controls.light_weight) on the small copy's
        mean luma, or 1 where the configuration has none."""
        if not self.config.attenuate_good_light:
            return small.new_ones(())
        mean = small.mean((1, 2)) @ small.new_tensor(LUMA)
        return ((LIGHT_NONE - mean) / (LIGHT_NONE - LIGHT_FULL)).clamp(0, 1)

    def _denoised(self, x: torch.Tensor, share: torch.Tensor) -> torch.Tensor:
        """The dark denoise on (3, H, W) levels at `share` (the strength, up to 1), in float32
        with the integer rounding of model.denoise_dark (every value is an integer below
        2^24: exact)."""
        below = self.config.denoise_below
        if not below:
            return x
        padded = F.pad(x[None], (1, 1, 1, 1), mode="replicate")
        mean = torch.floor(F.avg_pool2d(padded, 3, stride=1)[0] + 0.5)
        weight = (below - x).clamp_min(0) * ((256 // below) * share)
        return x + torch.floor((weight * (mean - x) + 128) / 256)

    def example_input(self, height: int, width: int, device: str | torch.device = "cpu") -> torch.Tensor:
        return torch.randint(0, 256, (height, width, 3), dtype=torch.uint8, device=device)


def dynamic_shapes() -> dict:
    """Frame height and width both dynamic, within the TensorRT engine's range."""
    return {"frame": {0: torch.export.Dim("H", min=TRT_MIN, max=TRT_MAX),
                      1: torch.export.Dim("W", min=TRT_MIN, max=TRT_MAX)}}


def export_program(program: FrameProgram, height: int = 720, width: int = 1280) -> "torch.export.ExportedProgram":
    """torch.export with dynamic H, W: the step torch-tensorrt's dynamo path takes."""
    return torch.export.export(program, (program.example_input(height, width),), dynamic_shapes=dynamic_shapes())


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
            host_in = torch.empty((height, width, 3), dtype=torch.uint8).pin_memory()
            host_out = torch.empty((height, width, 3), dtype=torch.uint8).pin_memory()
            self._buffers = {key: (host_in, host_out)}  # one size at a time: video
        return self._buffers[key]

    @torch.inference_mode()
    def _run(self, frame: np.ndarray) -> torch.Tensor:
        host_in, host_out = self._buffers_for(*frame.shape[:2])
        host_in.numpy()[...] = frame
        with torch.cuda.stream(self.stream):
            result = self.program(host_in.to(self.device, non_blocking=True))
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
    def curves(self, small: np.ndarray) -> Curves:
        x = torch.from_numpy(np.ascontiguousarray(small, dtype=np.float32)).to(self.device).permute(2, 0, 1)[None]
        alpha, black, gain = self.eager.net.estimate(x.half().contiguous(memory_format=torch.channels_last))
        return Curves(alpha[0].float().permute(1, 2, 0).cpu().numpy(), black[0].float().cpu().numpy(),
                      gain[0].float().cpu().numpy())

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
    inputs = [torch_tensorrt.Input(min_shape=(TRT_MIN, TRT_MIN, 3), opt_shape=(TRT_OPT, 1920, 3),
                                   max_shape=(TRT_MAX, TRT_MAX, 3), dtype=torch.uint8)]
    compiled = torch_tensorrt.dynamo.compile(exported, inputs=inputs, enabled_precisions={torch.float16})
    path.parent.mkdir(parents=True, exist_ok=True)
    torch_tensorrt.save(compiled, str(path), inputs=[program.example_input(TRT_OPT, 1920, "cuda")])
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
            return f"tensorrt: torch-tensorrt is not installed ({exc.name}); {install_hint('tensorrt')}"
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
