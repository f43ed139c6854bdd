"""`freeze_tower`: stems and first-k blocks of ViT / Swin / ConvNeXt / BERT layouts, clear errors otherwise."""

from __future__ import annotations

import pytest
import timm
from torch import nn
from transformers import BertConfig, BertModel

from medalign.methods.freeze import freeze_tower, parse_freeze

TINY_VIT = dict(img_size=64, patch_size=8, embed_dim=32, depth=3, num_heads=2)


def _trainable(model: nn.Module) -> set[str]:
    return {name for name, p in model.named_parameters() if p.requires_grad}


def test_vit_first_k_blocks_stem_and_tokens_are_frozen():
    vit = timm.create_model("vit_tiny_patch16_224", num_classes=0, **TINY_VIT)
    frozen = freeze_tower(vit, 2)
    trainable = _trainable(vit)
    prefixes = ("patch_embed.", "blocks.0.", "blocks.1.", "cls_token", "pos_embed")
    expected = {n for n, _ in vit.named_parameters() if not n.startswith(prefixes)}
    assert trainable == expected and any(n.startswith("blocks.2.") for n in trainable) and "norm.weight" in trainable
    assert frozen == [vit.patch_embed, vit.blocks[0], vit.blocks[1]] and not vit.blocks[0].training


def test_all_none_and_zero():
    vit = timm.create_model("vit_tiny_patch16_224", num_classes=0, **TINY_VIT)
    count = len(list(vit.parameters()))
    assert freeze_tower(vit, "none") == [] and freeze_tower(vit, 0) == [] and len(_trainable(vit)) == count
    assert freeze_tower(vit, "all") == [vit] and _trainable(vit) == set()


def test_swin_layers_and_convnext_stages():
    swin = timm.create_model("swin_tiny_patch4_window7_224", num_classes=0, embed_dim=16, depths=(1, 1, 1, 1), num_heads=(1, 1, 1, 1))
    freeze_tower(swin, 1)
    assert not any(n.startswith(("patch_embed.", "layers.0.")) for n in _trainable(swin))
    assert any(n.startswith("layers.1.") for n in _trainable(swin))
    convnext = timm.create_model("convnext_atto", num_classes=0)
    freeze_tower(convnext, 3)
    assert {n.split(".")[0] + "." + n.split(".")[1] for n in _trainable(convnext) if n.startswith("stages.")} == {"stages.3"}
    assert not any(n.startswith("stem.") for n in _trainable(convnext))


def test_bert_embeddings_and_first_layers():
    bert = BertModel(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=3, num_attention_heads=2, intermediate_size=32),
                     add_pooling_layer=False)
    freeze_tower(bert, 2, "model.text_freeze")
    layers = {n.split(".")[2] for n in _trainable(bert)}
    assert layers == {"2"} and all(n.startswith("encoder.layer.2.") for n in _trainable(bert))


def test_unknown_layouts_and_settings_fail_naming_the_key():
    with pytest.raises(ValueError, match="no block list.*children: \\['a', 'b'\\]"):
        freeze_tower(_odd(), 1)
    vit = timm.create_model("vit_tiny_patch16_224", num_classes=0, **TINY_VIT)
    with pytest.raises(ValueError, match="model.image_freeze: 4 blocks requested but .* has only 3"):
        freeze_tower(vit, 4)
    for bad in ("some", -1, 1.5, True):
        with pytest.raises(ValueError, match="model.text_freeze must be 'none', 'all', 'lock' or a number"):
            parse_freeze(bad, "model.text_freeze")
    assert parse_freeze("3", "k") == 3 and parse_freeze("ALL", "k") == "all" and parse_freeze(None, "k") == "none"


def _odd() -> nn.Module:
    module = nn.Module()
    module.a, module.b = nn.Linear(2, 2), nn.Linear(2, 2)
    return module


def _blocks(prefix: str, indices: range, model: nn.Module) -> set[str]:
    return {n for n, _ in model.named_parameters() if any(n.startswith(f"{prefix}.{i}.") for i in indices)}


def test_first_k_blocks_leave_exactly_these_parameters_trainable_per_layout():
    """k = 1: the stem (embedding, class / position tokens, pre-norm) and block 0 are fixed; nothing else is."""
    from open_clip.transformer import VisionTransformer

    vit = timm.create_model("vit_tiny_patch16_224", num_classes=0, pre_norm=True, **TINY_VIT)  # CLIP-style: a norm_pre
    freeze_tower(vit, 1)
    assert _trainable(vit) == _blocks("blocks", range(1, 3), vit) | {"norm.weight", "norm.bias"}
    swin = timm.create_model("swin_tiny_patch4_window7_224", num_classes=0, embed_dim=16, depths=(1, 1, 1, 1), num_heads=(1, 1, 1, 1))
    freeze_tower(swin, 1)
    assert _trainable(swin) == _blocks("layers", range(1, 4), swin) | {"norm.weight", "norm.bias"}
    clip_vit = VisionTransformer(image_size=32, patch_size=8, width=32, layers=3, heads=2, mlp_ratio=2.0, output_dim=16)
    frozen = freeze_tower(clip_vit, 1)
    assert _trainable(clip_vit) == _blocks("transformer.resblocks", range(1, 3), clip_vit) | {"ln_post.weight", "ln_post.bias", "proj"}
    assert clip_vit.ln_pre in frozen and not clip_vit.ln_pre.training


def test_lock_and_all_settings():
    vit = timm.create_model("vit_tiny_patch16_224", num_classes=0, **TINY_VIT)
    assert parse_freeze("LOCK", "k") == "lock" and freeze_tower(vit, "lock") == [vit] and _trainable(vit) == set()


def test_open_clip_tower_all_keeps_its_projection_trainable_and_lock_does_not():
    """The open_clip ViT keeps its projection inside the tower (`visual.proj`): `all` trains it, `lock` (LiT) fixes it."""
    from open_clip.transformer import VisionTransformer

    from medalign.methods.freeze import Freeze

    for setting, expected in (("all", {"proj"}), ("lock", set())):
        model = nn.Module()
        model.clip = nn.Module()
        model.clip.visual = VisionTransformer(image_size=32, patch_size=8, width=32, layers=2, heads=2, mlp_ratio=2.0, output_dim=16)
        Freeze(image=setting).setup(model)
        assert _trainable(model.clip.visual) == expected, setting
