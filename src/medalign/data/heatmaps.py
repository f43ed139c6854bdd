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
