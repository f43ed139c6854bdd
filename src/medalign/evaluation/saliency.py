"""Model saliency for an image and a text: where the image tower's evidence for the match lies.

Methods (a registry: `SALIENCY_METHODS`, extended with `register_saliency`):

* ``gradcam`` — Grad-CAM (Selvaraju et al., ICCV 2017) of the image–text cosine similarity on
  the image tower's last feature map (Swin NHWC / CNN NCHW maps from timm ``forward_features``;
  for a [CLS]-pooled ViT the tokens entering the last block): channel weights = spatial mean of
  the gradient, map = ReLU(Σ_c w_c A_c).
* ``rollout`` — attention rollout (Abnar & Zuidema, ACL 2020) for ViT towers: head-averaged
  attention plus identity, row-normalised and multiplied over the blocks; read out for the
  token(s) the tower pools: the [CLS] row (``global_pool="token"``), or the mean of the patch
  tokens' rows (``global_pool="avg"``, e.g. a ViT without class token: the pooled feature is the
  mean of those tokens, so its rollout is the mean of their rows); over the patch columns.
  Other poolings (attention pooling ``map``, ``max``) raise. Text-agnostic by construction.

Every method maps images (B, 3, S, S) and text embeddings (B, D) to (B, S, S) maps scaled to
[0, 1] per image (bilinear upsampling of the feature grid). No Lightning; works on any
`DualEncoder` (``image_encoder.backbone`` a timm model, ``image_projection``).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

SaliencyFn = Callable[[nn.Module, Tensor, Tensor], Tensor]
SALIENCY_METHODS: dict[str, SaliencyFn] = {}


def register_saliency(name: str) -> Callable[[SaliencyFn], SaliencyFn]:
    """Decorator adding a saliency method `fn(model, images, text_emb) -> (B, S, S)` under `name`."""

    def add(fn: SaliencyFn) -> SaliencyFn:
        SALIENCY_METHODS[name] = fn
        return fn

    return add


def get_saliency_method(name: str) -> SaliencyFn:
    try:
        return SALIENCY_METHODS[name]
    except KeyError:
        raise ValueError(f"unknown saliency method {name!r}; known: {sorted(SALIENCY_METHODS)}") from None


def _backbone(model: nn.Module) -> nn.Module:
    backbone = getattr(getattr(model, "image_encoder", None), "backbone", None)
    if backbone is None or not hasattr(backbone, "forward_features"):
        raise ValueError("saliency needs a medalign DualEncoder with a timm image tower (model.image_encoder.backbone)")
    return backbone


def feature_grid(backbone: nn.Module, features: Tensor) -> Tensor:
    """timm ``forward_features`` output → (B, C, h, w) (ViT tokens, NHWC or NCHW maps)."""
    if features.ndim == 3:  # (B, prefix + h·w, C) tokens
        tokens = features[:, getattr(backbone, "num_prefix_tokens", 1):]
        side = math.isqrt(tokens.shape[1])
        if side * side != tokens.shape[1]:
            raise ValueError(f"cannot lay {tokens.shape[1]} patch tokens on a square grid")
        return tokens.transpose(1, 2).reshape(len(tokens), -1, side, side)
    if features.ndim == 4:
        if features.shape[-1] == backbone.num_features and features.shape[1] != backbone.num_features:
            return features.permute(0, 3, 1, 2)  # NHWC (Swin) → NCHW
        return features
    raise ValueError(f"unexpected feature shape {tuple(features.shape)} from {type(backbone).__name__}")


def _to_image(maps: Tensor, size: tuple[int, int]) -> Tensor:
    """(B, h, w) → (B, S, S) bilinear, scaled to [0, 1] per map (all-zero maps stay zero)."""
    maps = F.interpolate(maps[:, None].to(torch.promote_types(maps.dtype, torch.float32)), size=size, mode="bilinear", align_corners=False)[:, 0]
    low = maps.flatten(1).min(1).values[:, None, None]
    span = (maps.flatten(1).max(1).values[:, None, None] - low)
    return torch.where(span > 0, (maps - low) / span.clamp_min(1e-12), torch.zeros_like(maps))


def _gradcam_layer(backbone: nn.Module) -> nn.Module | None:
    """The layer Grad-CAM reads on a token (ViT) tower: the last block's input norm.

    A [CLS]-pooled ViT's final tokens get no gradient except the [CLS] one, so Grad-CAM reads
    the tokens entering the last block (where [CLS] still attends to the patches), as
    pytorch-grad-cam recommends for ViTs. Spatial (Swin, CNN) towers use the last feature map.
    """
    blocks = getattr(backbone, "blocks", None)
    if blocks is not None and len(blocks) and hasattr(blocks[-1], "norm1") and getattr(backbone, "global_pool", "") == "token":
        return blocks[-1].norm1
    return None


@register_saliency("gradcam")
def gradcam(model: nn.Module, images: Tensor, text_emb: Tensor) -> Tensor:
    """Grad-CAM of cos(f(image), text) on the last feature map; (B, S, S) in [0, 1]."""
    backbone = _backbone(model)
    layer = _gradcam_layer(backbone)
    captured: list[Tensor] = []
    hook = layer.register_forward_hook(lambda _m, _i, out: captured.append(out)) if layer is not None else None
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            features = backbone.forward_features(images)
            target = captured[0] if captured else features
            pooled = backbone.forward_head(features, pre_logits=True)  # (B, F)
            emb = F.normalize(model.image_projection(pooled), dim=-1)  # (B, D)
            score = (emb * F.normalize(text_emb.to(emb.dtype), dim=-1)).sum()
            (grad,) = torch.autograd.grad(score, target)
        acts, grads = feature_grid(backbone, target.detach()), feature_grid(backbone, grad)  # (B, C, h, w)
        weights = grads.mean(dim=(2, 3), keepdim=True)  # (B, C, 1, 1)
        cam = F.relu((weights * acts).sum(1))  # (B, h, w)
    finally:
        if hook is not None:
            hook.remove()
        model.train(was_training)
    return _to_image(cam, images.shape[-2:])


@register_saliency("rollout")
def attention_rollout(model: nn.Module, images: Tensor, text_emb: Tensor | None = None) -> Tensor:
    """Attention rollout through a timm ViT's blocks; (B, S, S) in [0, 1] (`text_emb` unused)."""
    backbone = _backbone(model)
    blocks = getattr(backbone, "blocks", None)
    if blocks is None or not all(hasattr(b, "attn") and hasattr(b.attn, "attn_drop") for b in blocks):
        raise ValueError(f"attention rollout needs a ViT image tower; {type(backbone).__name__} has no attention blocks — use 'gradcam'")
    captured: list[Tensor] = []
    hooks, fused = [], [b.attn.fused_attn for b in blocks]
    for block in blocks:
        block.attn.fused_attn = False  # the explicit softmax path passes the weights through attn_drop
        hooks.append(block.attn.attn_drop.register_forward_hook(lambda _m, _i, out: captured.append(out.detach())))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            backbone.forward_features(images)
    finally:
        for hook in hooks:
            hook.remove()
        for block, flag in zip(blocks, fused):
            block.attn.fused_attn = flag
        model.train(was_training)
    tokens, dtype = captured[0].shape[-1], captured[0].dtype
    eye = torch.eye(tokens, device=images.device, dtype=dtype)
    rollout = eye.expand(len(images), tokens, tokens)
    for attn in captured:  # (B, heads, T, T)
        a = attn.mean(1) + eye  # (B, T, T)
        rollout = (a / a.sum(-1, keepdim=True)) @ rollout
    pooled_row = rollout_readout(backbone, rollout)  # (B, h·w)
    side = math.isqrt(pooled_row.shape[1])
    return _to_image(pooled_row.reshape(len(images), side, side), images.shape[-2:])


