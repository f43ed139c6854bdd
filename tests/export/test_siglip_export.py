"""A SigLIP checkpoint exports whole: open_clip's model carries the learned logit bias."""

from __future__ import annotations

import json
import sys

import pytest
import torch

open_clip = pytest.importorskip("open_clip")

from medalign.export import export_checkpoint  # noqa: E402
from tests.helpers import fit_tiny  # noqa: E402


@pytest.fixture(autouse=True)
def _keep_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", list(sys.argv))


@pytest.mark.slow
def test_siglip_bias_is_exported_and_checked(tmp_path, synthetic_dir):
    fit_tiny(tmp_path, synthetic_dir, "--trainer.max_steps", "3", "--model.loss", "siglip", "--model.init_logit_bias", "-7.5",
             "--model.init_temperature", "0.1")
    ckpt = tmp_path / "ckpt" / "last.ckpt"
    state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    (key,) = [k for k in state if k.split(".")[-1] == "logit_bias" and not k.startswith("model.")]
    trained = state[key].float()
    assert float(trained) != -7.5  # it trained
    result = export_checkpoint(ckpt, tmp_path / "out")
    clip = open_clip.create_model(f"local-dir:{tmp_path / 'out'}").eval()
    assert clip.logit_bias is not None and torch.equal(clip.logit_bias.detach(), trained.reshape(()))
    config = json.loads((tmp_path / "out" / "open_clip_config.json").read_text())
    assert config["model_cfg"]["init_logit_bias"] == pytest.approx(float(trained))
    assert result["differences"]["logit_bias"] == float(trained)
    card = (tmp_path / "out" / "README.md").read_text()
    assert f"SigLIP bias b = {float(trained):.6g}" in card and "logit_bias" in card
    assert "left out" not in card  # the bias is exported, not left out
    # open_clip's own SigLIP forward gives the module's logits: scale · cos + bias
    images = torch.randn(2, 3, 64, 64)
    tokens = open_clip.get_tokenizer(f"local-dir:{tmp_path / 'out'}")(["a", "b"])
    with torch.no_grad():
        image, text, scale, bias = clip(images, tokens)
    assert float(bias) == float(trained) and float(scale) == pytest.approx(float(state["model.logit_scale"].exp()), rel=1e-6)
