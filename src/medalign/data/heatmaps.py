"""The heatmap invariant, in one place: every gaze heatmap medalign uses has peak 1 per image.

`peak_normalise` is the only function that scales heatmaps. It is applied where heatmaps are
made (`medalign prepare` gaze rendering and reader averaging, the synthetic renderer, the
random-heatmap control), where they are read (the dataset re-normalises files from elsewhere),
and where they are consumed (the heatmap processor re-normalises after the training crop, which
can cut the peak away). Values are clipped to ≥ 0; an all-zero map stays all zeros when
`allow_zero` is set (e.g. every fixation off the image) and is an error otherwise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

import numpy as np

if TYPE_CHECKING:  # torch is imported only for tensors: `medalign prepare` stays torch-free
    import torch

Heatmap = TypeVar("Heatmap", np.ndarray, "torch.Tensor")


def peak_normalise(heatmap: Heatmap, allow_zero: bool = True, eps: float = 1e-6) -> Heatmap:
    """Scale each map (the last two dims) so its maximum is 1; negatives clipped to 0.

    Args:
        heatmap: (H, W), (1, H, W) or (B, 1, H, W) — a numpy array (float32 out) or a tensor.
        allow_zero: keep all-zero maps as zeros (True) or raise (False).
        eps: peaks at or below this count as zero.

    Raises:
        ValueError: an all-zero map with ``allow_zero=False``.
    """
    if isinstance(heatmap, np.ndarray):
        clipped = np.clip(heatmap.astype(np.float32, copy=False), 0, None)
        peak = clipped.max(axis=(-2, -1), keepdims=True)
        if not allow_zero and (peak <= eps).any():
            raise ValueError("heatmap is all zeros")
        return np.where(peak > eps, clipped / np.maximum(peak, eps), 0.0).astype(np.float32)
    import torch

    clipped = heatmap.clamp_min(0)
    peak = clipped.amax(dim=(-2, -1), keepdim=True)
    if not allow_zero and bool((peak <= eps).any()):
        raise ValueError("heatmap is all zeros")
    return torch.where(peak > eps, clipped / peak.clamp_min(eps), torch.zeros_like(clipped))


def check_heatmap(heatmap: "torch.Tensor", image_shape: tuple[int, int], where: str) -> "torch.Tensor":
    """The one heatmap rule of training and `medalign saliency`: the image's size, finite, not all zero.

    Args:
        heatmap: the raw map, (1, H, W).
        image_shape: (H, W) of the row's image before any transform.
        where: the manifest, row and heatmap file, put in front of every message.

    Returns:
        The map scaled to peak 1 (`peak_normalise`).

    Raises:
        ValueError: another shape than the image, a NaN / Inf, or an all-zero map.
    """
    import torch

    if tuple(heatmap.shape[-2:]) != tuple(image_shape):
        raise ValueError(f"{where} has shape {tuple(heatmap.shape[-2:])} but its image is {tuple(image_shape)}; "
                         "resize the heatmap to the image (or fix the row's paths)")
    if not torch.isfinite(heatmap).all():
        raise ValueError(f"{where} contains NaN or Inf")
    if float(heatmap.max()) <= 0:
        raise ValueError(f"{where} is all zeros (no fixation): drop the row's heatmap path")
    return peak_normalise(heatmap)
