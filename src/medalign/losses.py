"""Contrastive losses. Tensors in, tensors out; no Lightning, no process groups.

Distributed training passes gathered embeddings in (`contrastive_loss`) so the same code
serves one process and many.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _check_pair(image_emb: torch.Tensor, text_emb: torch.Tensor, name: str = "") -> None:
    if image_emb.ndim != 2 or image_emb.shape != text_emb.shape:
        raise ValueError(
            f"{name}image and text embeddings must both be (N, D) with the same shape, "
            f"got {tuple(image_emb.shape)} and {tuple(text_emb.shape)}"
        )


def contrastive_loss(
    image_local: torch.Tensor,
    text_local: torch.Tensor,
    image_all: torch.Tensor,
    text_all: torch.Tensor,
    logit_scale: torch.Tensor,
    offset: int = 0,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Symmetric InfoNCE of local rows against global columns (CLIP, Radford et al. 2021, Eq. 1).

    With DDP, each rank passes its own embeddings as `*_local`, all ranks' embeddings as
    `*_all` (gathered with gradients) and ``offset = rank * local_batch``. DDP's gradient
    averaging then yields the gradient of the loss on the global batch (open_clip's
    ``local_loss=True, gather_with_grad=True`` scheme).

    Args:
        image_local: this process's image embeddings (B, D), L2-normalised.
        text_local: this process's text embeddings (B, D), L2-normalised.
        image_all: image embeddings of the global batch (N, D), containing `image_local` at `offset`.
        text_all: text embeddings of the global batch (N, D), containing `text_local` at `offset`.
        logit_scale: exp of the learnable log inverse temperature, a scalar.
        offset: row of the global batch where this process's rows start.
        mask: optional bool (B, N); True at (i, j) removes global column j from local row i's
            negatives, in both directions (image i → text j and text i → image j); its logit
            becomes −inf. The positive (i, offset + i) must stay False. None = plain InfoNCE.
            Used by eCLIP to keep a report's second copy (same manifest row) from being its
            own negative (`medalign.methods.duplicate_mask.same_pair_mask`).

    Returns:
        The mean of the image→text and text→image cross-entropies, a scalar.
    """
    _check_pair(image_local, text_local, "local ")
    _check_pair(image_all, text_all, "global ")
    batch, total = image_local.shape[0], image_all.shape[0]
    if offset < 0 or offset + batch > total:
        raise ValueError(f"offset {offset} + local batch {batch} exceeds the global batch {total}")
    labels = torch.arange(offset, offset + batch, device=image_local.device)
    logits_per_image = logit_scale * image_local @ text_all.T  # (B, N)
    logits_per_text = logit_scale * text_local @ image_all.T  # (B, N)
    if mask is not None:
        if mask.shape != (batch, total) or mask.dtype != torch.bool:
            raise ValueError(f"mask must be a bool tensor of shape (B, N) = {(batch, total)}, got {mask.dtype} {tuple(mask.shape)}")
        if mask[torch.arange(batch, device=mask.device), labels.to(mask.device)].any():
            raise ValueError("mask removes a positive pair: mask[i, offset + i] must be False for every local row i")
        mask = mask.to(logits_per_image.device)
        logits_per_image = logits_per_image.masked_fill(mask, float("-inf"))
        logits_per_text = logits_per_text.masked_fill(mask, float("-inf"))
    return (F.cross_entropy(logits_per_image, labels) + F.cross_entropy(logits_per_text, labels)) / 2


def clip_loss(image_emb: torch.Tensor, text_emb: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE on one process: the i-th image and i-th text are the positive pair.

    Equals open_clip's ``ClipLoss()(image_emb, text_emb, logit_scale)``.

    Args:
        image_emb: L2-normalised image embeddings (N, D).
        text_emb: L2-normalised text embeddings (N, D).
        logit_scale: exp of the learnable log inverse temperature, a scalar.
    """
    return contrastive_loss(image_emb, text_emb, image_emb, text_emb, logit_scale)
