"""InfoNCE over main + expert pairs where rows from the same manifest pair are not negatives."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def duplicate_masked_contrastive_loss(
    image_local: torch.Tensor,
    text_local: torch.Tensor,
    image_all: torch.Tensor,
    text_all: torch.Tensor,
    logit_scale: torch.Tensor,
    ids_local: torch.Tensor,
    ids_all: torch.Tensor,
    offset: int = 0,
) -> torch.Tensor:
    """`medalign.losses.contrastive_loss` with same-pair duplicates removed from the negatives.

    With expert pairs appended, one report can appear twice (its original pair and its
    expert/mixup pair); each copy's other positive would otherwise count as a negative. Every
    off-diagonal column whose id equals the row's id is masked out (logit −inf) in both
    directions. Without duplicates this equals `contrastive_loss` exactly.

    Args:
        image_local: this process's image embeddings (B, D).
        text_local: this process's text embeddings (B, D).
        image_all: global image embeddings (N, D) containing `image_local` at `offset`.
        text_all: global text embeddings (N, D) containing `text_local` at `offset`.
        logit_scale: exp of the learnable log inverse temperature.
        ids_local: (B,) pair identity (manifest row) of the local rows.
        ids_all: (N,) pair identity of the global rows.
        offset: row of the global batch where this process's rows start.
    """
    batch = image_local.shape[0]
    if ids_local.shape != (batch,) or ids_all.shape != (image_all.shape[0],):
        raise ValueError(f"ids must be (B,) and (N,), got {tuple(ids_local.shape)} and {tuple(ids_all.shape)}")
    labels = torch.arange(offset, offset + batch, device=image_local.device)
    duplicate = ids_local[:, None] == ids_all[None, :]  # (B, N)
    duplicate[torch.arange(batch), labels] = False  # the positive itself stays
    logits_per_image = (logit_scale * image_local @ text_all.T).masked_fill(duplicate, float("-inf"))  # (B, N)
    logits_per_text = (logit_scale * text_local @ image_all.T).masked_fill(duplicate, float("-inf"))  # (B, N)
    return (F.cross_entropy(logits_per_image, labels) + F.cross_entropy(logits_per_text, labels)) / 2
