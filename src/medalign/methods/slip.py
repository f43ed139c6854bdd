"""SLIP: CLIP plus SimCLR's image–image NT-Xent on two views (Mu et al., ECCV 2022).

SLIP adds to CLIP's image–text loss an image–image NT-Xent (`medalign.losses.nt_xent_loss`) on
two augmented views, computed on the image tower's pooled features through its own MLP head
(SLIP: 3 layers, 4096 wide, 256 out; here 2 layers, tower-wide, `out_dim` out — small models).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from medalign.losses import nt_xent_loss
from medalign.methods.base import Objective, StepContext, check_positive, check_weight
from medalign.models import DualEncoder


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


class SLIP(Objective):
    """``slip_loss``: NT-Xent of two views' `SlipHead` projections over the global batch (``data.views: 2``).

    Args:
        weight: weight of the term next to the pair loss (SLIP: 1).
        temperature: its τ (SLIP's 0.1).
        dim: output width of the head.
    """

    legacy_state = {"slip_head.": "head."}

    def __init__(self, weight: float = 1.0, temperature: float = 0.1, dim: int = 128) -> None:
        super().__init__()
        check_weight(weight, "SLIP.weight")
        check_positive(temperature, "SLIP.temperature")
        check_positive(dim, "SLIP.dim")
        self.weight, self.temperature, self.dim = weight, temperature, dim
        self.head: SlipHead | None = None

    def setup(self, model: nn.Module) -> None:
        if not isinstance(model, DualEncoder):
            raise ValueError("SLIP needs the timm/BERT towers, not preset: open_clip; remove the objective")
        self.head = SlipHead(model.image_encoder.num_features, out_dim=self.dim)

    def terms(self, batch: dict[str, Any], out: Any, ctx: StepContext) -> dict[str, torch.Tensor]:
        if "image_view2" not in batch:
            raise ValueError("the SLIP objective needs a second view of each image: set data.views: 2")
        encoder = ctx.model.image_encoder
        # the first view is the pair loss's image: its pooled features come from that forward
        z1 = self.head(out.image_features if out.image_features is not None else encoder(batch["image"]))  # (B, dim)
        z2 = self.head(encoder(batch["image_view2"]))
        loss = nt_xent_loss(z1, z2, self.temperature, ctx.gather(z1), ctx.gather(z2), ctx.offset(len(z1)))
        return {"slip_loss": self.weight * loss}
