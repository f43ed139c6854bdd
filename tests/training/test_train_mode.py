"""Loaded towers train in train mode: a saved Hugging Face folder and a timm weights file through `fit`.

`AutoModel.from_pretrained` returns its model in eval mode and Lightning keeps each module's mode
at the start of `fit`, so a text tower loaded from a folder once trained with its dropout off.
Frozen parts (``image_freeze`` / ``text_freeze``) must stay in eval mode all the same.
"""

from __future__ import annotations

import sys

import pytest
import timm
from safetensors.torch import save_file
from transformers import BertConfig, BertModel

from medalign.data.tokenizer import load_tokenizer
from medalign.models.presets import get_preset
from medalign.training.module import ContrastiveModule
from tests.helpers import fit_tiny


@pytest.fixture(autouse=True)
def _keep_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", list(sys.argv))


@pytest.fixture(scope="module")
def weights(tmp_path_factory, synthetic_dir):
    """A saved tiny BERT folder (the synthetic tokenizer's vocabulary) and a tiny-preset timm weights file."""
    root = tmp_path_factory.mktemp("weights")
    tiny = get_preset("tiny")
    vocab = len(load_tokenizer(synthetic_dir / "tokenizer"))
    BertModel(BertConfig(vocab_size=vocab, **tiny.text_config), add_pooling_layer=False).save_pretrained(root / "bert")
    image = timm.create_model(tiny.image_model, num_classes=0, **tiny.image_kwargs)
    save_file(image.state_dict(), str(root / "image.safetensors"))
    return root


def _modes_during_fit(tmp_path, synthetic_dir, weights, monkeypatch, *extra):
    """{module name: training flag} of the LightningModule at the first training batch of `fit`."""
    seen: dict[str, bool] = {}

    def record(self, batch, batch_idx):
        if not seen:
            seen.update({name: m.training for name, m in self.named_modules()})

    monkeypatch.setattr(ContrastiveModule, "on_train_batch_start", record, raising=False)
    cli = fit_tiny(
        tmp_path, synthetic_dir, "--model.text_model", str(weights / "bert"),
        "--model.image_weights", str(weights / "image.safetensors"),
        "--trainer.max_steps", "1", "--trainer.limit_val_batches", "1", "--trainer.num_sanity_val_steps", "1", *extra,
    )
    assert cli.trainer.global_step == 1 and seen
    return seen


def test_loaded_towers_train_in_train_mode(tmp_path, synthetic_dir, weights, monkeypatch):
    """Sanity validation first (Lightning then restores the modes it found): every module trains."""
    modes = _modes_during_fit(tmp_path, synthetic_dir, weights, monkeypatch)
    assert any(name.startswith("model.text_encoder.model.encoder.layer") for name in modes)
    in_eval = sorted(name for name, training in modes.items() if not training)
    assert not in_eval, f"{len(in_eval)} modules in eval mode during training, e.g. {in_eval[:5]}"


def test_frozen_parts_stay_in_eval_and_the_rest_trains(tmp_path, synthetic_dir, weights, monkeypatch):
    modes = _modes_during_fit(tmp_path, synthetic_dir, weights, monkeypatch,
                              "--model.image_freeze", "all", "--model.text_freeze", "1")
    frozen = ("model.image_encoder.backbone", "model.text_encoder.model.embeddings",
              "model.text_encoder.model.encoder.layer.0")
    for name, training in modes.items():
        expected = not any(name == f or name.startswith(f + ".") for f in frozen)
        assert training == expected, f"{name}: training={training}, expected {expected}"
    assert modes["model.text_encoder.model.encoder.layer.1.attention.self.dropout"]  # an unfrozen layer keeps dropout
