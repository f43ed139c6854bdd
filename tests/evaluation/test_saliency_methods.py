"""Grad-CAM and attention rollout on tiny towers: shapes, scaling, and known-answer checks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from medalign.evaluation.saliency import (
    SALIENCY_METHODS, attention_rollout, centre_prior, feature_grid, get_saliency_method, gradcam,
)
from medalign.models import create_dual_encoder


@pytest.fixture(scope="module")
def vit():
    torch.manual_seed(0)
    return create_dual_encoder("tiny", vocab_size=50, embed_dim=32).eval()


def test_gradcam_maps_are_image_sized_and_scaled(vit):
    images = torch.randn(3, 3, 64, 64)
    text = F.normalize(torch.randn(3, 32), dim=1)
    maps = gradcam(vit, images, text)
    assert maps.shape == (3, 64, 64)
    assert float(maps.min()) >= 0 and float(maps.amax(dim=(1, 2)).min()) == pytest.approx(1.0)
    assert not any(p.grad is not None for p in vit.parameters())  # no gradients left on the weights


def test_gradcam_follows_the_evidence_by_hand(vit):
    """Grad-CAM recomputed by running the last block by hand on detached penultimate tokens."""
    images = torch.randn(2, 3, 64, 64)
    text = F.normalize(torch.randn(2, 32), dim=1)
    backbone = vit.image_encoder.backbone
    x = backbone.patch_drop(backbone._pos_embed(backbone.patch_embed(images)))
    x = backbone.norm_pre(x)
    for block in backbone.blocks[:-1]:
        x = block(x)
    tokens = backbone.blocks[-1].norm1(x).detach().requires_grad_(True)  # (B, 65, C): Grad-CAM's layer
    last = backbone.blocks[-1]
    h = x + last.ls1(last.attn(tokens))
    h = h + last.ls2(last.mlp(last.norm2(h)))
    pooled = backbone.forward_head(backbone.norm(h), pre_logits=True)
    emb = F.normalize(vit.image_projection(pooled), dim=-1)
    (emb * text).sum().backward()
    a = tokens.detach()[:, 1:].reshape(2, 8, 8, -1)  # (B, h, w, C)
    w = tokens.grad[:, 1:].reshape(2, 8, 8, -1).mean(dim=(1, 2))  # (B, C)
    cam = torch.relu((a * w[:, None, None, :]).sum(-1))  # (B, h, w)
    cam = F.interpolate(cam[:, None], size=(64, 64), mode="bilinear", align_corners=False)[:, 0]
    lo, hi = cam.flatten(1).min(1).values, cam.flatten(1).max(1).values
    expected = (cam - lo[:, None, None]) / (hi - lo)[:, None, None]
    assert torch.allclose(gradcam(vit, images, text), expected, atol=1e-5)


def test_rollout_matches_an_explicit_product_of_attention_maps(vit):
    images = torch.randn(2, 3, 64, 64)
    backbone = vit.image_encoder.backbone
    # attention weights recomputed from each block's qkv by hand
    x = backbone.norm_pre(backbone.patch_drop(backbone._pos_embed(backbone.patch_embed(images))))
    rollout = torch.eye(65).expand(2, 65, 65)
    with torch.no_grad():
        for block in backbone.blocks:
            attn = block.attn
            y = block.norm1(x)
            qkv = attn.qkv(y).reshape(2, 65, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4)
            weights = ((qkv[0] * attn.scale) @ qkv[1].transpose(-2, -1)).softmax(-1).mean(1) + torch.eye(65)
            rollout = (weights / weights.sum(-1, keepdim=True)) @ rollout
            x = block(x)
    cls = rollout[:, 0, 1:].reshape(2, 8, 8)
    up = F.interpolate(cls[:, None], size=(64, 64), mode="bilinear", align_corners=False)[:, 0]
    lo, hi = up.flatten(1).min(1).values, up.flatten(1).max(1).values
    expected = (up - lo[:, None, None]) / (hi - lo)[:, None, None]
    assert torch.allclose(attention_rollout(vit, images), expected, atol=1e-5)
    assert all(b.attn.fused_attn for b in backbone.blocks)  # fused attention restored


def test_rollout_refuses_non_vit_towers():
    model = create_dual_encoder("tiny", vocab_size=50, image_model="test_resnet", embed_dim=16).eval()
    with pytest.raises(ValueError, match="use 'gradcam'"):
        attention_rollout(model, torch.randn(1, 3, 64, 64))
    assert gradcam(model, torch.randn(1, 3, 64, 64), torch.randn(1, 16)).shape == (1, 64, 64)


def test_feature_grid_layouts():
    class Fake(torch.nn.Module):
        num_features, num_prefix_tokens = 8, 1

    nhwc = torch.randn(2, 4, 4, 8)
    assert torch.equal(feature_grid(Fake(), nhwc), nhwc.permute(0, 3, 1, 2))
    tokens = torch.randn(2, 17, 8)
    assert feature_grid(Fake(), tokens).shape == (2, 8, 4, 4)


def test_registry_and_centre_prior():
    assert {"gradcam", "rollout"} <= set(SALIENCY_METHODS)
    with pytest.raises(ValueError, match="unknown saliency method"):
        get_saliency_method("nope")
    prior = centre_prior(2, 9)
    assert prior.shape == (2, 9, 9) and float(prior[0, 4, 4]) == 1.0 and float(prior[0, 0, 0]) < 0.2
