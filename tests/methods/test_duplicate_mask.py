"""`same_pair_mask` against a double loop."""

from __future__ import annotations

import pytest
import torch

from medalign.methods.duplicate_mask import same_pair_mask


@pytest.mark.parametrize("offset", [0, 3])
def test_mask_marks_other_copies_of_the_same_pair_only(offset):
    ids_all = torch.tensor([10, 11, 12, 11, 14, 10])
    ids_local = ids_all[offset : offset + 3]
    mask = same_pair_mask(ids_local, ids_all, offset)
    expected = [[ids_all[j] == ids_local[i] and j != offset + i for j in range(6)] for i in range(3)]
    assert mask.tolist() == expected
    assert mask.dtype == torch.bool


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="offset"):
        same_pair_mask(torch.arange(3), torch.arange(4), offset=2)
