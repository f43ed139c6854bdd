"""`create_dual_encoder`: build a DualEncoder from a `ModelSpec` (or a preset name plus overrides)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from medalign.models.dual_encoder import DualEncoder
from medalign.models.image import ImageEncoder
from medalign.models.open_clip_tower import OpenClipDualEncoder, create_open_clip
from medalign.models.presets import get_preset
from medalign.models.spec import ModelSpec
from medalign.models.text import TextEncoder

OPEN_CLIP = "open_clip"  # the preset that wraps an open_clip model instead of timm + BERT towers


def create_dual_encoder(spec: ModelSpec | str | None = None, **overrides: Any) -> DualEncoder | OpenClipDualEncoder:
    """Build the dual encoder a `ModelSpec` describes.

    Args:
        spec: the spec, or a preset name (shorthand for ``ModelSpec(preset=name)``); None → ``tiny``.
        **overrides: `ModelSpec` fields replacing the spec's (e.g. ``vocab_size=...``).

    Raises:
        ValueError: an unknown preset or field, or open_clip options mixed with timm/BERT ones.
    """
    if spec is None or isinstance(spec, str):
        spec = ModelSpec(preset=spec or "tiny")
    if overrides:
        spec = ModelSpec.from_hparams(asdict(spec), **overrides)
    preset, open_clip_model = spec.preset, spec.open_clip_model
    image_model, image_kwargs, image_weights = spec.image_model, spec.image_kwargs, spec.image_weights
    text_model, text_config, embed_dim = spec.text_model, spec.text_config, spec.embed_dim
    gradient_checkpointing = spec.gradient_checkpointing
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
        clip = create_open_clip(open_clip_model, spec.open_clip_weights, spec.open_clip_text_config_dir, pretrained=spec.open_clip_pretrained)
        return OpenClipDualEncoder(clip, gradient_checkpointing=gradient_checkpointing)
    arch = get_preset(preset)
    if image_model is None:
        image_model, kwargs = arch.image_model, {**arch.image_kwargs, **(image_kwargs or {})}
    else:
        kwargs = dict(image_kwargs or {})
    image = ImageEncoder(
        image_model, weights_path=image_weights, gradient_checkpointing=gradient_checkpointing, **kwargs
    )
    text = TextEncoder(
        vocab_size=spec.vocab_size,
        config={**arch.text_config, **(text_config or {})},
        pretrained_dir=text_model,
        pooling=spec.text_pooling,
        gradient_checkpointing=gradient_checkpointing,
    )
    return DualEncoder(image, text, embed_dim=embed_dim or arch.embed_dim, init_temperature=spec.init_temperature)
