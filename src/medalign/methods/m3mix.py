"""Geodesic multimodal mixup hard negatives (m²-mix of Oh et al., "Geodesic Multi-Modal Mixup for
Robust Fine-Tuning", NeurIPS 2023; the eCLIP paper's "m³-mix" baseline).

For each pair j, m_j = slerp(v_j, t_j, λ) lies on the great circle between its image and its
report: between the two modalities, so harder than either as a negative. The loss is InfoNCE
in which each anchor's negatives are the other pairs' mixtures:

    ℓ_i^{img} = −log e^{s v_i·t_i} / (e^{s v_i·t_i} + Σ_{j≠i} e^{s v_i·m_j}),

and the same with the report t_i as the anchor; the loss is their mean. One λ ~ Beta(β, β) per
step (β = 0.5 in the authors' code). We use the model's logit scale s for the mixed logits
(the authors' open_clip patch multiplies by a separate constant ``m_tau``); their m³-mix adds
uni-modal mixup terms, which this baseline, like the eCLIP paper's description, leaves out.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from medalign.losses import slerp
from medalign.methods.base import Objective, StepContext, check_positive, check_weight


def m3mix_negatives(image_emb: torch.Tensor, text_emb: torch.Tensor, weight: float | torch.Tensor) -> torch.Tensor:
    """m_j = slerp(v_j, t_j, weight): unit vectors between each image and its report, (N, D)."""
    return slerp(image_emb, text_emb, weight)


def m3mix_loss(
    image_local: torch.Tensor,
    text_local: torch.Tensor,
    mixed_all: torch.Tensor,
    logit_scale: torch.Tensor,
    offset: int = 0,
) -> torch.Tensor:
    """InfoNCE of this rank's pairs against the global batch's mixed negatives.

    Args:
        image_local: this process's image embeddings (B, D).
        text_local: this process's text embeddings (B, D).
        mixed_all: `m3mix_negatives` of the global batch (N, D); row ``offset + i`` is pair i's own
            mixture, which is replaced by the true pair's logit (the positive).
        logit_scale: the multiplier s, a scalar.
        offset: row of the global batch where this process's rows start.
    """
    if image_local.shape != text_local.shape or mixed_all.ndim != 2 or mixed_all.shape[1] != image_local.shape[1]:
        raise ValueError(
            f"need (B, D) images and texts and (N, D) mixtures, got {tuple(image_local.shape)}, "
            f"{tuple(text_local.shape)}, {tuple(mixed_all.shape)}"
        )
    batch = image_local.shape[0]
    if offset < 0 or offset + batch > mixed_all.shape[0]:
        raise ValueError(f"offset {offset} + local batch {batch} exceeds the global batch {mixed_all.shape[0]}")
    rows = torch.arange(batch, device=image_local.device)
    labels = rows + offset
    positive = logit_scale * (image_local * text_local).sum(-1)  # (B,)
    per_image = (logit_scale * image_local @ mixed_all.T).index_put((rows, labels), positive)  # (B, N)
    per_text = (logit_scale * text_local @ mixed_all.T).index_put((rows, labels), positive)  # (B, N)
    return (F.cross_entropy(per_image, labels) + F.cross_entropy(per_text, labels)) / 2


class M3Mix(Objective):
    """``m3mix_loss``: InfoNCE with the global batch's geodesic mixtures as the negatives.

    Args:
        weight: weight of the term next to the pair loss.
        beta: λ ~ Beta(β, β), one per step, the same on every rank.
        seed: seed of the λ draws (a function of (seed, step): resume-safe); None (default): the run's ``seed_everything``.
    """

    def __init__(self, weight: float = 1.0, beta: float = 0.5, seed: int | None = None) -> None:
        super().__init__()
        check_weight(weight, "M3Mix.weight")
        check_positive(beta, "M3Mix.beta")
        self.weight, self.beta, self.seed = weight, beta, seed

    def terms(self, batch: dict[str, Any], out: Any, ctx: StepContext) -> dict[str, torch.Tensor]:
        lam = float(np.random.default_rng([ctx.seed(self.seed), ctx.step, 1]).beta(self.beta, self.beta))
        mixed_all = m3mix_negatives(ctx.gather(out.image_emb), ctx.gather(out.text_emb), lam)  # (N, D)
        loss = m3mix_loss(out.image_emb, out.text_emb, mixed_all, out.logit_scale, ctx.offset(len(out.image_emb)))
        return {"m3mix_loss": self.weight * loss}
