"""CLIP's pair loss: symmetric InfoNCE of each rank's pairs against the global batch (Radford et al. 2021).

The default pair loss of every run (`ContrastiveModule` adds it when no other `PairLoss` is listed).
"""

from __future__ import annotations

import torch

from medalign.losses import contrastive_loss
from medalign.methods.base import PairLoss, StepContext


class CLIP(PairLoss):
    """InfoNCE over the global batch (docs/architecture.md, "DDP"); logged as ``clip_loss``."""

    term = "clip_loss"

    def __init__(self) -> None:
        super().__init__()

    def loss(self, image_emb: torch.Tensor, text_emb: torch.Tensor, logit_scale: torch.Tensor,
             ctx: StepContext) -> torch.Tensor:
        return contrastive_loss(image_emb, text_emb, ctx.gather(image_emb), ctx.gather(text_emb), logit_scale,
                                offset=ctx.offset(len(image_emb)))
