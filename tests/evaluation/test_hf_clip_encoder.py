"""Frozen transformers CLIP/SigLIP folders (MedSigLIP's layout) give the HF model's own embeddings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

from medalign.data.transforms import load_image  # noqa: E402
from medalign.evaluation.encoders import HFClipEncoder, OpenClipEncoder, load_pretrained_encoder  # noqa: E402

WORDS = ["[PAD]", "[UNK]", "</s>", "no", "acute", "findings", "mild", "pulmonary", "edema", "small", "effusion"]
TEXTS = ["no acute findings", "mild pulmonary edema", "small effusion"]
TOWER = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2)


def _tokenizer(max_length: int):
    from tokenizers import Tokenizer, models, pre_tokenizers

    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return transformers.PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]",
                                                eos_token="</s>", model_max_length=max_length)


def _save(folder: Path, kind: str) -> Path:
    torch.manual_seed(0)
    text = dict(vocab_size=len(WORDS), max_position_embeddings=16, **TOWER)
    vision = dict(image_size=32, patch_size=8, **TOWER)
    if kind == "siglip":
        model = transformers.SiglipModel(transformers.SiglipConfig(text_config=text, vision_config=vision))
        images = transformers.SiglipImageProcessor(size={"height": 32, "width": 32}, image_mean=[0.5] * 3, image_std=[0.5] * 3)
        processor = transformers.SiglipProcessor(image_processor=images, tokenizer=_tokenizer(16))
    else:
        text.update(eos_token_id=2, pad_token_id=0)
        model = transformers.CLIPModel(transformers.CLIPConfig(text_config=text, vision_config=vision, projection_dim=16))
        images = transformers.CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
        processor = transformers.CLIPProcessor(image_processor=images, tokenizer=_tokenizer(16))
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def _images(folder: Path) -> list[Path]:
    """Non-square 8-bit grey PNGs, larger and smaller than the model input."""
    rng = np.random.default_rng(0)
    paths = []
    for i, (h, w) in enumerate([(40, 57), (90, 64), (20, 24)]):
        path = folder / f"img{i}.png"
        Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8), mode="L").save(path)
        paths.append(path)
    return paths


@pytest.mark.parametrize("kind", ["siglip", "clip"])
def test_embeddings_equal_the_hf_models_own_features(tmp_path, kind):
    folder = _save(tmp_path / kind, kind)
    files = _images(tmp_path)
    encoder = load_pretrained_encoder(folder)
    assert isinstance(encoder, HFClipEncoder) and encoder.settings["model_type"] == kind
    assert encoder.transform.image_size == 32 and len(encoder.fingerprint) == 64

    # reference: a fresh load with transformers alone, the saved processor on the image files
    model = transformers.AutoModel.from_pretrained(folder).eval()
    processor = transformers.AutoProcessor.from_pretrained(folder)
    pixels = processor(images=[Image.open(f).convert("RGB") for f in files], return_tensors="pt")["pixel_values"]
    padding = "max_length" if kind == "siglip" else True
    tokens = processor.tokenizer(TEXTS, padding=padding, max_length=16, return_tensors="pt")
    with torch.no_grad():
        out = model(pixel_values=pixels, input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"])
        ref_image = F.normalize(model.get_image_features(pixel_values=pixels).pooler_output, dim=-1)
        ref_text = F.normalize(model.get_text_features(**tokens).pooler_output, dim=-1)
    torch.testing.assert_close(ref_image, out.image_embeds)  # the reference itself is the model's own embedding
    torch.testing.assert_close(ref_text, out.text_embeds)

    ours = torch.stack([encoder.transform(load_image(f))[0] for f in files])  # the embedding loader's path
    torch.testing.assert_close(ours, pixels, atol=1e-6, rtol=0)
    torch.testing.assert_close(encoder.encode_images(ours), ref_image, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(encoder.encode_texts(TEXTS), ref_text, atol=1e-5, rtol=1e-5)


def test_folder_detection_and_errors(tmp_path):
    folder = _save(tmp_path / "siglip", "siglip")
    (folder / "preprocessor_config.json").unlink(missing_ok=True)
    (folder / "processor_config.json").unlink(missing_ok=True)
    with pytest.raises(FileNotFoundError, match="preprocessor_config.json"):
        HFClipEncoder.from_pretrained(folder)
    other = tmp_path / "bert"
    transformers.BertConfig(vocab_size=11, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                            intermediate_size=64).save_pretrained(other)
    with pytest.raises(FileNotFoundError, match="open_clip_config.json is missing"):
        load_pretrained_encoder(other)  # not a CLIP/SigLIP folder: falls through to open_clip's error
    with pytest.raises(ValueError, match="model_type must be one of"):
        HFClipEncoder.from_pretrained(other)
    assert OpenClipEncoder is not HFClipEncoder


def test_geometry_command_takes_a_transformers_folder(tmp_path, synthetic_dir):
    from medalign.commands import geometry

    folder = _save(tmp_path / "siglip", "siglip")
    result = geometry.run(["--ckpt", str(folder), "--manifest", str(synthetic_dir / "manifest.csv"), "--split", "val",
                           "--out", str(tmp_path / "geo"), "--no-plot", "--cache-dir", str(tmp_path / "cache"),
                           "--labels", "Edema"])
    assert result["metrics"]["n_pairs"] > 0
    assert json.loads((tmp_path / "geo" / "geometry.json").read_text())["checkpoint"] == str(folder)
