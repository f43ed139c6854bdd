"""`DualEncoder` token outputs: projected, normalised patch / report-token embeddings, global outputs unchanged."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from medalign.models import ModelSpec, create_dual_encoder

NO_DROPOUT = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_vit_tokens_and_the_same_forward_global_embeddings(pooling):
    torch.manual_seed(0)
    model = create_dual_encoder(ModelSpec(vocab_size=60, text_config=NO_DROPOUT, text_pooling=pooling)).eval()
    image, ids = torch.randn(3, 3, 64, 64), torch.randint(5, 60, (3, 9))
    mask = torch.ones(3, 9, dtype=torch.long)
    mask[1, 6:] = 0
    out = model(image, ids, mask, tokens=True)
    plain = model(image, ids, mask)
    torch.testing.assert_close(out.image_emb, plain.image_emb)
    torch.testing.assert_close(out.text_emb, plain.text_emb)
    assert plain.image_tokens is None and plain.text_tokens is None
    assert out.image_tokens.shape == (3, 64, model.embed_dim)  # (64/8)² patches, class token dropped
    assert out.text_tokens.shape == (3, 9, model.embed_dim) and out.text_token_mask is mask
    torch.testing.assert_close(out.image_tokens.norm(dim=-1), torch.ones(3, 64))
    # independently: the tower's patch features (after the final norm) through the projection
    backbone = model.image_encoder.backbone
    x = backbone.norm(backbone.blocks(backbone._pos_embed(backbone.patch_embed(image))))[:, 1:]  # (B, P, F)
    torch.testing.assert_close(out.image_tokens, F.normalize(model.image_projection(x), dim=-1))
    torch.testing.assert_close(model.encode_image_tokens(image), out.image_tokens)
    torch.testing.assert_close(model.encode_text_tokens(ids, mask), out.text_tokens)


def test_swin_maps_become_tokens():
    torch.manual_seed(0)
    spec = ModelSpec(vocab_size=60, image_model="swin_tiny_patch4_window7_224",
                     image_kwargs=dict(embed_dim=16, depths=(1, 1, 1, 1), num_heads=(1, 1, 1, 1)))
    model = create_dual_encoder(spec).eval()
    image = torch.randn(2, 3, 224, 224)
    tokens = model.encode_image_tokens(image)
    assert tokens.shape == (2, 49, model.embed_dim)  # the 7×7 last-stage map
    features = model.image_encoder.backbone.forward_features(image)  # (B, 7, 7, F) NHWC
    torch.testing.assert_close(tokens[:, 8], F.normalize(model.image_projection(features[:, 1, 1]), dim=-1))
