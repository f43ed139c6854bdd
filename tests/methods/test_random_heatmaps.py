"""The random-heatmap control of Table 4 ("+ rand")."""

from __future__ import annotations

import pytest
import torch

from medalign.methods.random_heatmaps import random_smooth_heatmaps


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
