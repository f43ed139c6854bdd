"""Attention rollout reads the row of what the ViT pools: the class token, or the mean of the patch tokens."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from medalign.evaluation.saliency import attention_rollout
from medalign.models import create_dual_encoder

VIT = dict(img_size=64, patch_size=8, embed_dim=32, depth=2, num_heads=2)


def _vit(**kwargs):
    torch.manual_seed(0)
    return create_dual_encoder("tiny", vocab_size=50, embed_dim=16, image_kwargs={**VIT, **kwargs}).eval()


def _by_hand(model, images):
    """Rollout (B, 64, 64) of a prefix-free ViT with the attention recomputed from qkv, read as the mean of the rows."""
    backbone = model.image_encoder.backbone
    x = backbone.norm_pre(backbone.patch_drop(backbone._pos_embed(backbone.patch_embed(images))))
    n, t = len(images), x.shape[1]
    rollout = torch.eye(t, dtype=x.dtype).expand(n, t, t)
    with torch.no_grad():
        for block in backbone.blocks:
            attn = block.attn
            qkv = attn.qkv(block.norm1(x)).reshape(n, t, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4)
            weights = ((qkv[0] * attn.scale) @ qkv[1].transpose(-2, -1)).softmax(-1).mean(1) + torch.eye(t, dtype=x.dtype)
            rollout = (weights / weights.sum(-1, keepdim=True)) @ rollout
            x = block(x)
    row = rollout.mean(1).reshape(n, 8, 8)  # every token is a patch and every patch is pooled
    up = F.interpolate(row[:, None], size=(64, 64), mode="bilinear", align_corners=False)[:, 0]
    lo, hi = up.flatten(1).min(1).values, up.flatten(1).max(1).values
    return (up - lo[:, None, None]) / (hi - lo)[:, None, None]


def test_rollout_of_a_mean_pooled_vit_without_class_token_is_the_mean_of_the_patch_rows():
    model = _vit(class_token=False, global_pool="avg")
    assert model.image_encoder.backbone.num_prefix_tokens == 0
    images = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    # fp32: the min-max scaling of a flat map amplifies fp32 rounding (measured 3e-5); patch 0's row is O(1) off
    assert torch.allclose(attention_rollout(model, images.float()), _by_hand(model, images.float()), atol=1e-4)
    model = model.double()  # float64: the same up to rounding
    assert torch.allclose(attention_rollout(model, images), _by_hand(model, images), atol=1e-9)


def test_readout_rules_and_refusals():
    from medalign.evaluation.saliency import rollout_readout

    rollout = torch.rand(1, 5, 5)
    token = _vit().image_encoder.backbone  # class token, pooled
    assert torch.equal(rollout_readout(token, rollout), rollout[:, 0, 1:])
    mean_with_cls = _vit(global_pool="avg").image_encoder.backbone  # class token present but the patches are pooled
    assert torch.allclose(rollout_readout(mean_with_cls, rollout), rollout[:, 1:, 1:].mean(1))
    with pytest.raises(ValueError, match="global_pool='max'"):
        rollout_readout(_vit(class_token=False, global_pool="max").image_encoder.backbone, rollout)
