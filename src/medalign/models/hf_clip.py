"""Hugging Face `transformers` CLIP / SigLIP models from local folders (MedSigLIP's layout).

A folder written by ``save_pretrained`` holds ``config.json`` (``model_type`` ``clip``,
``siglip`` or ``siglip2``), the weights (``model.safetensors`` or ``pytorch_model.bin``), the
processor's ``preprocessor_config.json`` / ``processor_config.json`` and the tokenizer files.
google/medsiglip-448 and openai/clip-vit-base-patch32 are published this way. Nothing is
downloaded: the folder is read with ``local_files_only=True``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

HF_CLIP_TYPES = ("clip", "siglip", "siglip2")
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json", "pytorch_model.bin.index.json")


@dataclass
class HFClip:
    """A loaded folder.

    Attributes:
        model: the ``CLIPModel`` / ``SiglipModel`` in eval mode.
        processor: its ``AutoProcessor`` (image processor + tokenizer).
        model_type: ``clip``, ``siglip`` or ``siglip2``.
        fingerprint: SHA-256 over the folder's weight, config, processor and tokenizer files.
    """

    model: nn.Module
    processor: Any
    model_type: str
    fingerprint: str


def hf_clip_model_type(path: str | Path) -> str | None:
    """``model_type`` of a transformers CLIP/SigLIP folder, or None for anything else."""
    config = Path(path) / "config.json"
    if not Path(path).is_dir() or not config.is_file() or (Path(path) / "open_clip_config.json").is_file():
        return None
    try:
        model_type = json.loads(config.read_text()).get("model_type")
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return model_type if model_type in HF_CLIP_TYPES else None


def _folder_hash(folder: Path) -> str:
    """SHA-256 over every file of the folder (names and bytes), in name order."""
    from medalign.run_folder import file_sha256

    digest = hashlib.sha256()
    for file in sorted(p for p in folder.iterdir() if p.is_file()):
        digest.update(file.name.encode())
        digest.update(file_sha256(file).encode())
    return digest.hexdigest()


def load_hf_clip(path: str | Path) -> HFClip:
    """Load a transformers CLIP/SigLIP folder and its processor, offline.

    Raises:
        FileNotFoundError: the folder, its weights or its processor files are missing.
        ValueError: ``config.json`` names another model type.
    """
    from transformers import AutoModel, AutoProcessor

    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"transformers model folder not found: {folder}")
    model_type = hf_clip_model_type(folder)
    if model_type is None:
        raise ValueError(f"{folder}/config.json: model_type must be one of {HF_CLIP_TYPES} (a CLIPModel or SiglipModel "
                         "saved with save_pretrained)")
    if not any((folder / name).is_file() for name in WEIGHT_FILES):
        raise FileNotFoundError(f"{folder} has no weights ({', '.join(WEIGHT_FILES[:2])})")
    if not any((folder / name).is_file() for name in ("preprocessor_config.json", "processor_config.json")):
        raise FileNotFoundError(f"{folder} has no preprocessor_config.json: save the model's processor into the folder "
                                "(processor.save_pretrained(folder))")
    model = AutoModel.from_pretrained(folder, local_files_only=True).eval()
    if not (hasattr(model, "get_image_features") and hasattr(model, "get_text_features")):
        raise ValueError(f"{folder} loads as {type(model).__name__}, which has no get_image_features/get_text_features")
    processor = AutoProcessor.from_pretrained(folder, local_files_only=True)
    return HFClip(model, processor, model_type, _folder_hash(folder))


def features(output: Any) -> torch.Tensor:
    """The (B, D) projected features of ``get_image_features`` / ``get_text_features``.

    transformers < 5 returns the tensor; 5.x returns a model output whose ``pooler_output``
    holds it.
    """
    if isinstance(output, torch.Tensor):
        return output
    pooled = getattr(output, "pooler_output", None)
    if pooled is None:
        raise TypeError(f"unexpected get_*_features output {type(output).__name__}: no pooler_output")
    return pooled
