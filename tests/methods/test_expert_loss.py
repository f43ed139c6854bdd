"""Duplicate-masked InfoNCE against a brute-force loop, and the random-heatmap control."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from medalign.losses import contrastive_loss
from medalign.methods.expert_loss import duplicate_masked_contrastive_loss
from medalign.methods.random_heatmaps import random_smooth_heatmaps


def _emb(n: int, seed: int) -> torch.Tensor:
    return F.normalize(torch.randn(n, 16, generator=torch.Generator().manual_seed(seed)), dim=-1)


def brute_force(image, text, ids, scale):
    """Loop over rows: softmax over the columns that are the positive or a different pair."""
    n, total = len(image), 0.0
    for i in range(n):
        for query, keys in ((image[i], text), (text[i], image)):
            cols = [j for j in range(n) if j == i or ids[j] != ids[i]]
            logits = [scale * float(query @ keys[j]) for j in cols]
            total += -(scale * float(query @ keys[i]) - math.log(sum(math.exp(x) for x in logits)))
    return total / (2 * n)


def test_without_duplicates_it_is_the_plain_contrastive_loss():
    image, text, ids = _emb(8, 0), _emb(8, 1), torch.arange(8)
    scale = torch.tensor(10.0)
    torch.testing.assert_close(
        duplicate_masked_contrastive_loss(image, text, image, text, scale, ids, ids),
        contrastive_loss(image, text, image, text, scale),
    )


def test_duplicates_are_removed_from_the_negatives():
    image, text = _emb(7, 2), _emb(7, 3)
    ids = torch.tensor([10, 11, 12, 13, 14, 11, 13])  # rows 5, 6 are expert copies of pairs 11 and 13
    loss = duplicate_masked_contrastive_loss(image, text, image, text, torch.tensor(5.0), ids, ids)
    assert float(loss) == pytest.approx(brute_force(image, text, ids.tolist(), 5.0), rel=1e-5)
    plain = contrastive_loss(image, text, image, text, torch.tensor(5.0))
    assert float(loss) != pytest.approx(float(plain), rel=1e-3)


def test_local_rows_against_global_columns_with_offset():
    image, text = _emb(6, 4), _emb(6, 5)
    ids = torch.tensor([0, 1, 2, 1, 4, 5])
    full = duplicate_masked_contrastive_loss(image, text, image, text, torch.tensor(3.0), ids, ids)
    halves = [
        duplicate_masked_contrastive_loss(image[s], text[s], image, text, torch.tensor(3.0), ids[s], ids, offset=s.start)
        for s in (slice(0, 3), slice(3, 6))
    ]
    torch.testing.assert_close(full, sum(halves) / 2)  # what DDP's gradient averaging sees


def test_random_heatmaps_are_seeded_smooth_and_peak_normalised():
    a = random_smooth_heatmaps(4, (32, 48), torch.Generator().manual_seed(0))
    b = random_smooth_heatmaps(4, (32, 48), torch.Generator().manual_seed(0))
    c = random_smooth_heatmaps(4, (32, 48), torch.Generator().manual_seed(1))
    assert a.shape == (4, 1, 32, 48) and torch.equal(a, b) and not torch.equal(a, c)
    assert a.min() >= 0 and torch.allclose(a.amax(dim=(1, 2, 3)), torch.ones(4))
    assert (a[..., 1:, :] - a[..., :-1, :]).abs().max() < 0.35  # smooth: no jumps between neighbours
    assert (a > 0.5).float().mean() < 0.5  # a few blobs, not a flat field
    with pytest.raises(ValueError, match="blobs"):
        random_smooth_heatmaps(1, (8, 8), torch.Generator(), blobs=0)
