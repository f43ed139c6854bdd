"""Towers → open_clip: the exported folder, loaded by open_clip itself, embeds as the medalign model does.

The reference is open_clip's own forward (its ``VisionTransformer`` / ``TimmModel`` /
``HFTextEncoder`` built from the written config), never the mapping code: a wrong key, a lost
bias, a wrong LayerNorm eps or pooler shows up as an embedding difference above 1e-5.
"""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
import torch
import torch.nn.functional as F

open_clip = pytest.importorskip("open_clip")

from medalign.export import ExportError, open_clip_parts  # noqa: E402
from medalign.export.folder import preprocess_config, write_files  # noqa: E402
from medalign.models import ModelSpec, create_dual_encoder  # noqa: E402

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
ATOL = 1e-5


def _perturbed(model, seed=0):
    """Random non-zero weights everywhere (init leaves biases at zero, which would hide a lost bias)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
        model.logit_scale.fill_(2.7)
    return model.eval()


def _reports(synthetic_dir, n=16):
    return pd.read_csv(synthetic_dir / "manifest.csv")["text"].astype(str).tolist()[:n]


def _export(model, spec, tokenizer, folder, image_size, context_length=32):
    parts = open_clip_parts(model, spec, tokenizer, image_size, context_length, str(folder))
    write_files(folder, parts, preprocess_config(image_size, MEAN, STD))
    return parts


def _round_trip(model, tokenizer, folder, texts, image_size, max_length=32):
    """Max abs differences (image, text) between open_clip's load of `folder` and `model`."""
    clip, _, _ = open_clip.create_model_and_transforms(f"local-dir:{folder}")
    tokenize = open_clip.get_tokenizer(f"local-dir:{folder}")
    clip.eval()
    images = torch.randn(4, 3, image_size, image_size, generator=torch.Generator().manual_seed(1))
    ours_tokens = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    with torch.no_grad():
        image = (F.normalize(clip.encode_image(images), dim=-1) - model.encode_image(images)).abs().max()
        text = (F.normalize(clip.encode_text(tokenize(texts)), dim=-1)
                - model.encode_text(ours_tokens["input_ids"], ours_tokens["attention_mask"])).abs().max()
    assert float(clip.logit_scale) == float(model.logit_scale)  # stored as its log on both sides
    return float(image), float(text)


def test_tiny_preset_becomes_open_clips_vit_and_embeds_the_same(tmp_path, tokenizer, synthetic_dir):
    spec = ModelSpec(preset="tiny", vocab_size=len(tokenizer))
    model = _perturbed(create_dual_encoder(spec))
    folder = tmp_path / "tiny"
    parts = _export(model, spec, tokenizer, folder, 64)
    vision = parts.model_cfg["vision_cfg"]
    assert "timm_model_name" not in vision  # open_clip cannot pass img_size/depth/... to timm
    assert (vision["width"], vision["layers"], vision["patch_size"], vision["image_size"]) == (128, 2, 8, 64)
    texts = _reports(synthetic_dir)
    image, text = _round_trip(model, tokenizer, folder, texts, 64)
    assert image <= ATOL and text <= ATOL, (image, text)

    # the test can fail: open_clip's default LayerNorm eps (1e-5 instead of timm's 1e-6) is visible
    config = json.loads((folder / "open_clip_config.json").read_text())
    del config["model_cfg"]["vision_cfg"]["norm_kwargs"]
    (folder / "open_clip_config.json").write_text(json.dumps(config))
    wrong_eps, _ = _round_trip(model, tokenizer, folder, texts[:2], 64)
    assert wrong_eps > ATOL  # measured 6e-5 on this model


@pytest.mark.parametrize("kwargs", [{"qkv_bias": False}, {"pre_norm": True}], ids=["no_qkv_bias", "pre_norm"])
def test_vit_variants_open_clip_also_has(tmp_path, tokenizer, synthetic_dir, kwargs):
    spec = ModelSpec(preset="tiny", vocab_size=len(tokenizer), image_kwargs=kwargs)
    model = create_dual_encoder(spec)
    if kwargs.get("qkv_bias") is False:
        assert model.image_encoder.backbone.blocks[0].attn.qkv.bias is None
    else:
        assert model.image_encoder.backbone.patch_embed.proj.bias is None  # pre-norm: CLIP's own ViT layout
    model = _perturbed(model)
    _export(model, spec, tokenizer, tmp_path / "vit", 64)
    image, text = _round_trip(model, tokenizer, tmp_path / "vit", _reports(synthetic_dir, 4), 64)
    assert image <= ATOL and text <= ATOL, (image, text)


