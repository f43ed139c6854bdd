"""A medalign dual encoder as one open_clip ``model_cfg`` + state dict (+ HF text config and tokenizer).

`open_clip_parts` covers both kinds of model medalign trains: the timm + BERT `DualEncoder`
of the named presets (its towers mapped by `medalign.export.towers`) and an
`OpenClipDualEncoder` fine-tuned from the ``open_clip`` preset (already open_clip's own
modules: its config is the one it was built from, its weights are stored as is).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from medalign.export.towers import ExportError, image_tower, text_tower
from medalign.models.spec import ModelSpec


@dataclass
class OpenClipParts:
    """What an open_clip folder holds, before it is written.

    Attributes:
        model_cfg: ``model_cfg`` of ``open_clip_config.json``.
        state_dict: weights under open_clip's names (``visual.*``, ``text.*``, ``logit_scale``).
        hf_config: the Hugging Face text tower's config (written as ``config.json``), or None.
        tokenizer: saved with ``save_pretrained`` into the folder (an HF text tower's), or None
            (open_clip's built-in CLIP tokenizer).
        towers: one description per tower, for the model card.
    """

    model_cfg: dict[str, Any]
    state_dict: dict[str, torch.Tensor] = field(repr=False)
    hf_config: Any = None
    tokenizer: Any = None
    towers: dict[str, str] = field(default_factory=dict)


def timm_architecture(spec: ModelSpec) -> tuple[str, dict[str, Any]]:
    """The timm name and `timm.create_model` keywords a spec's image tower was built with (as `create_dual_encoder`)."""
    from medalign.models.presets import get_preset

    if spec.image_model is not None:
        return spec.image_model, dict(spec.image_kwargs or {})
    arch = get_preset(spec.preset)
    return arch.image_model, {**arch.image_kwargs, **(spec.image_kwargs or {})}


def open_clip_parts(
    model: nn.Module, spec: ModelSpec, tokenizer: Any, image_size: int, context_length: int, source: str
) -> OpenClipParts:
    """Map a trained dual encoder onto open_clip.

    Args:
        model: a `DualEncoder` or `OpenClipDualEncoder` with the checkpoint's weights.
        spec: the spec it was built from (timm name and keywords, open_clip config).
        tokenizer: the tokenizer it was trained with (HF fast tokenizer or `OpenClipTokenizer`).
        image_size: the data's image side.
        context_length: the data's ``max_length`` (token positions per text).
        source: ``hf_model_name`` / ``hf_tokenizer_name`` of an HF text tower: the folder's
            absolute path, or the hub repository it will be uploaded to.

    Raises:
        ExportError: a tower open_clip cannot express (the message names it).
    """
    from medalign.models.dual_encoder import DualEncoder
    from medalign.models.open_clip_tower import OpenClipDualEncoder

    if isinstance(model, OpenClipDualEncoder):
        return _open_clip_preset(model, spec, tokenizer, source)
    if not isinstance(model, DualEncoder):
        raise ExportError(f"model: {type(model).__name__} is neither a medalign DualEncoder nor an OpenClipDualEncoder")
    name, kwargs = timm_architecture(spec)
    image = image_tower(model.image_encoder.backbone, model.image_projection.weight.detach(), name, kwargs, image_size)
    text = text_tower(model.text_encoder.model, model.text_projection.weight.detach(), model.text_encoder.pooling,
                      context_length, source)
    pad = getattr(tokenizer, "pad_token_id", None)
    if pad is None:
        raise ExportError("tokenizer: it has no padding token; open_clip's HF text tower derives its attention mask from it")
    hf_config = copy.deepcopy(model.text_encoder.model.config)
    hf_config.pad_token_id = int(pad)  # HFTextEncoder's mask is `ids != config.pad_token_id`
    model_cfg = {"embed_dim": model.embed_dim, "custom_text": True, "vision_cfg": image.config, "text_cfg": text.config}
    state = image.state_dict | text.state_dict | {"logit_scale": model.logit_scale.detach()}
    return OpenClipParts(model_cfg, state, hf_config, tokenizer, {"image": image.description, "text": text.description})


def _open_clip_preset(model: nn.Module, spec: ModelSpec, tokenizer: Any, source: str) -> OpenClipParts:
    """A model fine-tuned from the ``open_clip`` preset: its own config, its text tower pointed at `source`."""
    from medalign.models.open_clip_tower import model_config, resolve_name

    model_cfg = copy.deepcopy(model_config(resolve_name(spec.open_clip_model)))
    vision_cfg, text_cfg = model_cfg.setdefault("vision_cfg", {}), model_cfg.setdefault("text_cfg", {})
    if "timm_model_name" in vision_cfg:
        vision_cfg["timm_model_pretrained"] = False  # the weights are in the folder
    hf_config = save_tokenizer = None
    if "hf_model_name" in text_cfg:
        text_cfg.update(hf_model_name=source, hf_tokenizer_name=source, hf_model_pretrained=False)
        hf_config = copy.deepcopy(model.clip.text.config)
        save_tokenizer = getattr(tokenizer, "tokenizer", None)  # OpenClipTokenizer → open_clip HFTokenizer
        if not hasattr(save_tokenizer, "save_pretrained"):
            raise ExportError(f"tokenizer: {tokenizer!r} cannot save its files into the folder (no save_pretrained)")
    elif text_cfg.get("hf_tokenizer_name"):
        raise ExportError(
            f"tokenizer: the open_clip config names the Hugging Face tokenizer {text_cfg['hf_tokenizer_name']!r} for a "
            "built-in text tower; medalign cannot copy it into the folder"
        )
    state = {k: v.detach() for k, v in model.clip.state_dict().items()}
    arch = spec.open_clip_model
    towers = {"image": f"open_clip `{type(model.clip.visual).__name__}` from `{arch}`",
              "text": f"open_clip `{type(getattr(model.clip, 'text', model.clip)).__name__}` from `{arch}`"}
    return OpenClipParts(model_cfg, state, hf_config, save_tokenizer, towers)
