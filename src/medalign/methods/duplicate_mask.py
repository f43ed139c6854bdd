"""Which negatives to drop when one report appears twice in an InfoNCE (eCLIP's expert pairs)."""

from __future__ import annotations

import torch


def same_pair_mask(ids_local: torch.Tensor, ids_all: torch.Tensor, offset: int = 0) -> torch.Tensor:
    """The `medalign.losses.contrastive_loss` mask that removes same-pair duplicates from the negatives.

    With expert pairs appended, one report can appear twice (its original pair and its
    expert/mixup pair); each copy's other positive would otherwise count as a negative. Every
    column whose id equals the row's id is masked, except the row's own positive.

    Args:
        ids_local: (B,) pair identity (manifest row) of this process's rows.
        ids_all: (N,) pair identity of the global rows, containing `ids_local` at `offset`.
        offset: row of the global batch where this process's rows start.

    Returns:
        Bool (B, N), True where a column is dropped from a row's negatives.
    """
    batch = ids_local.shape[0]
    if ids_local.ndim != 1 or ids_all.ndim != 1 or offset < 0 or offset + batch > ids_all.shape[0]:
        raise ValueError(
            f"ids must be (B,) and (N,) with offset + B ≤ N, got {tuple(ids_local.shape)}, {tuple(ids_all.shape)}, offset {offset}"
        )
    mask = ids_local[:, None] == ids_all[None, :]  # (B, N)
    mask[torch.arange(batch), torch.arange(offset, offset + batch)] = False  # the positive itself stays
    return mask
