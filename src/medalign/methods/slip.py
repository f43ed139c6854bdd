"""SLIP's image self-supervision pieces: the SimCLR projection head (Mu et al., ECCV 2022).

SLIP adds to CLIP's image–text loss an image–image NT-Xent (`medalign.losses.nt_xent_loss`) on
two augmented views, computed on the image tower's pooled features through its own MLP head
(SLIP: 3 layers, 4096 wide, 256 out; here 2 layers, tower-wide, `out_dim` out — small models).
"""

from __future__ import annotations

import torch
from torch import nn


class SlipHead(nn.Module):
    """MLP projection head of the image–image term, kept apart from the CLIP projection.

    Args:
        in_dim: pooled image-tower width.
        hidden_dim: hidden width (default: `in_dim`).
        out_dim: output width of the NT-Xent space.
    """

    def __init__(self, in_dim: int, hidden_dim: int | None = None, out_dim: int = 128) -> None:
        super().__init__()
        hidden_dim = hidden_dim or in_dim
        self.net = nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.ReLU(inplace=True), nn.Linear(hidden_dim, out_dim))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Pooled features (B, in_dim) → unnormalised projections (B, out_dim)."""
        return self.net(features)
