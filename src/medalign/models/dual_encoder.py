"""The CLIP-style dual encoder: image tower + text tower + linear projections + logit scale."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from medalign.models.image import ImageEncoder
from medalign.models.text import TextEncoder


@dataclass
class DualEncoderOutput:
    """What `DualEncoder.forward` returns; the loss is computed elsewhere.

    Attributes:
        image_emb: L2-normalised image embeddings (B, D).
        text_emb: L2-normalised text embeddings (B, D).
        logit_scale: the exponentiated temperature, a scalar tensor.
    """

    image_emb: torch.Tensor
    text_emb: torch.Tensor
    logit_scale: torch.Tensor


class DualEncoder(nn.Module):
    """Two towers projected into one normalised space (Radford et al. 2021; eCLIP §4.1).

    Args:
        image_encoder: pooled image features (B, F_img).
        text_encoder: pooled text features (B, F_txt).
        embed_dim: width of the shared space.
        init_temperature: initial softmax temperature; stored as log(1/T) and learnable.
    """

    def __init__(
        self,
        image_encoder: ImageEncoder,
        text_encoder: TextEncoder,
        embed_dim: int = 512,
        init_temperature: float = 0.07,
    ) -> None:
        super().__init__()
        if not 0 < init_temperature:
            raise ValueError(f"init_temperature must be positive, got {init_temperature}")
        self.image_encoder = image_encoder
        self.text_encoder = text_encoder
        self.image_projection = nn.Linear(image_encoder.num_features, embed_dim, bias=False)
        self.text_projection = nn.Linear(text_encoder.num_features, embed_dim, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / init_temperature)))
        self.embed_dim = embed_dim

    def encode_image(self, image: torch.Tensor) -> torch.Tensor:
        """Images (B, C, H, W) → normalised embeddings (B, D)."""
        return F.normalize(self.image_projection(self.image_encoder(image)), dim=-1)

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Token ids and mask (B, L) → normalised embeddings (B, D)."""
        return F.normalize(self.text_projection(self.text_encoder(input_ids, attention_mask)), dim=-1)

    def forward(
        self, image: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> DualEncoderOutput:
        return DualEncoderOutput(
            image_emb=self.encode_image(image),
            text_emb=self.encode_text(input_ids, attention_mask),
            logit_scale=self.logit_scale.exp(),
        )

    @torch.no_grad()
    def clamp_logit_scale(self, max_scale: float = 100.0) -> None:
        """Keep exp(logit_scale) within [1, max_scale], as open_clip does after every step."""
        self.logit_scale.clamp_(0.0, math.log(max_scale))
