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
        image_emb: L2-normalised image embeddings (B, D), float32 also under mixed precision.
        text_emb: L2-normalised text embeddings (B, D), float32 also under mixed precision.
        logit_scale: the exponentiated temperature, a scalar tensor.
        image_tokens: normalised patch embeddings (B, P, D), only with ``tokens=True``.
        text_tokens: normalised token embeddings (B, L, D), only with ``tokens=True``.
        text_token_mask: (B, L) real-token mask of `text_tokens` (the attention mask).
        image_features: the image tower's pooled features (B, F) before the projection, from the same
            forward (SLIP's head reads them instead of encoding the image again); None where a tower
            does not expose them.
    """

    image_emb: torch.Tensor
    text_emb: torch.Tensor
    logit_scale: torch.Tensor
    image_tokens: torch.Tensor | None = None
    text_tokens: torch.Tensor | None = None
    text_token_mask: torch.Tensor | None = None
    image_features: torch.Tensor | None = None


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
        """Images (B, C, H, W) → normalised float32 embeddings (B, D), also under autocast."""
        return self._embed_pooled_image(self.image_encoder(image))

    def _embed_pooled_image(self, pooled: torch.Tensor) -> torch.Tensor:
        """Pooled image features (B, F) → normalised float32 embeddings (B, D)."""
        return F.normalize(self.image_projection(pooled).float(), dim=-1)

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Token ids and mask (B, L) → normalised float32 embeddings (B, D), also under autocast."""
        return F.normalize(self.text_projection(self.text_encoder(input_ids, attention_mask)).float(), dim=-1)

    def encode_image_tokens(self, image: torch.Tensor) -> torch.Tensor:
        """Images (B, C, H, W) → normalised, projected patch embeddings (B, P, D) (FILIP's image tokens)."""
        return self._image_tokens_and_pooled(image)[0]

    def encode_text_tokens(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Token ids and mask (B, L) → normalised, projected token embeddings (B, L, D) (padding included; mask it)."""
        return self._text_tokens_and_pooled(input_ids, attention_mask)[0]

    def _image_tokens_and_pooled(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Patch embeddings (B, P, D) and the tower's pooled features (B, F) from one forward."""
        backbone = self.image_encoder.backbone
        features = backbone.forward_features(image)
        pooled = backbone.forward_head(features)  # (B, F): what `ImageEncoder.forward` returns
        if features.ndim == 3:  # ViT: (B, prefix + P, F); drop class / register tokens
            tokens = features[:, getattr(backbone, "num_prefix_tokens", 0) :]
        elif features.ndim == 4 and getattr(backbone, "output_fmt", "NCHW") == "NHWC":  # Swin: (B, H, W, F)
            tokens = features.flatten(1, 2)
        elif features.ndim == 4:  # CNNs: (B, F, H, W)
            tokens = features.flatten(2).transpose(1, 2)
        else:
            raise ValueError(f"{type(backbone).__name__}.forward_features gave shape {tuple(features.shape)}: no token layout known")
        return F.normalize(self.image_projection(tokens), dim=-1), pooled  # (B, P, D)

    def _text_tokens_and_pooled(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Token embeddings (B, L, D) and the tower's pooled features (B, F) from one forward."""
        text = self.text_encoder
        hidden = text.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # (B, L, F)
        if text.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (B, L, 1)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)
        return F.normalize(self.text_projection(hidden), dim=-1), pooled

    def forward(
        self, image: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor, tokens: bool = False
    ) -> DualEncoderOutput:
        """Global embeddings and logit scale; with `tokens`, also token embeddings (same forward pass)."""
        if not tokens:
            image_pooled = self.image_encoder(image)  # (B, F)
            return DualEncoderOutput(
                image_emb=self._embed_pooled_image(image_pooled),
                text_emb=self.encode_text(input_ids, attention_mask),
                logit_scale=self.logit_scale.exp(),
                image_features=image_pooled,
            )
        image_tokens, image_pooled = self._image_tokens_and_pooled(image)
        text_tokens, text_pooled = self._text_tokens_and_pooled(input_ids, attention_mask)
        return DualEncoderOutput(
            image_emb=self._embed_pooled_image(image_pooled),
            text_emb=F.normalize(self.text_projection(text_pooled).float(), dim=-1),
            logit_scale=self.logit_scale.exp(),
            image_tokens=image_tokens,
            text_tokens=text_tokens,
            text_token_mask=attention_mask,
            image_features=image_pooled,
        )

    @torch.no_grad()
    def clamp_logit_scale(self, max_scale: float = 100.0) -> None:
        """Keep exp(logit_scale) within [1, max_scale], as open_clip does after every step."""
        self.logit_scale.clamp_(0.0, math.log(max_scale))
