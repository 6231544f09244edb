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

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .checkpoint import (  # noqa: F401  (re-exported: the model's public names)
    REFERENCE_CONFIGS, TONE_BLACK, TONE_FLOOR, TONE_LUMA, TONE_MAX_GAIN, TONE_RANGE, TONE_TARGET, Checkpoint,
    CheckpointError, ModelConfig, flush_denormals, infer_config, load_weights, save_weights,
)


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
    :meth:`estimate` also returns the frame's tone (black point and gain per channel).
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
        if config.tone:
            self.tone = nn.Linear(config.tone_inputs, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.estimate(x)[0]

    def estimate(self, small: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(α (N, C, h, w), black (N, 3), gain (N, 3)) for small copies (N, 3, h, w) in [0, 1].
        Without a tone head black is 0 and gain 1."""
        x = small
        if self.config.input_gamma != 1.0:
            x = x.clamp_min(0).pow(self.config.input_gamma)
        x1 = F.relu(self.e_conv1(x))
        x2 = F.relu(self.e_conv2(x1))
        x3 = F.relu(self.e_conv3(x2))
        x3p = F.max_pool2d(x3, 3, stride=1, padding=1) if self.config.pool_before_conv4 else x3
        x4 = F.relu(self.e_conv4(x3p))
        x5 = F.relu(self.e_conv5(torch.cat([x3, x4], 1)))
        x6 = F.relu(self.e_conv6(torch.cat([x2, x5], 1)))
        alpha = -torch.tanh(self.e_conv7(torch.cat([x1, x6], 1)))
        if not self.config.tone:
            n = small.shape[0]
            return alpha, small.new_zeros(n, 3), small.new_ones(n, 3)
        features = [x6.mean((2, 3)), x6.amax((2, 3)), small.mean((2, 3)), small.amax((2, 3))]
        if self.config.tone_reads_floor:
            features.append(small.amin((2, 3)))
        pooled = torch.cat(features, 1)
        return (alpha, *tone_parameters(self.tone(pooled), small.mean((2, 3))))


def tone_parameters(z: torch.Tensor, small_mean: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(black, gain), each (N, 3), from the tone head's output z (N, 6) and the small
    copy's mean R, G, B (N, 3): checkpoint.tone_parameters in torch."""
    luma = small_mean.new_tensor(TONE_LUMA)
    black = TONE_BLACK * torch.tanh(z[:, :3])
    mean = (small_mean @ luma - black @ luma).clamp_min(TONE_FLOOR)
    gain = torch.exp(TONE_RANGE * torch.tanh(z[:, 3:])) * (TONE_TARGET / mean)[:, None]
    return black, gain.clamp(max=TONE_MAX_GAIN)


def apply_tone(image: torch.Tensor, black: torch.Tensor, gain: torch.Tensor) -> torch.Tensor:
    """(image − black)·gain clipped to [0, 1]; image (N, 3, H, W), black and gain (N, 3)."""
    return ((image - black[:, :, None, None]) * gain[:, :, None, None]).clamp(0, 1)


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


def estimate_maps(net: DCENet, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """What the net estimates for (N, 3, H, W) images in [0, 1]: (full-resolution α,
    low-resolution α, black (N, 3), gain (N, 3))."""
    config = net.config
    size = config.estimation_size(image.shape[-2], image.shape[-1])
    alpha, black, gain = net.estimate(resize_input(image, size, config))
    return upsample_maps(alpha, tuple(image.shape[-2:]), config), alpha, black, gain


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
    full, alpha, black, gain = estimate_maps(net, image)
    toned = apply_tone(curve_input(image, net.config), black, gain)
    return apply_curves(toned, full, net.config.iterations), alpha


# --- checkpoints ---------------------------------------------------------------------


def from_checkpoint(checkpoint: Checkpoint) -> DCENet:
    """A DCENet (eval mode) holding a checkpoint's weights."""
    net = DCENet(checkpoint.config)
    net.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in checkpoint.state.items()})
    return net.eval()


def to_checkpoint(net: DCENet, **meta: object) -> Checkpoint:
    """The weights of `net` as a NumPy Checkpoint (with optional metadata)."""
    state = {k: v.detach().cpu().float().numpy().copy() for k, v in net.state_dict().items()}
    return Checkpoint(net.config, state, dict(meta))


def load_checkpoint(path: str | Path) -> DCENet:
    """Load any supported checkpoint (see checkpoint.load_weights) as a DCENet."""
    return from_checkpoint(load_weights(path))


def save_checkpoint(path: str | Path, net: DCENet, **meta: object) -> None:
    """Write net's weights with its config (and any extra metadata, e.g. training args)
    as a self-describing safetensors file."""
    save_weights(path, to_checkpoint(net, **meta))
