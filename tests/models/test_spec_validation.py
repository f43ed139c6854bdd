"""`ModelSpec` refuses an embedding width that cannot be (``model.embed_dim 0`` used to mean the preset's)."""

from __future__ import annotations

import pytest

from medalign.models.factory import create_dual_encoder as create_model
from medalign.models.spec import ModelSpec


@pytest.mark.parametrize("width", [0, -8])
def test_embed_dim_below_one_is_an_error(width):
    with pytest.raises(ValueError, match=rf"model.embed_dim must be ≥ 1 \(or null for the preset's width\), got {width}"):
        create_model(ModelSpec(preset="tiny", embed_dim=width))


def test_null_and_positive_embed_dim_are_fine():
    assert create_model(ModelSpec(preset="tiny", embed_dim=24), vocab_size=50).embed_dim == 24
    assert create_model(ModelSpec(preset="tiny"), vocab_size=50).embed_dim > 0
