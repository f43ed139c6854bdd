"""`create_dual_encoder`: build a DualEncoder from a preset name plus overrides."""

from __future__ import annotations

from typing import Any

from medalign.models.dual_encoder import DualEncoder
from medalign.models.image import ImageEncoder
from medalign.models.presets import get_preset
from medalign.models.text import Pooling, TextEncoder


def create_dual_encoder(
    preset: str = "tiny",
    vocab_size: int | None = None,
    image_model: str | None = None,
    image_kwargs: dict[str, Any] | None = None,
    image_weights: str | None = None,
    text_model: str | None = None,
    text_config: dict[str, Any] | None = None,
    text_pooling: Pooling = "cls",
    embed_dim: int | None = None,
    init_temperature: float = 0.07,
    gradient_checkpointing: bool = False,
) -> DualEncoder:
    """Build a dual encoder.

    Args:
        preset: named architecture from `medalign.models.presets.PRESETS`.
        vocab_size: tokenizer size for a randomly initialised text tower.
        image_model: timm name overriding the preset's image tower.
        image_kwargs: extra `timm.create_model` kwargs (replace the preset's when image_model is given).
        image_weights: local timm weights file for the image tower.
        text_model: local Hugging Face directory with a pretrained text tower (e.g. ClinicalBERT).
        text_config: `BertConfig` overrides of the preset's randomly initialised text tower.
        text_pooling: ``cls`` or ``mean``.
        embed_dim: shared-space width overriding the preset's.
        init_temperature: initial temperature (0.07 in CLIP and eCLIP).
        gradient_checkpointing: enable activation checkpointing in both towers.
    """
    spec = get_preset(preset)
    if image_model is None:
        image_model, kwargs = spec.image_model, {**spec.image_kwargs, **(image_kwargs or {})}
    else:
        kwargs = dict(image_kwargs or {})
    image = ImageEncoder(
        image_model, weights_path=image_weights, gradient_checkpointing=gradient_checkpointing, **kwargs
    )
    text = TextEncoder(
        vocab_size=vocab_size,
        config={**spec.text_config, **(text_config or {})},
        pretrained_dir=text_model,
        pooling=text_pooling,
        gradient_checkpointing=gradient_checkpointing,
    )
    return DualEncoder(image, text, embed_dim=embed_dim or spec.embed_dim, init_temperature=init_temperature)
