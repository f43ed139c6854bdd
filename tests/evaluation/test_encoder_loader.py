"""The one checkpoint → encoder path: architecture and data settings from the checkpoint, overridable."""

from __future__ import annotations

import pytest
import torch

from medalign.evaluation.encoders import checkpoint_hparams, load_checkpoint_encoder
from tests.helpers import fit_tiny


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory, synthetic_dir):
    tmp = tmp_path_factory.mktemp("loader")
    fit_tiny(tmp, synthetic_dir, "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "3",
             "--trainer.limit_val_batches", "1", "--model.init_args.embed_dim", "48")
    return tmp / "ckpt" / "step3.ckpt"


def test_settings_come_from_the_checkpoint(tiny_ckpt, synthetic_dir):
    model_hp, data_hp = checkpoint_hparams(tiny_ckpt)
    assert model_hp["model"]["embed_dim"] == 48 and data_hp["image_size"] == 64 and data_hp["max_length"] == 32
    encoder = load_checkpoint_encoder(tiny_ckpt)  # tokenizer found through the saved manifest
    assert encoder.settings["image_size"] == 64 and encoder.settings["max_length"] == 32
    assert encoder.model.image_projection.out_features == 48
    # the weights are the checkpoint's, not a fresh initialisation
    saved = torch.load(tiny_ckpt, map_location="cpu", weights_only=True)["state_dict"]
    assert torch.equal(encoder.model.image_projection.weight, saved["model.image_projection.weight"])
    emb = encoder.encode_texts(["no acute findings", "small left effusion"])
    assert emb.shape == (2, 48) and torch.allclose(emb.norm(dim=1), torch.ones(2))


def test_arguments_override_the_checkpoint(tiny_ckpt, tokenizer):
    encoder = load_checkpoint_encoder(tiny_ckpt, tokenizer, max_length=16, image_size=32, mean=(0.5, 0.5, 0.5))
    assert encoder.settings["max_length"] == 16 and encoder.settings["image_size"] == 32
    assert encoder.settings["mean"] == [0.5, 0.5, 0.5]
    assert encoder.transform.image_size == 32


def test_missing_tokenizer_names_where_it_looked(tiny_ckpt, tmp_path):
    moved = tmp_path / "model.ckpt"
    saved = torch.load(tiny_ckpt, map_location="cpu", weights_only=True)
    saved["datamodule_hyper_parameters"]["manifest"] = str(tmp_path / "gone" / "manifest.csv")
    torch.save(saved, moved)
    with pytest.raises(FileNotFoundError, match="gone/tokenizer"):
        load_checkpoint_encoder(moved)


def test_an_evaluation_manifest_does_not_replace_the_models_own_tokenizer(tiny_ckpt, synthetic_dir, tmp_path):
    """Scoring a model on another set (its folder has its own, larger vocabulary) keeps the training tokenizer."""
    from medalign.data.tokenizer import load_tokenizer, train_wordpiece_tokenizer

    own = load_tokenizer(synthetic_dir / "tokenizer")
    other = tmp_path / "other_set"
    words = [f"extraword{i} " * (i + 1) for i in range(len(own) + 50)]  # more distinct words than the model's vocabulary
    bigger = train_wordpiece_tokenizer(words, other / "tokenizer", vocab_size=len(own) + 50)
    assert len(bigger) == len(own) + 50
    encoder = load_checkpoint_encoder(tiny_ckpt, manifest=other / "manifest.csv")
    assert len(encoder.tokenizer) == len(own) and encoder.tokenizer.get_vocab() == own.get_vocab()
    # the larger vocabulary, passed on purpose: a clear error instead of an index error inside the embedding
    with pytest.raises(ValueError, match=f"{len(own) + 50} tokens but .*has {len(own)}"):
        load_checkpoint_encoder(tiny_ckpt, bigger)


def test_the_checkpoint_is_read_once(tiny_ckpt, tokenizer, monkeypatch):
    import medalign.models.checkpoint as checkpoint_module

    reads = []
    original = checkpoint_module.load_checkpoint_file

    def counting(path, *args, **kwargs):
        reads.append(str(path))
        return original(path, *args, **kwargs)

    monkeypatch.setattr(checkpoint_module, "load_checkpoint_file", counting)
    monkeypatch.setattr("medalign.models.weights.load_checkpoint_file", counting)
    encoder = load_checkpoint_encoder(tiny_ckpt, tokenizer)
    saved = torch.load(tiny_ckpt, map_location="cpu", weights_only=True)["state_dict"]
    assert reads == [str(tiny_ckpt)]  # hyper-parameters and weights from one read
    torch.testing.assert_close(encoder.model.state_dict()["logit_scale"], saved["model.logit_scale"])
