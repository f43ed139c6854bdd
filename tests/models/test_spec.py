"""`ModelSpec`: one object from config keys to the factory, rebuilt from checkpoint hyper-parameters."""

from __future__ import annotations

import pytest
import torch

from medalign.models import ModelSpec, create_dual_encoder


def _n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_preset_name_and_spec_build_the_same_architecture():
    torch.manual_seed(0)
    by_name = create_dual_encoder("tiny", vocab_size=100, embed_dim=64)
    torch.manual_seed(0)
    by_spec = create_dual_encoder(ModelSpec(preset="tiny", vocab_size=100, embed_dim=64))
    assert by_name.state_dict().keys() == by_spec.state_dict().keys()
    assert all(torch.equal(a, b) for a, b in zip(by_name.state_dict().values(), by_spec.state_dict().values()))
    assert by_spec.image_projection.out_features == 64


def test_spec_fields_change_the_model():
    small = create_dual_encoder(ModelSpec(preset="tiny", vocab_size=100, embed_dim=32))
    large = create_dual_encoder(ModelSpec(preset="tiny", vocab_size=100, embed_dim=64))
    bigger_vocab = create_dual_encoder(ModelSpec(preset="tiny", vocab_size=200, embed_dim=32))
    assert _n_params(large) > _n_params(small)
    # each extra token adds one hidden-width embedding row (tiny preset: width 128)
    assert _n_params(bigger_vocab) - _n_params(small) == 100 * 128


def test_from_hparams_ignores_training_keys_and_rejects_unknown_overrides():
    hparams = {"preset": "tiny", "vocab_size": 50, "lr": 1e-3, "method": "eclip", "embed_dim": 16}
    spec = ModelSpec.from_hparams(hparams)
    assert (spec.preset, spec.vocab_size, spec.embed_dim) == ("tiny", 50, 16)
    assert ModelSpec.from_hparams(hparams, embed_dim=8).embed_dim == 8
    with pytest.raises(ValueError, match="unknown model spec keys \\['lr'\\]"):
        ModelSpec.from_hparams(hparams, lr=1.0)


def test_weights_from_file_drops_initial_weight_files():
    spec = ModelSpec(preset="tiny", image_weights="w.safetensors", gradient_checkpointing=True)
    rebuilt = spec.for_weights_from_file()
    assert rebuilt.image_weights is None and not rebuilt.gradient_checkpointing and not rebuilt.open_clip_pretrained
    assert rebuilt.preset == "tiny"
