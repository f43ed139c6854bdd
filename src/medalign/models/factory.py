"""`create_dual_encoder`: build a DualEncoder from a preset name plus overrides."""

from __future__ import annotations

from typing import Any

from medalign.models.dual_encoder import DualEncoder
from medalign.models.image import ImageEncoder
from medalign.models.open_clip_tower import OpenClipDualEncoder, create_open_clip
from medalign.models.presets import get_preset
from medalign.models.text import Pooling, TextEncoder

OPEN_CLIP = "open_clip"  # the preset that wraps an open_clip model instead of timm + BERT towers


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
    open_clip_model: str | None = None,
    open_clip_weights: str | None = None,
    open_clip_text_config_dir: str | None = None,
    open_clip_pretrained: bool = True,
) -> DualEncoder | OpenClipDualEncoder:
    """Build a dual encoder.

    Args:
        preset: named architecture from `medalign.models.presets.PRESETS`, or ``open_clip``
            (an open_clip model named by `open_clip_model`; see `medalign.models.open_clip_tower`).
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
        open_clip_model: ``preset: open_clip`` only: an open_clip architecture name, model-config
            JSON or hf-hub-layout directory.
        open_clip_weights: weights file for `open_clip_model` (default for a directory: its own).
        open_clip_text_config_dir: local directory with the config.json of an HF text tower.
        open_clip_pretrained: False builds the open_clip architecture without loading weights.
    """
    if preset == OPEN_CLIP or open_clip_model is not None:
        timm_bert = dict(image_model=image_model, image_kwargs=image_kwargs, image_weights=image_weights,
                         text_model=text_model, text_config=text_config, embed_dim=embed_dim)
        given = sorted(k for k, v in timm_bert.items() if v)
        if preset != OPEN_CLIP or open_clip_model is None or given:
            raise ValueError(
                "an open_clip model needs model.preset: open_clip and model.open_clip_model (architecture, config JSON "
                f"or directory); got preset {preset!r}, open_clip_model {open_clip_model!r}"
                + (f", and {given}, which configure the timm/BERT towers: unset them" if given else "")
            )
        clip = create_open_clip(open_clip_model, open_clip_weights, open_clip_text_config_dir, pretrained=open_clip_pretrained)
        return OpenClipDualEncoder(clip, gradient_checkpointing=gradient_checkpointing)
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
