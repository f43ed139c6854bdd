"""The heatmap invariant: `peak_normalise` (numpy and torch) and every producer keeping peak 1."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medalign.data.heatmaps import peak_normalise


def test_numpy_and_torch_agree_and_scale_each_map_by_its_own_peak():
    maps = np.stack([np.arange(12.0).reshape(3, 4), 2 * np.ones((3, 4)), -np.ones((3, 4))])[:, None]  # (3, 1, 3, 4)
    expected = np.stack([np.arange(12.0).reshape(3, 4) / 11, np.ones((3, 4)), np.zeros((3, 4))])[:, None]
    np.testing.assert_allclose(peak_normalise(maps), expected, rtol=1e-6)
    np.testing.assert_allclose(peak_normalise(torch.from_numpy(maps)).numpy(), expected, rtol=1e-6)
    assert peak_normalise(maps).dtype == np.float32
    with pytest.raises(ValueError, match="all zeros"):
        peak_normalise(np.zeros((4, 4)), allow_zero=False)


def test_every_producer_keeps_the_invariant():
    from medalign.methods.random_heatmaps import random_smooth_heatmaps
    from medalign.models.heatmap_processor import normalise_heatmap
    from medalign.prepare.gaze import combine_readers, fixations_to_heatmap

    random = random_smooth_heatmaps(3, (16, 16), torch.Generator().manual_seed(0))
    assert torch.allclose(random.amax(dim=(2, 3)), torch.ones(3, 1))
    cropped = 0.3 * random  # a crop that cut the peak: the processor restores it
    assert torch.allclose(normalise_heatmap(cropped).amax(dim=(2, 3)), torch.ones(3, 1))
    gaze = fixations_to_heatmap(np.array([3.0, 10.0]), np.array([4.0, 9.0]), np.array([0.2, 0.5]), (16, 16), sigma=2.0)
    assert gaze.max() == pytest.approx(1.0) and gaze.min() >= 0
    assert combine_readers([gaze, 0.5 * gaze]).max() == pytest.approx(1.0)