def test_a_timm_name_without_kwargs_is_a_timm_tower(tmp_path, tokenizer, synthetic_dir):
    # a CNN: timm's own pooling (avg + head norm) must be kept by open_clip's TimmModel
    spec = ModelSpec(preset="tiny", vocab_size=len(tokenizer), image_model="test_convnext", image_kwargs={"drop_path_rate": 0.1})
    model = _perturbed(create_dual_encoder(spec))
    parts = _export(model, spec, tokenizer, tmp_path / "cnn", 64)
    assert parts.model_cfg["vision_cfg"]["timm_model_name"] == "test_convnext"
    image, text = _round_trip(model, tokenizer, tmp_path / "cnn", _reports(synthetic_dir, 4), 64)
    assert image <= ATOL and text <= ATOL, (image, text)


def test_local_pretrained_text_folder_with_a_pooler_and_mean_pooling(tmp_path, tokenizer, synthetic_dir):
    """A ClinicalBERT-like local folder (BertModel saved with its pooler), mean pooling."""
    from transformers import BertConfig, BertModel

    local = tmp_path / "bert"
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64)).save_pretrained(local)
    shutil.copytree(synthetic_dir / "tokenizer", local, dirs_exist_ok=True)
    spec = ModelSpec(preset="tiny", vocab_size=len(tokenizer), text_model=str(local), text_pooling="mean")
    model = _perturbed(create_dual_encoder(spec))
    parts = _export(model, spec, tokenizer, tmp_path / "out", 64)
    assert parts.model_cfg["text_cfg"]["hf_pooler_type"] == "mean_pooler"
    assert not any(k.startswith("text.transformer.pooler") for k in parts.state_dict)
    texts = _reports(synthetic_dir, 8) + ["no acute findings. " * 30]  # the last one is truncated at 32 tokens
    image, text = _round_trip(model, tokenizer, tmp_path / "out", texts, 64)
    assert image <= ATOL and text <= ATOL, (image, text)


@pytest.mark.parametrize(
    ("image_model", "image_kwargs", "match"),
    [
        ("vit_tiny_patch16_224", {"img_size": 64, "patch_size": 8, "embed_dim": 64, "depth": 1, "num_heads": 2, "reg_tokens": 1},
         "image tower: .*prefix tokens"),
        ("vit_tiny_patch16_224", {"img_size": 64, "patch_size": 8, "embed_dim": 64, "depth": 1, "num_heads": 2, "init_values": 1e-5},
         "image tower: .*block 0: layer scale"),
        ("swin_tiny_patch4_window7_224", {"img_size": 64, "window_size": 4, "embed_dim": 24, "depths": (1, 1), "num_heads": (1, 1)},
         "image tower: timm model 'swin_tiny_patch4_window7_224' \\(SwinTransformer\\) was built with the keyword arguments"),
    ],
    ids=["register_tokens", "layer_scale", "swin_with_kwargs"],
)
def test_image_towers_open_clip_cannot_express_are_refused_by_name(tokenizer, image_model, image_kwargs, match):
    spec = ModelSpec(preset="tiny", vocab_size=len(tokenizer), image_model=image_model, image_kwargs=image_kwargs)
    with pytest.raises(ExportError, match=match):
        open_clip_parts(create_dual_encoder(spec), spec, tokenizer, 64, 32, "unused")


def test_text_tower_open_clip_cannot_build_is_refused_by_name(tmp_path, tokenizer):
    from transformers import DistilBertConfig, DistilBertModel

    local = tmp_path / "distilbert"
    DistilBertModel(DistilBertConfig(vocab_size=len(tokenizer), dim=32, n_layers=1, n_heads=2, hidden_dim=64)).save_pretrained(local)
    spec = ModelSpec(preset="tiny", vocab_size=len(tokenizer), text_model=str(local))
    with pytest.raises(ExportError, match="text tower: Hugging Face model type 'distilbert'"):
        open_clip_parts(create_dual_encoder(spec), spec, tokenizer, 64, 32, "unused")


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["swin_t", "vit_s", "vit_b"])
def test_full_size_presets_export_as_timm_towers(tmp_path, tokenizer, synthetic_dir, preset):
    """The presets' real image towers (224 px); a 1-layer text tower keeps the test short (same code path as BERT-base)."""
    small_text = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64}
    spec = ModelSpec(preset=preset, vocab_size=len(tokenizer), text_config=small_text)
    model = _perturbed(create_dual_encoder(spec))
    parts = _export(model, spec, tokenizer, tmp_path / preset, 224)
    vision = parts.model_cfg["vision_cfg"]
    name = {"swin_t": "swin_tiny_patch4_window7_224", "vit_s": "vit_small_patch16_224", "vit_b": "vit_base_patch16_224"}[preset]
    assert vision["timm_model_name"] == name and vision["timm_pool"] == ("avg" if preset == "swin_t" else "token")
    image, text = _round_trip(model, tokenizer, tmp_path / preset, _reports(synthetic_dir, 2), 224)
    assert image <= ATOL and text <= ATOL, (image, text)
