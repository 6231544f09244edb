"""The DCE-Net family: one configurable architecture, its curves, and checkpoint I/O.

Zero-DCE (Guo et al., CVPR 2020), Zero-DCE++ (Li et al., TPAMI 2021) and
"Zero-DCE-improved" are configurations of :class:`DCENet`. A checkpoint written by
:func:`save_checkpoint` stores its :class:`ModelConfig`; a bare state dict (the
official releases) is matched to a configuration by its keys and shapes.

Sign convention: the paper writes LE(x) = x + α·x·(1 − x); the published code
computes x + r·(x² − x) with r = tanh(conv7(...)). Both are the same curve with
α = −r, and :meth:`DCENet.forward` returns α in the paper's convention.
"""
from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

#: Weights smaller than this are float32 denormals; on x86 CPUs each multiply by
#: one takes ~100 cycles, which makes the official checkpoints ~20x slower.
DENORMAL_LIMIT = 1.2e-38


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

    def estimation_size(self, height: int, width: int) -> tuple[int, int]:
        """(h, w) of the copy the net sees for a height x width frame."""
        if self.long_side > 0:
            factor = max(height, width) / self.long_side
            if factor <= 1:
                return height, width
            return max(1, round(height / factor)), max(1, round(width / factor))
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


class _DepthwiseSeparable(nn.Module):
    """Depthwise 3x3 then pointwise 1x1, with the published key names."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.depth_conv = nn.Conv2d(cin, cin, 3, padding=1, groups=cin)
        self.point_conv = nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.point_conv(self.depth_conv(x))


class DCENet(nn.Module):
    """Estimates curve parameters α from an image.

    Input: (N, 3, h, w) float RGB in [0, 1], usually a downscaled copy of the frame.
    Output: α of shape (N, config.curve_maps, h, w) in (-1, 1); channels 3i..3i+2 are
    the R, G, B maps of iteration i (or of every iteration when curves are shared).
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        w = config.width

        def layer(cin: int, cout: int) -> nn.Module:
            if config.conv == "plain":
                return nn.Conv2d(cin, cout, 3, padding=1)
            return _DepthwiseSeparable(cin, cout)

        self.e_conv1 = layer(3, w)
        self.e_conv2 = layer(w, w)
        self.e_conv3 = layer(w, w)
        self.e_conv4 = layer(w, w)
        self.e_conv5 = layer(2 * w, w)
        self.e_conv6 = layer(2 * w, w)
        self.e_conv7 = layer(2 * w, config.curve_maps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.config.input_gamma != 1.0:
            x = x.clamp_min(0).pow(self.config.input_gamma)
        x1 = F.relu(self.e_conv1(x))
        x2 = F.relu(self.e_conv2(x1))
        x3 = F.relu(self.e_conv3(x2))
        x3p = F.max_pool2d(x3, 3, stride=1, padding=1) if self.config.pool_before_conv4 else x3
        x4 = F.relu(self.e_conv4(x3p))
        x5 = F.relu(self.e_conv5(torch.cat([x3, x4], 1)))
        x6 = F.relu(self.e_conv6(torch.cat([x2, x5], 1)))
        return -torch.tanh(self.e_conv7(torch.cat([x1, x6], 1)))


def apply_curves(image: torch.Tensor, alpha: torch.Tensor, iterations: int = 8) -> torch.Tensor:
    """Apply LE(x) = x + α·x·(1 − x) `iterations` times.

    image: (N, 3, H, W) in [0, 1]. alpha: (N, 3, H, W) shared by all iterations, or
    (N, 3·iterations, H, W) with one map per iteration; values in [-1, 1].
    Returns (N, 3, H, W) in [0, 1] (the curve maps [0, 1] onto itself for |α| ≤ 1).
    """
    per_iteration = alpha.shape[1] != 3
    x = image
    for i in range(iterations):
        a = alpha[:, 3 * i : 3 * i + 3] if per_iteration else alpha
        x = x + a * x * (1 - x)
    return x


def denoise_dark(image: torch.Tensor, below: int) -> torch.Tensor:
    """Blend dark pixels towards their 3x3 mean, in exact integer arithmetic.

    image: (N, 3, H, W) uint8-valued (integers 0..255, any dtype). Level s becomes
    s + w·(mean − s) with w = (below − s)/below for s < below, else s. The integer
    steps match the CPU kernel bit for bit. Returns int32 levels of the same shape.
    """
    s = image.to(torch.int32)
    if below == 0:
        return s
    padded = F.pad(s.float(), (1, 1, 1, 1), mode="replicate").to(torch.int32)
    total = sum(padded[..., i : i + s.shape[-2], j : j + s.shape[-1]] for i in range(3) for j in range(3))
    mean = (total * 7282 + 32768) >> 16  # total / 9, rounded
    weight = (below - s).clamp_min(0) * (256 // below)
    return s + ((weight * (mean - s) + 128) >> 8)


def resize_input(image: torch.Tensor, size: tuple[int, int], config: ModelConfig) -> torch.Tensor:
    """Make the copy the net sees: (N, 3, H, W) -> (N, 3, h, w), by config.downsample."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    if config.downsample == "area":
        return F.interpolate(image, size=size, mode="area")
    return F.interpolate(image, size=size, mode="bilinear", align_corners=False)


def upsample_maps(alpha: torch.Tensor, size: tuple[int, int], config: ModelConfig) -> torch.Tensor:
    """Bilinear upsampling of curve maps to the frame size, on config.upsample_grid."""
    if tuple(alpha.shape[-2:]) == tuple(size):
        return alpha
    corners = config.upsample_grid == "corners"
    return F.interpolate(alpha, size=size, mode="bilinear", align_corners=corners)


def estimate_maps(net: DCENet, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Curve maps for (N, 3, H, W) images in [0, 1]: (full-resolution α, low-resolution α)."""
    config = net.config
    size = config.estimation_size(image.shape[-2], image.shape[-1])
    alpha = net(resize_input(image, size, config))
    return upsample_maps(alpha, tuple(image.shape[-2:]), config), alpha


def curve_input(image: torch.Tensor, config: ModelConfig) -> torch.Tensor:
    """What the curves are applied to: the image, dark-denoised when config asks for it.
    image: (N, 3, H, W), a uint8 image / 255 when denoise_below is set."""
    if not config.denoise_below:
        return image
    return denoise_dark(torch.round(image * 255), config.denoise_below).to(image.dtype) / 255


def enhance(net: DCENet, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The whole computation in PyTorch, the reference for every fast path.

    image: (N, 3, H, W) float in [0, 1] (with denoise_below set, a uint8 image / 255).
    Returns (enhanced (N, 3, H, W), low-res α).
    """
    full, alpha = estimate_maps(net, image)
    return apply_curves(curve_input(image, net.config), full, net.config.iterations), alpha


# --- checkpoints ---------------------------------------------------------------------


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the architecture."""


def flush_denormals(state_dict: dict[str, torch.Tensor]) -> int:
    """Set every |w| < DENORMAL_LIMIT to 0, in place. Returns how many were flushed."""
    flushed = 0
    for tensor in state_dict.values():
        if tensor.is_floating_point():
            tiny = tensor.abs() < DENORMAL_LIMIT
            flushed += int((tiny & (tensor != 0)).sum())
            tensor[tiny] = 0
    return flushed


def infer_config(state_dict: dict[str, torch.Tensor]) -> ModelConfig:
    """The configuration a bare state dict was made with, from its keys and shapes.

    Width, conv type and map count come from the shapes; what the keys cannot show
    (the max-pool, the estimation scale) comes from the matching reference config.
    """
    if "e_conv1.weight" in state_dict:
        conv, first, last = "plain", "e_conv1.weight", "e_conv7.weight"
    elif "e_conv1.point_conv.weight" in state_dict:
        conv, first, last = "dwsep", "e_conv1.point_conv.weight", "e_conv7.point_conv.weight"
    else:
        raise CheckpointError("no e_conv1 weights: not a DCE-Net state dict")
    if last not in state_dict:
        raise CheckpointError(f"missing key {last}")
    width = state_dict[first].shape[0]
    maps = state_dict[last].shape[0]
    if maps % 3:
        raise CheckpointError(f"{last} has {maps} output maps, not a multiple of 3")
    shared = maps == 3
    iterations = 8 if shared else maps // 3
    for ref in REFERENCE_CONFIGS.values():
        if (ref.conv, ref.width, ref.shared_curves) == (conv, width, shared):
            return dataclasses.replace(ref, iterations=iterations)
    return ModelConfig(width=width, conv=conv, shared_curves=shared, iterations=iterations)


def load_checkpoint(path: str | Path) -> DCENet:
    """Load any supported checkpoint: this project's (config inside) or a bare state dict.

    Denormal weights are flushed to zero. Raises CheckpointError naming the file and
    the missing or unexpected keys when it does not fit.
    """
    path = Path(path)
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint") from None
    except Exception as exc:  # torch raises many types for corrupt files
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({exc.__class__.__name__})") from None
    if not isinstance(blob, dict):
        raise CheckpointError(f"{path}: expected a dict, found {type(blob).__name__}")
    try:
        if "state_dict" in blob and "config" in blob:
            config, state = ModelConfig(**blob["config"]), blob["state_dict"]
        else:
            config, state = infer_config(blob), blob
    except (CheckpointError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    state = {k: v.detach().clone().float() for k, v in state.items()}
    flush_denormals(state)
    net = DCENet(config)
    missing, unexpected = net.load_state_dict(state, strict=False)
    problems = []
    if missing:
        problems.append(f"missing keys {missing}")
    if unexpected:
        problems.append(f"unexpected keys {unexpected}")
    if problems:
        raise CheckpointError(f"{path}: does not fit {config}: " + "; ".join(problems))
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: shape mismatch: {str(exc).splitlines()[-1].strip()}") from None
    return net.eval()


def save_checkpoint(path: str | Path, net: DCENet, **meta: object) -> None:
    """Write net's weights with its config (and any extra metadata, e.g. training args)."""
    torch.save(
        {"config": dataclasses.asdict(net.config), "state_dict": net.state_dict(), "meta": meta},
        path,
    )


def weights_digest(net: DCENet) -> str:
    """A short hash of config and weights (engine caches are keyed by it)."""
    h = hashlib.sha256(repr(dataclasses.asdict(net.config)).encode())
    for name, tensor in sorted(net.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]
