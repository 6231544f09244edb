"""The four zero-reference losses of Zero-DCE (Guo et al., CVPR 2020, section 3.3).

They follow the published code, which trained the published weights, where it differs
from the paper's formulas (noted per loss). All take float tensors: images (N, 3, H, W) in [0, 1], curve maps (N, C, H, W) in [-1, 1].
Each returns a scalar tensor; the weights are applied by the caller.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

# Differences to the 4 neighbours (left, right, up, down) as one conv with 4 kernels.
_NEIGHBOURS = torch.tensor(
    [
        [[0, 0, 0], [-1, 1, 0], [0, 0, 0]],
        [[0, 0, 0], [0, 1, -1], [0, 0, 0]],
        [[0, -1, 0], [0, 1, 0], [0, 0, 0]],
        [[0, 0, 0], [0, 1, 0], [0, -1, 0]],
    ],
    dtype=torch.float32,
).unsqueeze(1)


def spatial_consistency(enhanced: torch.Tensor, original: torch.Tensor, region: int = 4) -> torch.Tensor:
    """L_spa: keep the contrast between neighbouring 4x4 regions of the input.

    Both images are averaged over channels and pooled over region x region blocks; the
    squared change of each block's difference to its 4 neighbours is averaged (the
    paper compares absolute differences; the code, followed here, signed ones).
    """
    k = _NEIGHBOURS.to(enhanced.device, enhanced.dtype)
    e = F.avg_pool2d(enhanced.mean(1, keepdim=True), region)
    o = F.avg_pool2d(original.mean(1, keepdim=True), region)
    d_e = F.conv2d(e, k, padding=1)
    d_o = F.conv2d(o, k, padding=1)
    return ((d_o - d_e) ** 2).sum(1).mean()


def exposure_control(enhanced: torch.Tensor, level: float = 0.6, patch: int = 16) -> torch.Tensor:
    """L_exp: mean (Y − E)² over non-overlapping patch x patch regions, Y the region's
    mean intensity (over channels) and E the well-exposedness level (the paper: |Y − E|)."""
    y = F.avg_pool2d(enhanced.mean(1, keepdim=True), patch)
    return ((y - level) ** 2).mean()


def color_constancy(enhanced: torch.Tensor) -> torch.Tensor:
    """L_col: gray-world on the channel means; with d_pq = (mean_p − mean_q)², the code's
    sqrt(d_rg² + d_rb² + d_gb²), averaged over the batch (the paper: Σ d_pq)."""
    r, g, b = enhanced.mean((2, 3)).unbind(1)
    d = torch.stack([(r - g) ** 2, (r - b) ** 2, (g - b) ** 2], 1)
    return (d.pow(2).sum(1) + 1e-12).sqrt().mean()


def illumination_smoothness(alpha: torch.Tensor) -> torch.Tensor:
    """L_tvA: squared horizontal and vertical gradients of the curve maps, as in the
    published code: 2·(mean dh² + mean dw²) per map, averaged over the batch."""
    n, _, h, w = alpha.shape
    dh = (alpha[:, :, 1:, :] - alpha[:, :, :-1, :]).pow(2).sum() / max(1, (h - 1) * w)
    dw = (alpha[:, :, :, 1:] - alpha[:, :, :, :-1]).pow(2).sum() / max(1, h * (w - 1))
    return 2 * (dh + dw) / n


def ssim_loss(image: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """1 − SSIM (11x11 Gaussian window, σ 1.5, as realtime.metrics.ssim) of (N, 3, H, W)
    images in [0, 1], averaged over channels and valid positions."""
    t = torch.arange(11, dtype=image.dtype, device=image.device) - 5
    g = torch.exp(-t * t / (2 * 1.5**2))
    g = g / g.sum()
    window = (g[:, None] * g[None, :]).expand(3, 1, 11, 11)
    c1, c2 = 0.01**2, 0.03**2

    def blur(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, window, groups=3)

    mx, my = blur(image), blur(reference)
    vx, vy = blur(image * image) - mx * mx, blur(reference * reference) - my * my
    cxy = blur(image * reference) - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return 1 - s.mean()
