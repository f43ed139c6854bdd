"""FILIP's fine-grained term: token-wise late-interaction InfoNCE (Yao et al., ICLR 2022).

Each patch's best-matching report token (and vice versa), averaged, gives the image–report
similarity of `medalign.losses.filip_loss`; the term is added to the global pair loss (FILIP
itself uses the token-wise loss alone). Needs the timm/BERT towers.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from medalign.losses import filip_loss
from medalign.methods.base import Objective, StepContext, check_positive, check_weight
from medalign.models import DualEncoder


class FILIP(Objective):
    """``local_loss``: FILIP's token-wise InfoNCE over the global batch.

    Args:
        weight: weight of the term next to the pair loss.
        chunk_size: images per chunk of the token-similarity computation (memory bound).
    """

    needs_tokens = True

    def __init__(self, weight: float = 1.0, chunk_size: int = 64) -> None:
        super().__init__()
        check_weight(weight, "FILIP.weight")
        check_positive(chunk_size, "FILIP.chunk_size")
        self.weight, self.chunk_size = weight, chunk_size

    def setup(self, model: nn.Module) -> None:
        if not isinstance(model, DualEncoder):
            raise ValueError("FILIP needs the timm/BERT towers' token embeddings, not preset: open_clip; remove the objective")

    def terms(self, batch: dict[str, Any], out: Any, ctx: StepContext) -> dict[str, torch.Tensor]:
        if out.image_tokens is None:
            raise RuntimeError("FILIP: the forward returned no token embeddings (the module asks for them when needs_tokens)")
        text_tokens, text_mask = out.text_tokens, out.text_token_mask  # (B, L, D), (B, L)
        image_all, text_all, mask_all = out.image_tokens, text_tokens, text_mask
        if ctx.world_size > 1:  # DDP: pad every rank's report tokens to one length
            length = int(ctx.gather(torch.tensor([text_tokens.shape[1]], device=text_tokens.device)).max())
            pad = length - text_tokens.shape[1]
            text_all = ctx.gather(F.pad(text_tokens, (0, 0, 0, pad)))  # (N, L_max, D)
            mask_all = ctx.gather(F.pad(text_mask, (0, pad)))  # (N, L_max)
            image_all = ctx.gather(out.image_tokens)  # (N, P, D)
        loss = filip_loss(out.image_tokens, text_tokens, text_mask, out.logit_scale, image_all, text_all, mask_all,
                          ctx.offset(len(text_tokens)), self.chunk_size)
        return {"local_loss": self.weight * loss}
