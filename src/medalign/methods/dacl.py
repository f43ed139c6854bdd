"""DACL's mixup positives (Verma et al., "Towards Domain-Agnostic Contrastive Learning", ICML 2021).

DACL replaces domain-specific augmentations by Mixup noise: a positive view of x_i is
λ·x_i + (1−λ)·x_j with another sample x_j of the batch and a large λ ~ U(α, 1) (the paper's
Algorithm 1; α = 0.9 for images). In image–text pretraining (the eCLIP paper's "+DACL" row) the
mixed image is an extra positive of its own report.
"""

from __future__ import annotations

from typing import Any

import torch

from medalign.methods.base import Objective, StepContext, check_weight


def dacl_mix(
    images: torch.Tensor, generator: torch.Generator, weight_range: tuple[float, float] = (0.9, 1.0)
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mix every image with another random image of the batch, keeping most of itself.

    Args:
        images: (B, C, H, W) batch, B ≥ 2.
        generator: CPU generator that fixes the partners and weights.
        weight_range: (low, high) of λ ~ U(low, high), the weight of the image itself;
            0.5 ≤ low ≤ high ≤ 1.

    Returns:
        ``mixed`` (B, C, H, W) = λ_i·x_i + (1−λ_i)·x_{p_i}, ``partner`` (B,) the indices p_i ≠ i,
        ``weight`` (B,) the λ_i.
    """
    low, high = weight_range
    if not 0.5 <= low <= high <= 1:
        raise ValueError(f"DACL.weight_range must satisfy 0.5 ≤ low ≤ high ≤ 1 (the image keeps most of itself), got {weight_range}")
    batch = images.shape[0]
    if batch < 2:
        raise ValueError(f"DACL mixes images within a batch and needs at least 2 per batch, got {batch}")
    shift = torch.randint(1, batch, (batch,), generator=generator)  # (B,) in [1, B−1]: never itself
    partner = (torch.arange(batch) + shift) % batch
    weight = low + (high - low) * torch.rand(batch, generator=generator)  # (B,)
    lam = weight.to(device=images.device, dtype=images.dtype).view(-1, *([1] * (images.ndim - 1)))  # (B, 1, 1, 1)
    mixed = lam * images + (1 - lam) * images[partner.to(images.device)]
    return mixed, partner, weight


class DACL(Objective):
    """``dacl_loss``: the run's pair loss of mixup images λ·x_i + (1−λ)·x_j with their own reports.

    Args:
        weight: weight of the term next to the pair loss.
        weight_range: (low, high) of λ ~ U(low, high) (DACL's U(0.9, 1)).
        seed: seed of the draws (a function of (seed, step, rank): resume-safe); None (default): the run's ``seed_everything``.
    """

    def __init__(self, weight: float = 1.0, weight_range: tuple[float, float] = (0.9, 1.0), seed: int | None = None) -> None:
        super().__init__()
        check_weight(weight, "DACL.weight")
        low_high = tuple(weight_range)
        if len(low_high) != 2 or not 0.5 <= low_high[0] <= low_high[1] <= 1:
            raise ValueError(f"DACL.weight_range must be [low, high] with 0.5 ≤ low ≤ high ≤ 1, got {low_high}")
        self.weight, self.weight_range, self.seed = weight, low_high, seed

    def terms(self, batch: dict[str, Any], out: Any, ctx: StepContext) -> dict[str, torch.Tensor]:
        mixed, _, _ = dacl_mix(batch["image"], ctx.generator(self.seed, 0), self.weight_range)
        if ctx.channels_last:
            mixed = mixed.contiguous(memory_format=torch.channels_last)
        mixed_emb = ctx.model.encode_image(mixed)  # (B, D): extra positives of their own reports
        return {"dacl_loss": self.weight * ctx.pair_loss(mixed_emb, out.text_emb, out.logit_scale)}
