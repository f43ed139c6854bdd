"""open_clip models from local files: a weights file for a named architecture, and an hf-hub-layout folder."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
import torch.nn.functional as F

open_clip = pytest.importorskip("open_clip")

from medalign.evaluation.encoders import OpenClipEncoder  # noqa: E402

TINY = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


def _same_embeddings(encoder: OpenClipEncoder, reference, tokenize):
    torch.manual_seed(0)
    images = torch.randn(3, 3, 32, 32)
    reference.eval()
    with torch.no_grad():
        torch.testing.assert_close(encoder.encode_images(images), F.normalize(reference.encode_image(images), dim=-1))
        texts = ["mild pulmonary edema", "no acute findings"]
        torch.testing.assert_close(encoder.encode_texts(texts), F.normalize(reference.encode_text(tokenize(texts)), dim=-1))


def test_weights_file_for_a_named_architecture(tmp_path):
    config = tmp_path / "medalign-test-tiny.json"
    config.write_text(json.dumps(TINY))
    open_clip.add_model_config(config)
    reference = open_clip.create_model("medalign-test-tiny")
    weights = tmp_path / "tiny.bin"
    torch.save(reference.state_dict(), weights)
    encoder = OpenClipEncoder.from_pretrained(weights, arch="medalign-test-tiny")
    assert encoder.transform.image_size == 32 and len(encoder.fingerprint) == 64
    _same_embeddings(encoder, reference, open_clip.get_tokenizer("medalign-test-tiny"))
    with pytest.raises(ValueError, match="needs its architecture"):
        OpenClipEncoder.from_pretrained(weights)
    with pytest.raises(FileNotFoundError, match="not found"):
        OpenClipEncoder.from_pretrained(tmp_path / "missing.bin", arch="medalign-test-tiny")


def test_hf_hub_layout_directory_with_an_hf_text_tower(tmp_path, synthetic_dir):
    """BiomedCLIP layout: the config names a hub text model; we build it from the folder's config.json."""
    from transformers import BertConfig

    folder = tmp_path / "biomedclip-like"
    shutil.copytree(synthetic_dir / "tokenizer", folder)  # tokenizer files live in the model folder
    from transformers import AutoTokenizer

    vocab = len(AutoTokenizer.from_pretrained(folder))
    BertConfig(vocab_size=vocab, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64).save_pretrained(folder)
    text_cfg = {"hf_model_name": str(folder), "hf_tokenizer_name": str(folder), "hf_proj_type": "linear",
                "hf_pooler_type": "cls_pooler", "context_length": 16}
    model_cfg = {"embed_dim": 16, "vision_cfg": TINY["vision_cfg"], "text_cfg": text_cfg}
    preprocess = {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": model_cfg, "preprocess_cfg": preprocess}))
    reference = open_clip.create_model(f"local-dir:{folder}", pretrained_text=False)
    torch.save(reference.state_dict(), folder / "open_clip_pytorch_model.bin")
    tokenize = open_clip.get_tokenizer(f"local-dir:{folder}")
    # now make it look like the published folder: the text tower is named by a hub id
    text_cfg.update(hf_model_name="microsoft/not-downloadable", hf_tokenizer_name="microsoft/not-downloadable")
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": model_cfg, "preprocess_cfg": preprocess}))

    encoder = OpenClipEncoder.from_pretrained(folder)
    assert encoder.transform.mean == (0.5, 0.5, 0.5) and encoder.transform.image_size == 32
    _same_embeddings(encoder, reference, tokenize)

    (folder / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match="text_config_dir"):
        OpenClipEncoder.from_pretrained(folder)
    with pytest.raises(FileNotFoundError, match="open_clip_config.json is missing"):
        OpenClipEncoder.from_pretrained(tmp_path)
