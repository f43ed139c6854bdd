"""Heatmap processors: (image, expert heatmap) → an "expert image" I^E of the image's shape.

`HeatmapProcessor` is eCLIP's (Kumar & Marttinen, ECCV 2024, §3.2 and Fig. 2, right): one
shared patch embedding of the image and of the heatmap-overlaid image, multi-head attention
with the overlaid patches as queries and the image's patches as keys and values, a linear
layer and a transposed convolution back to pixels. `MaskProcessor` and `CNNProcessor` are
the ⊙-mask and CNN-encoder rows of the paper's Table 4 ablation. All three share the call
``processor(image (B, C, H, W), heatmap (B, 1, H, W)) -> (B, C, H, W)``.
"""

from __future__ import annotations

import torch
from torch import nn

from medalign.data.heatmaps import peak_normalise


def normalise_heatmap(heatmap: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Scale each sample's heatmap to [0, 1] by its own maximum (negatives clipped to 0).

    Per sample, not per batch, so one sample's peak never dims another's; an all-ones
    heatmap stays all ones (the priming input).

    Args:
        heatmap: (B, 1, H, W).
    """
    return peak_normalise(heatmap, eps=eps)  # the one heatmap invariant (medalign.data.heatmaps)


def _check_inputs(image: torch.Tensor, heatmap: torch.Tensor, channels: int, patch_size: int = 1) -> None:
    if image.ndim != 4 or image.shape[1] != channels:
        raise ValueError(f"image must be (B, {channels}, H, W), got {tuple(image.shape)}")
    if heatmap.shape != (image.shape[0], 1, *image.shape[2:]):
        raise ValueError(f"heatmap must be (B, 1, H, W) = {(image.shape[0], 1, *image.shape[2:])}, got {tuple(heatmap.shape)}")
    if image.shape[2] % patch_size or image.shape[3] % patch_size:
        raise ValueError(f"image size {tuple(image.shape[2:])} is not divisible by the patch size {patch_size}")


class HeatmapProcessor(nn.Module):
    """eCLIP's MHA heatmap processor.

    Args:
        in_channels: image channels (1 or 3).
        patch_size: side of the square patches (16 → 14×14 tokens at 224 px).
        width: token width of the shared patch embedding (256).
        num_heads: attention heads (8).
    """

    def __init__(self, in_channels: int = 3, patch_size: int = 16, width: int = 256, num_heads: int = 8) -> None:
        super().__init__()
        if width % num_heads:
            raise ValueError(f"width {width} must be divisible by num_heads {num_heads}")
        self.in_channels = in_channels
        self.patch_size = patch_size
        self.patch_embed = nn.Conv2d(in_channels, width, kernel_size=patch_size, stride=patch_size)  # shared
        self.attention = nn.MultiheadAttention(width, num_heads, batch_first=True)
        self.linear = nn.Linear(width, width)
        self.unpatchify = nn.ConvTranspose2d(width, in_channels, kernel_size=patch_size, stride=patch_size)

    def forward(self, image: torch.Tensor, heatmap: torch.Tensor) -> torch.Tensor:
        """Expert image I^E (B, C, H, W) from the image (B, C, H, W) and its heatmap (B, 1, H, W)."""
        _check_inputs(image, heatmap, self.in_channels, self.patch_size)
        overlaid = image * normalise_heatmap(heatmap)  # (B, C, H, W)
        keys = self.patch_embed(image)  # (B, W, h, w) with h = H / patch
        grid = keys.shape[2:]
        keys = keys.flatten(2).transpose(1, 2)  # (B, h·w, W)
        queries = self.patch_embed(overlaid).flatten(2).transpose(1, 2)  # (B, h·w, W)
        tokens, _ = self.attention(queries, keys, keys, need_weights=False)  # (B, h·w, W)
        tokens = self.linear(tokens)
        tokens = tokens.transpose(1, 2).reshape(len(image), -1, *grid)  # (B, W, h, w)
        return self.unpatchify(tokens)  # (B, C, H, W)


class MaskProcessor(nn.Module):
    """Table 4 "⊙ Mask": the heatmap as a plain multiplicative mask, I^E = I ⊙ H; no parameters.

    Args:
        in_channels: image channels (1 or 3).
    """

    def __init__(self, in_channels: int = 3) -> None:
        super().__init__()
        self.in_channels = in_channels

    def forward(self, image: torch.Tensor, heatmap: torch.Tensor) -> torch.Tensor:
        _check_inputs(image, heatmap, self.in_channels)
        return image * normalise_heatmap(heatmap)


class CNNProcessor(nn.Module):
    """Table 4 "CNN encoder": a small fully convolutional net on [image, overlaid image].

    Three 3×3 convolutions (2C → width → width → C) with GELUs; any image size.

    Args:
        in_channels: image channels (1 or 3).
        width: hidden channels.
    """

    def __init__(self, in_channels: int = 3, width: int = 32) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.net = nn.Sequential(
            nn.Conv2d(2 * in_channels, width, 3, padding=1),
            nn.GELU(),
            nn.Conv2d(width, width, 3, padding=1),
            nn.GELU(),
            nn.Conv2d(width, in_channels, 3, padding=1),
        )

    def forward(self, image: torch.Tensor, heatmap: torch.Tensor) -> torch.Tensor:
        _check_inputs(image, heatmap, self.in_channels)
        overlaid = image * normalise_heatmap(heatmap)
        return self.net(torch.cat([image, overlaid], dim=1))  # (B, 2C, H, W) → (B, C, H, W)


PROCESSORS = ("mha", "mask", "cnn")


def create_heatmap_processor(
    kind: str = "mha", in_channels: int = 3, patch_size: int = 16, width: int = 256, num_heads: int = 8
) -> nn.Module:
    """A heatmap processor by name.

    Args:
        kind: ``mha`` (eCLIP), ``mask`` (⊙ ablation) or ``cnn`` (CNN-encoder ablation).
        in_channels: image channels.
        patch_size: MHA patch size.
        width: MHA token width (the CNN uses ``width // 8`` hidden channels).
        num_heads: MHA heads.
    """
    if kind == "mha":
        return HeatmapProcessor(in_channels, patch_size, width, num_heads)
    if kind == "mask":
        return MaskProcessor(in_channels)
    if kind == "cnn":
        return CNNProcessor(in_channels, max(width // 8, 8))
    raise ValueError(f"unknown heatmap processor {kind!r}; choose one of {PROCESSORS}")
