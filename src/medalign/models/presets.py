"""Named model presets: one place that says what `tiny`, `vit_s`, `vit_b` and `swin_t` are."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ModelPreset:
    """Architecture of a dual encoder, by name.

    Attributes:
        image_model: timm model name of the image tower.
        image_kwargs: extra keyword arguments for `timm.create_model` (e.g. a smaller depth).
        image_size: input side length the image tower expects.
        text_config: keyword arguments of `transformers.BertConfig` for a randomly initialised
            text tower (ignored when a local pretrained directory is given).
        embed_dim: width of the shared embedding space.
    """

    image_model: str  # timm name
    image_size: int  # square input side
    text_config: dict[str, Any] = field(default_factory=dict)  # BertConfig kwargs
    image_kwargs: dict[str, Any] = field(default_factory=dict)  # timm.create_model kwargs
    embed_dim: int = 512  # shared space width


# BERT-base is ClinicalBERT's architecture (Alsentzer et al. 2019); weights come from a local directory.
_BERT_BASE = dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072)

PRESETS: dict[str, ModelPreset] = {
    # Tests and the CPU demo: ~0.3 s per step at batch 32 on 2 cores.
    "tiny": ModelPreset(
        image_model="vit_tiny_patch16_224",
        image_size=64,
        image_kwargs=dict(img_size=64, patch_size=8, embed_dim=128, depth=2, num_heads=4),
        text_config=dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256),
    ),
    # The gaze test bed (docs/testbed.md): its lesions are real-box sized (nodules ≈ 6 px at 64 px),
    # which the 2-layer, 8-px-patch ViT above barely learns (supervised macro-AUC 0.748 after 6 epochs,
    # 5 seeds; scripts/testbed_learnability.py) and timm's 0.37M-parameter test ResNet does (0.920); output stride 8 keeps an 8×8
    # feature map for Grad-CAM, like the tiny ViT's patch grid. Same text tower and cost as `tiny`.
    "tiny_cnn": ModelPreset(
        image_model="test_resnet",
        image_size=64,
        image_kwargs=dict(output_stride=8),
        text_config=dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256),
    ),
    # The eCLIP paper's main image tower (768-d) with a ClinicalBERT-size text tower.
    "swin_t": ModelPreset(image_model="swin_tiny_patch4_window7_224", image_size=224, text_config=_BERT_BASE),
    "vit_s": ModelPreset(image_model="vit_small_patch16_224", image_size=224, text_config=_BERT_BASE),
    "vit_b": ModelPreset(image_model="vit_base_patch16_224", image_size=224, text_config=_BERT_BASE),
}


def get_preset(name: str) -> ModelPreset:
    """Return the preset called `name`, or raise a `ValueError` listing the known ones."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown model preset {name!r}; known presets: {sorted(PRESETS)}") from None
