"""scripts/testbed_learnability.py: its supervised probe learns a planted per-label signal, label by label."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import load_script


@pytest.fixture(scope="module")
def script():
    return load_script("testbed_learnability")


def _planted(n: int, seed: int):
    """32-px images; label k present ⇔ a bright 6-px square in the k-th corner; label 2 is never drawn (noise)."""
    import torch

    rng = np.random.default_rng(seed)
    labels = (rng.random((n, 3)) < 0.4).astype(np.float32)
    images = rng.normal(0, 0.1, (n, 1, 32, 32)).astype(np.float32)
    corners = [(2, 2), (2, 24)]
    for k, (y, x) in enumerate(corners):
        images[labels[:, k] == 1, :, y:y + 6, x:x + 6] += 1.5
    return torch.from_numpy(images).expand(-1, 3, -1, -1).contiguous(), torch.from_numpy(labels)


def test_learns_planted_labels_and_not_the_undrawn_one(script):
    curve = script.train_preset("tiny_cnn", 0, _planted(192, 0), _planted(96, 1), epochs=3, lr=2e-3, batch=32)
    assert len(curve) == 3 and all(len(epoch) == 3 for epoch in curve)
    drawn_0, drawn_1, undrawn = curve[-1]
    assert drawn_0 > 0.9 and drawn_1 > 0.9  # the per-label AUC reads the right column
    assert 0.3 < undrawn < 0.7  # nothing to learn: chance
