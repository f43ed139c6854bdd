"""The image tower loads local weight files through timm (safetensors and .pth) and refuses hubs offline."""

import pytest
import timm
import torch
from safetensors.torch import save_file

from medalign.models.image import ImageEncoder

TINY_VIT = dict(img_size=64, patch_size=8, embed_dim=128, depth=2, num_heads=4)


@pytest.fixture(scope="module")
def reference():
    torch.manual_seed(0)
    return timm.create_model("vit_tiny_patch16_224", pretrained=False, **TINY_VIT).eval()  # with its 1000-class head


def test_safetensors_without_head_loads_exactly(tmp_path, reference):
    headless = {k: v for k, v in reference.state_dict().items() if not k.startswith("head.")}
    save_file(headless, tmp_path / "w.safetensors")
    encoder = ImageEncoder("vit_tiny_patch16_224", weights_path=str(tmp_path / "w.safetensors"), **TINY_VIT).eval()
    x = torch.randn(2, 3, 64, 64)
    expected = reference.forward_head(reference.forward_features(x), pre_logits=True)
    torch.testing.assert_close(encoder(x), expected, rtol=0, atol=0)


def test_pth_with_classifier_head_loads_and_drops_the_head(tmp_path, reference):
    torch.save(reference.state_dict(), tmp_path / "w.pth")
    encoder = ImageEncoder("vit_tiny_patch16_224", weights_path=str(tmp_path / "w.pth"), **TINY_VIT).eval()
    x = torch.randn(2, 3, 64, 64)
    torch.testing.assert_close(encoder(x), reference.forward_head(reference.forward_features(x), pre_logits=True))
    assert encoder(x).shape == (2, 128)


def test_missing_file_and_offline_hub_fail_fast(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="nope.safetensors"):
        ImageEncoder("vit_tiny_patch16_224", weights_path=str(tmp_path / "nope.safetensors"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(RuntimeError, match="offline.*--model.image_weights"):
        ImageEncoder("vit_tiny_patch16_224", pretrained=True)
