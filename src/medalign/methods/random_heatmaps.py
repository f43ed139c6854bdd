"""Random smooth heatmaps: the control of eCLIP's Table 4 ("+ rand"), in place of expert gaze."""

from __future__ import annotations

import torch

from medalign.data.heatmaps import peak_normalise


def random_smooth_heatmaps(
    batch: int,
    size: tuple[int, int],
    generator: torch.Generator,
    blobs: int = 3,
    sigma: tuple[float, float] = (0.05, 0.15),
) -> torch.Tensor:
    """Sums of Gaussian blobs at uniform random positions, each sample scaled to peak 1.

    They look like gaze heatmaps (a few smooth fixation clusters) but carry no information
    about the image, which is the point of the control.

    Args:
        batch: number of heatmaps B.
        size: (H, W).
        generator: CPU generator that fixes the draw (seed it for reproducibility).
        blobs: Gaussians per heatmap.
        sigma: range of the blob width as a fraction of the image side.

    Returns:
        (B, 1, H, W) float32 in [0, 1], maximum exactly 1 per sample.
    """
    if batch < 0 or blobs < 1 or not 0 < sigma[0] <= sigma[1]:
        raise ValueError(f"need batch ≥ 0, blobs ≥ 1 and 0 < sigma[0] ≤ sigma[1]; got {batch}, {blobs}, {sigma}")
    height, width = size
    centres = torch.rand(batch, blobs, 2, generator=generator)  # (B, K, 2) in [0, 1)
    widths = sigma[0] + (sigma[1] - sigma[0]) * torch.rand(batch, blobs, 1, 1, generator=generator)  # (B, K, 1, 1)
    ys = (torch.arange(height) + 0.5) / height  # (H,)
    xs = (torch.arange(width) + 0.5) / width  # (W,)
    dy = ys.view(1, 1, -1, 1) - centres[..., 0, None, None]  # (B, K, H, 1)
    dx = xs.view(1, 1, 1, -1) - centres[..., 1, None, None]  # (B, K, 1, W)
    maps = torch.exp(-(dy**2 + dx**2) / (2 * widths**2)).sum(1, keepdim=True)  # (B, 1, H, W)
    return peak_normalise(maps)
