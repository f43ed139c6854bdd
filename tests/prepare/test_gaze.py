"""Fixations → heatmaps, against hand-computed Gaussians."""

from __future__ import annotations

import math

import numpy as np
import pytest

from medalign.prepare.gaze import combine_readers, fixations_to_heatmap


def test_one_fixation_is_a_gaussian_peaked_at_its_pixel():
    heatmap = fixations_to_heatmap([10], [5], [2.0], shape=(21, 31), sigma=3.0)
    assert heatmap.shape == (21, 31) and heatmap.dtype == np.float32
    assert np.unravel_index(heatmap.argmax(), heatmap.shape) == (5, 10)  # (row = y, column = x)
    assert heatmap[5, 10] == pytest.approx(1.0)
    assert heatmap[5, 13] == pytest.approx(math.exp(-9 / 18), rel=1e-6)  # 3 px right: exp(-d²/2σ²)
    assert heatmap[8, 14] == pytest.approx(math.exp(-(9 + 16) / 18), rel=1e-6)
    assert heatmap[0, 10] == pytest.approx(math.exp(-25 / 18), rel=1e-6)


def test_duration_weighting_and_normalisation():
    heatmap = fixations_to_heatmap([3, 25], [3, 15], [1.0, 3.0], shape=(20, 30), sigma=2.0)
    assert heatmap.max() == pytest.approx(1.0) and heatmap.min() >= 0
    assert heatmap[15, 25] == pytest.approx(1.0, abs=1e-6)
    assert heatmap[3, 3] == pytest.approx(1 / 3, abs=1e-6)  # a third of the longer fixation's weight


def test_matches_brute_force_sum_with_default_sigma():
    rng = np.random.default_rng(0)
    x, y, d = rng.uniform(0, 40, 7), rng.uniform(0, 24, 7), rng.uniform(0.1, 1, 7)
    heatmap = fixations_to_heatmap(x, y, d, shape=(24, 40))
    sigma = 40 / 20  # 1/20 of the longer side
    rows, cols = np.mgrid[0:24, 0:40]
    brute = sum(dk * np.exp(-((cols - xk) ** 2 + (rows - yk) ** 2) / (2 * sigma**2)) for xk, yk, dk in zip(x, y, d))
    np.testing.assert_allclose(heatmap, brute / brute.max(), rtol=1e-5, atol=1e-7)


def test_coordinates_are_rescaled_from_the_source_frame():
    # x = 2 in a 10-px frame is the centre of pixel 2 → 4.5 in a 20-px frame (between pixels 4 and 5).
    heatmap = fixations_to_heatmap([2], [7], [1.0], shape=(20, 20), source_shape=(10, 10), sigma=1.0)
    np.testing.assert_allclose(heatmap[:, 4], heatmap[:, 5])
    np.testing.assert_allclose(heatmap[14, :], heatmap[15, :])
    assert heatmap[14:16, 4:6].min() == pytest.approx(1.0)


def test_no_positive_duration_gives_zeros_and_bad_input_raises():
    assert not fixations_to_heatmap([1], [1], [0.0], shape=(4, 4)).any()
    with pytest.raises(ValueError, match="equal lengths"):
        fixations_to_heatmap([1, 2], [1], [1.0], shape=(4, 4))
    with pytest.raises(ValueError, match="finite"):
        fixations_to_heatmap([np.nan], [1], [1.0], shape=(4, 4))


def test_combine_readers_is_a_renormalised_mean():
    a = fixations_to_heatmap([2], [2], [1.0], shape=(10, 10), sigma=1.0)
    b = fixations_to_heatmap([7], [7], [1.0], shape=(10, 10), sigma=1.0)
    mean = combine_readers([a, b])
    np.testing.assert_allclose(mean, (a + b) / (a + b).max(), rtol=1e-6)
