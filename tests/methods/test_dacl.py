"""`medalign.methods.dacl`: mixing each image with another one."""

from __future__ import annotations

import pytest
import torch

from medalign.methods.dacl import dacl_mix


def test_dacl_mixes_each_image_with_another_keeping_most_of_itself():
    images = torch.randn(6, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    mixed, partner, weight = dacl_mix(images, torch.Generator().manual_seed(1), (0.9, 1.0))
    assert (partner != torch.arange(6)).all() and ((weight >= 0.9) & (weight <= 1.0)).all()
    for i in range(6):
        torch.testing.assert_close(mixed[i], weight[i] * images[i] + (1 - weight[i]) * images[partner[i]])
    again, _, _ = dacl_mix(images, torch.Generator().manual_seed(1), (0.9, 1.0))
    torch.testing.assert_close(again, mixed)
    with pytest.raises(ValueError, match="DACL.weight_range"):
        dacl_mix(images, torch.Generator(), (0.2, 1.0))
