"""Gap-closing terms ("Closing the gap in multimodal medical representation alignment", 2026).

Align-true-pairs (mean ‖v_i − t_i‖²) and centroid uniformity (uniformity of the normalised
pair centroids over the global batch), added to the pair loss and ramped in linearly from 0
over the first `warmup_fraction` of training. The paper's abstract gives no weights.
"""

from __future__ import annotations

from typing import Any

import torch

from medalign.losses import align_true_pairs_loss, centroid_uniformity_loss
from medalign.methods.base import Objective, StepContext, check_positive, check_weight


class GapClosing(Objective):
    """``align_loss`` and ``centroid_uniformity_loss`` next to the pair loss.

    Args:
        align_weight: weight of `align_true_pairs_loss` (0 = off).
        uniformity_weight: weight of `centroid_uniformity_loss` over the global batch (0 = off).
        uniformity_t: its kernel sharpness t.
        warmup_fraction: both weights ramp linearly from 0 over this share of training.
    """

    def __init__(self, align_weight: float = 1.0, uniformity_weight: float = 1.0, uniformity_t: float = 2.0,
                 warmup_fraction: float = 0.0) -> None:
        super().__init__()
        check_weight(align_weight, "GapClosing.align_weight")
        check_weight(uniformity_weight, "GapClosing.uniformity_weight")
        check_positive(uniformity_t, "GapClosing.uniformity_t")
        if not 0 <= warmup_fraction < 1:
            raise ValueError(f"GapClosing.warmup_fraction must be in [0, 1), got {warmup_fraction}")
        self.align_weight, self.uniformity_weight = align_weight, uniformity_weight
        self.uniformity_t, self.warmup_fraction = uniformity_t, warmup_fraction

    def ramp(self, progress: float) -> float:
        """Linear warm-up of both weights: min(1, progress / warmup_fraction)."""
        return 1.0 if self.warmup_fraction == 0 else min(1.0, progress / self.warmup_fraction)

    def terms(self, batch: dict[str, Any], out: Any, ctx: StepContext) -> dict[str, torch.Tensor]:
        ramp, terms = self.ramp(ctx.progress), {}
        if self.align_weight > 0:  # a mean over pairs: DDP's gradient averaging makes it the global mean
            terms["align_loss"] = self.align_weight * ramp * align_true_pairs_loss(out.image_emb, out.text_emb)
        if self.uniformity_weight > 0:  # over all global pairs i ≠ j: every rank computes it whole
            uniformity = centroid_uniformity_loss(ctx.gather(out.image_emb), ctx.gather(out.text_emb), self.uniformity_t)
            terms["centroid_uniformity_loss"] = self.uniformity_weight * ramp * uniformity
        return terms
