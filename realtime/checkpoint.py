"""Model configurations and checkpoints, without PyTorch.

A checkpoint is a :class:`ModelConfig` plus the DCE-Net's weights as NumPy arrays.
This project writes them as safetensors files with the config (and training metadata)
as JSON in the header, so that the engine can load and run the default model on a CPU
without importing torch (which costs ~1 s and ~200 MB per process). The official
Zero-DCE / Zero-DCE++ / Zero-DCE-improved releases are PyTorch pickles: those, and this
project's older `.pt` checkpoints, are read through torch, imported only then.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

#: Weights smaller than this are float32 denormals; on x86 CPUs each multiply by
#: one takes ~100 cycles, which makes the official checkpoints ~20x slower.
DENORMAL_LIMIT = 1.2e-38

FORMAT = "realtime-enhance/dcenet"


@dataclass(frozen=True)
class ModelConfig:
    """Everything that defines a DCE-Net; stored inside every checkpoint."""

    width: int = 32  # channels of the hidden convolutions
    conv: Literal["plain", "dwsep"] = "plain"  # 3x3 convs, or depthwise 3x3 + pointwise 1x1
    shared_curves: bool = False  # 3 maps used by all iterations (Zero-DCE++), else 3 per iteration
    iterations: int = 8  # how many times the curve is applied
    pool_before_conv4: bool = False  # 3x3 stride-1 max-pool on conv3's output (Zero-DCE-improved)
    # Resolution at which curves are estimated. long_side > 0: the net sees a copy whose
    # long side is that many pixels (never upscaled), so its cost does not depend on the
    # frame size. Otherwise the frame is divided by `scale` (1 = full resolution).
    long_side: int = 0
    scale: float = 1.0
    downsample: Literal["area", "bilinear"] = "area"  # how the net's input is made
    # Where the upsampled maps sample the low-resolution ones: "half_pixel" aligns
    # pixel areas (no offset); "corners" aligns corner pixel centres (the published
    # Zero-DCE++ code's nn.UpsamplingBilinear2d).
    upsample_grid: Literal["half_pixel", "corners"] = "half_pixel"
    # The net sees x ** input_gamma. Below 1 it spreads the darkest values apart, which a
    # small net otherwise barely tells apart (1.0 = the published models).
    input_gamma: float = 1.0
    # Dark-region denoising before the curves: input levels below `denoise_below` (0..255)
    # are blended towards their 3x3 mean, fully at black, not at all from the threshold up.
    # The curves multiply shadow noise by up to (1 + α)^8; this removes most of it where
    # the gain is high and leaves brighter detail alone. 0 = off (the published models).
    denoise_below: int = 0
    # A tone head (this project's models): from the net's pooled features, a black point
    # and a gain per channel for the whole frame, applied before the curves (x -> (x -
    # black)·gain, clipped to [0, 1]), so that a model can set the frame's exposure, keep
    # its noise floor black and balance its colour; the curves then shape it locally. The
    # published models have none (black 0, gain 1). See tone_parameters.
    tone: bool = False
    # The tone head also reads the small copy's darkest R, G, B: the frame's noise floor
    # (the area-downscaled copy averages the noise of its black regions into their mean).
    tone_reads_floor: bool = False
    # Leave good light alone: the engine attenuates the curves on well-lit frames
    # (realtime.controls). For this project's models, whose training lifts whatever it
    # sees; off for the published ones, which then compute what their papers describe.
    attenuate_good_light: bool = False
    # Photos (Enhancer.enhance_photo, the command line's images) get an edge-preserving
    # filter as strong as the picture was lifted: this project's models; off for the
    # published ones, whose papers describe no such step.
    photo_filter: bool = False

    def __post_init__(self) -> None:
        if self.width < 1 or self.iterations < 1:
            raise ValueError(f"width and iterations must be positive, got {self}")
        if self.conv not in ("plain", "dwsep"):
            raise ValueError(f"conv must be 'plain' or 'dwsep', got {self.conv!r}")
        if self.long_side < 0 or self.scale < 1:
            raise ValueError(f"long_side must be >= 0 and scale >= 1, got {self}")
        if not 0 <= self.denoise_below <= 128 or (self.denoise_below and 256 % self.denoise_below):
            raise ValueError(f"denoise_below must be 0 or a power of two up to 128, got {self.denoise_below}")

    @property
    def curve_maps(self) -> int:
        return 3 if self.shared_curves else 3 * self.iterations

    @property
    def tone_inputs(self) -> int:
        """Features the tone head reads: mean and max of conv6's channels, mean and max
        (and with tone_reads_floor the min) of the small copy's R, G, B."""
        return 2 * self.width + (9 if self.tone_reads_floor else 6)

    def estimation_size(self, height: int, width: int) -> tuple[int, int]:
        """(h, w) of the copy the net sees for a height x width frame."""
        if self.long_side > 0:  # round half up, in integers (as the exported program computes it)
            longest = max(height, width)
            return (max(1, min(height, (2 * height * self.long_side + longest) // (2 * longest))),
                    max(1, min(width, (2 * width * self.long_side + longest) // (2 * longest))))
        if self.scale == 1:
            return height, width
        return max(1, int(height / self.scale)), max(1, int(width / self.scale))


#: The published checkpoints, as configurations.
REFERENCE_CONFIGS: dict[str, ModelConfig] = {
    "zero_dce": ModelConfig(width=32, conv="plain"),
    "zero_dce_improved": ModelConfig(width=16, conv="plain", pool_before_conv4=True),
    "zero_dce_pp": ModelConfig(
        width=32, conv="dwsep", shared_curves=True, scale=12,
        downsample="bilinear", upsample_grid="corners",
    ),
}


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the architecture."""


@dataclass(frozen=True)
class Checkpoint:
    """A model configuration and its weights: name -> float32 array, in the published key
    layout (`e_conv1.weight` (out, in, 3, 3), or `e_conv1.depth_conv.weight`, ...)."""

    config: ModelConfig
    state: dict[str, np.ndarray]
    meta: dict = field(default_factory=dict)

    def digest(self) -> str:
        """A short hash of config and weights (engine caches are keyed by it)."""
        h = hashlib.sha256(repr(dataclasses.asdict(self.config)).encode())
        for name, array in sorted(self.state.items()):
            h.update(name.encode())
            h.update(np.ascontiguousarray(array, dtype=np.float32).tobytes())
        return h.hexdigest()[:16]

    def replace(self, **changes: object) -> "Checkpoint":
        """The same weights with some config fields changed (e.g. denoise_below=0)."""
        return dataclasses.replace(self, config=dataclasses.replace(self.config, **changes))


def expected_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Every key a DCE-Net of this config holds, with its shape."""
    w, shapes = config.width, {}
    layers = {"e_conv1": (3, w), "e_conv2": (w, w), "e_conv3": (w, w), "e_conv4": (w, w),
              "e_conv5": (2 * w, w), "e_conv6": (2 * w, w), "e_conv7": (2 * w, config.curve_maps)}
    for name, (cin, cout) in layers.items():
        if config.conv == "plain":
            shapes[f"{name}.weight"], shapes[f"{name}.bias"] = (cout, cin, 3, 3), (cout,)
        else:
            shapes[f"{name}.depth_conv.weight"], shapes[f"{name}.depth_conv.bias"] = (cin, 1, 3, 3), (cin,)
            shapes[f"{name}.point_conv.weight"], shapes[f"{name}.point_conv.bias"] = (cout, cin, 1, 1), (cout,)
    if config.tone:
        shapes["tone.weight"], shapes["tone.bias"] = (6, config.tone_inputs), (6,)
    return shapes


#: The tone head's ranges: black = TONE_BLACK·tanh(z) (a negative black lifts the floor);
#: gain = TONE_TARGET / (mean luma of the small copy − black) · e^(TONE_RANGE·tanh(z')), at
#: most TONE_MAX_GAIN: the net learns how far from a mean of TONE_TARGET each frame should
#: go, so that a darker frame gets more gain without the net having to learn the division.
TONE_BLACK, TONE_TARGET, TONE_RANGE, TONE_FLOOR, TONE_MAX_GAIN = 0.15, 0.4, 2.0, 0.004, 64.0
TONE_LUMA = (0.2126, 0.7152, 0.0722)


def tone_parameters(z: np.ndarray, small_mean: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(black, gain), each (3,) float32, from the tone head's output z (6,) and the small
    copy's mean R, G, B (3,) in [0, 1]; realtime.model.tone_parameters is the same in torch."""
    z = np.asarray(z, np.float64)
    luma = np.asarray(TONE_LUMA)
    black = TONE_BLACK * np.tanh(z[:3])
    mean = max(float(np.asarray(small_mean, np.float64) @ luma - black @ luma), TONE_FLOOR)
    gain = np.minimum(np.exp(TONE_RANGE * np.tanh(z[3:])) * (TONE_TARGET / mean), TONE_MAX_GAIN)
    return black.astype(np.float32), gain.astype(np.float32)


def flush_denormals(state: dict[str, np.ndarray]) -> int:
    """Set every |w| < DENORMAL_LIMIT to 0, in place. Returns how many were flushed."""
    flushed = 0
    for array in state.values():
        tiny = np.abs(np.asarray(array)) < DENORMAL_LIMIT
        flushed += int(np.count_nonzero(tiny & (array != 0)))
        array[tiny] = 0
    return flushed


def infer_config(state: dict[str, object]) -> ModelConfig:
    """The configuration a bare state dict was made with, from its keys and shapes.

    Width, conv type and map count come from the shapes; what the keys cannot show
    (the max-pool, the estimation scale) comes from the matching reference config.
    """
    if "e_conv1.weight" in state:
        conv, first, last = "plain", "e_conv1.weight", "e_conv7.weight"
    elif "e_conv1.point_conv.weight" in state:
        conv, first, last = "dwsep", "e_conv1.point_conv.weight", "e_conv7.point_conv.weight"
    else:
        raise CheckpointError("no e_conv1 weights: not a DCE-Net state dict")
    if last not in state:
        raise CheckpointError(f"missing key {last}")
    width, maps = state[first].shape[0], state[last].shape[0]
    if maps % 3:
        raise CheckpointError(f"{last} has {maps} output maps, not a multiple of 3")
    shared = maps == 3
    iterations = 8 if shared else maps // 3
    for ref in REFERENCE_CONFIGS.values():
        if (ref.conv, ref.width, ref.shared_curves) == (conv, width, shared):
            return dataclasses.replace(ref, iterations=iterations)
    return ModelConfig(width=width, conv=conv, shared_curves=shared, iterations=iterations)


def checked(config: ModelConfig, state: dict[str, np.ndarray], meta: dict, path: Path) -> Checkpoint:
    """A Checkpoint from raw parts: float32 copies, denormals flushed, keys and shapes
    checked against the config (CheckpointError naming the file otherwise)."""
    state = {k: np.array(v, dtype=np.float32) for k, v in state.items()}
    expected = expected_shapes(config)
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    problems = [f"missing keys {missing}"] if missing else []
    problems += [f"unexpected keys {unexpected}"] if unexpected else []
    if problems:
        raise CheckpointError(f"{path}: does not fit {config}: " + "; ".join(problems))
    for key, shape in expected.items():
        if state[key].shape != shape:
            raise CheckpointError(f"{path}: shape mismatch for {key}: {state[key].shape} in the file, {shape} expected")
    flush_denormals(state)
    return Checkpoint(config, state, meta)


def load_weights(path: str | Path) -> Checkpoint:
    """Load any supported checkpoint as NumPy arrays.

    The format is told by the content, whatever the name: safetensors (this project's
    format, config in the header, or a bare state dict), or a PyTorch pickle (torch is
    imported then): this project's older `.pt` checkpoints, or the official releases.
    Denormal weights are flushed. Raises CheckpointError naming the file and what does
    not fit.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    with path.open("rb") as f:
        head = f.read(9)
    # safetensors: an 8-byte little-endian header length, then the JSON header. Its first
    # byte is 0x80 whenever that length is 128 mod 256, so the header decides before a
    # pickle's 0x80 (or a zip archive's "PK") is looked for.
    safetensors = len(head) == 9 and head[8:9] == b"{"
    torch_file = not safetensors and (head[:2] == b"PK" or head[:1] == b"\x80")
    config, state, meta = _read_torch(path) if torch_file else _read_safetensors(path)
    try:
        config = config or infer_config(state)
    except CheckpointError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    return checked(config, state, meta, path)


def _read_safetensors(path: Path) -> tuple[ModelConfig | None, dict, dict]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            header = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
        config = ModelConfig(**json.loads(header["config"])) if "config" in header else None
        return config, state, json.loads(header.get("meta", "{}"))
    except (SafetensorError, OSError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{path}: not a readable safetensors checkpoint ({exc})") from None


def _read_torch(path: Path) -> tuple[ModelConfig | None, dict, dict]:
    from .errors import import_torch

    torch = import_torch(f"{path.name}: reading a PyTorch checkpoint")

    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt files
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({exc.__class__.__name__})") from None
    if not isinstance(blob, dict):
        raise CheckpointError(f"{path}: expected a dict, found {type(blob).__name__}")
    try:
        if "state_dict" in blob and "config" in blob:
            config, state, meta = ModelConfig(**blob["config"]), blob["state_dict"], blob.get("meta", {})
        else:
            config, state, meta = None, blob, {}
        arrays = {k: v.detach().float().numpy() for k, v in state.items() if isinstance(v, torch.Tensor)}
    except (TypeError, ValueError, AttributeError) as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    return config, arrays, meta


def save_weights(path: str | Path, checkpoint: Checkpoint) -> None:
    """Write a checkpoint as safetensors, config and metadata as JSON in its header.
    Written to a temporary name in the same folder, then renamed: never half a file."""
    from safetensors.numpy import save_file

    path = Path(path)
    header = {"format": FORMAT, "config": json.dumps(dataclasses.asdict(checkpoint.config)),
              "meta": json.dumps(checkpoint.meta, default=str)}
    partial = path.with_name(f".{path.name}.partial")
    save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in checkpoint.state.items()},
              str(partial), metadata=header)
    partial.chmod(0o644)  # safetensors creates files private to their owner
    partial.replace(path)