def rollout_readout(backbone: nn.Module, rollout: Tensor) -> Tensor:
    """The rollout row of what a timm ViT pools, over its patch tokens: (B, T, T) → (B, T − prefix).

    ``global_pool="token"`` pools the class token (row 0; it must exist); ``"avg"`` the mean of
    the patch tokens, whose rollout is the mean of their rows (rollout is linear in the row).

    Raises:
        ValueError: a pooling without a defined readout, or token pooling without a class token.
    """
    prefix = int(getattr(backbone, "num_prefix_tokens", 1))
    pool = getattr(backbone, "global_pool", "token")
    if pool == "token":
        if getattr(backbone, "cls_token", None) is None or prefix < 1:
            raise ValueError(f"attention rollout: {type(backbone).__name__} pools token 0 but has no class token; "
                             "no rollout row is defined for it — use 'gradcam'")
        return rollout[:, 0, prefix:]
    if pool == "avg":
        return rollout[:, prefix:, prefix:].mean(1)
    raise ValueError(f"attention rollout reads the class token ('token') or the mean of the patch tokens ('avg'); "
                     f"{type(backbone).__name__} pools with global_pool={pool!r} — use 'gradcam'")


def centre_prior(batch: int, size: int, sigma_fraction: float = 0.25) -> Tensor:
    """The centre-bias baseline: an isotropic Gaussian at the image centre, (B, S, S) in [0, 1]."""
    axis = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-(axis[:, None] ** 2 + axis[None, :] ** 2) / (2 * (sigma_fraction * size) ** 2))
    return (g / g.max()).expand(batch, size, size).clone()
