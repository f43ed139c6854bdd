"""open_clip models from local files, and `OpenClipDualEncoder`: one as a medalign dual encoder.

An open_clip model is named by one string, ``spec``:

* an architecture name open_clip knows (``ViT-B-32``, ``RN50``, ...), with a weights file
  (``.bin`` / ``.pt`` / ``.safetensors``) given separately;
* a model-config JSON in open_clip's ``model_configs`` format (``embed_dim``, ``vision_cfg``,
  ``text_cfg``) — registered under its file stem — with a weights file given separately;
* an hf-hub-layout directory (``open_clip_config.json`` + ``open_clip_pytorch_model.bin`` or
  ``open_clip_model.safetensors`` + tokenizer files), as BiomedCLIP is published.

Nothing is downloaded: ``hf-hub:`` names and pretrained tags fail fast with a hint to pass a
local path. The frozen evaluation encoder (`medalign.evaluation.encoders.OpenClipEncoder`) and
fine-tuning (`create_dual_encoder(preset="open_clip", ...)`) both load through this module.
"""

from __future__ import annotations

import json
import logging
import math
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from medalign.models.dual_encoder import DualEncoderOutput

log = logging.getLogger(__name__)

DIRECTORY_WEIGHTS = ("open_clip_model.safetensors", "open_clip_pytorch_model.safetensors", "open_clip_pytorch_model.bin")


def _open_clip() -> Any:
    try:
        import open_clip
    except ImportError as err:  # pragma: no cover - a core dependency
        raise ImportError("open_clip models need open_clip_torch: pip install open_clip_torch") from err
    return open_clip


def resolve_name(spec: str) -> str:
    """The open_clip model name for `spec`: an architecture, ``local-dir:<dir>``, or a registered JSON's stem.

    Raises:
        RuntimeError: an ``hf-hub:`` name (never downloaded).
        FileNotFoundError: a directory without ``open_clip_config.json``.
        ValueError: a name that is neither an architecture nor a local path.
    """
    open_clip = _open_clip()
    spec = str(spec)
    local = "the local folder of the model (open_clip_config.json + weights + tokenizer files)"
    if spec.startswith("hf-hub:"):
        raise RuntimeError(f"open_clip model {spec!r} would be downloaded from the Hugging Face hub; medalign runs "
                           f"offline: download it elsewhere and pass {local}")
    path = Path(spec.removeprefix("local-dir:"))
    if path.is_dir():
        if not (path / "open_clip_config.json").is_file():
            raise FileNotFoundError(f"{path} is not an open_clip model directory: open_clip_config.json is missing")
        return f"local-dir:{path}"
    if path.suffix == ".json":
        if not path.is_file():
            raise FileNotFoundError(f"open_clip model config not found: {path}")
        open_clip.add_model_config(path)
        if path.stem not in open_clip.list_models():
            raise ValueError(f"{path} is not an open_clip model config (needs embed_dim, vision_cfg and text_cfg)")
        return path.stem
    if spec in open_clip.list_models():
        return spec
    raise ValueError(
        f"unknown open_clip model {spec!r}: give an architecture name (e.g. 'ViT-B-32', see "
        f"open_clip.list_models()), a model-config JSON file, or {local}; hub ids are not downloaded"
    )


def model_config(name: str) -> dict[str, Any]:
    """The ``model_cfg`` dict of a resolved name (`resolve_name`)."""
    if name.startswith("local-dir:"):
        config_file = Path(name.removeprefix("local-dir:")) / "open_clip_config.json"
        config = json.loads(config_file.read_text())
        if "model_cfg" not in config:
            raise ValueError(f"{config_file} has no 'model_cfg' key")
        return config["model_cfg"]
    return _open_clip().get_model_config(name)


def directory_weights(directory: str | Path) -> Path:
    """The open_clip weights file of an hf-hub-layout directory."""
    directory = Path(directory)
    found = next((directory / n for n in DIRECTORY_WEIGHTS if (directory / n).is_file()), None)
    if found is None:
        raise FileNotFoundError(f"{directory} has no open_clip_pytorch_model.bin or open_clip_model.safetensors")
    return found


class _DropRandomInitWarning(logging.Filter):
    """Drops open_clip's "No pretrained weights loaded ... initialized randomly" record."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "initialized randomly" not in record.getMessage()


@contextmanager
def _quiet_random_init() -> Iterator[None]:
    """Silence open_clip's random-init warning while `create_model` runs (it logs on the root logger)."""
    drop = _DropRandomInitWarning()
    root = logging.getLogger()
    root.addFilter(drop)
    try:
        yield
    finally:
        root.removeFilter(drop)


def create_open_clip(
    spec: str,
    weights: str | Path | None = None,
    text_config_dir: str | Path | None = None,
    pretrained: bool = True,
) -> nn.Module:
    """Build an open_clip ``CLIP`` / ``CustomTextCLIP`` from local files only.

    Args:
        spec: architecture name, model-config JSON or hf-hub-layout directory (module docstring).
        weights: weights file; default for a directory: its own weights. An architecture or
            JSON without weights is randomly initialised (with a warning).
        text_config_dir: local Hugging Face directory holding the ``config.json`` of an HF text
            tower (configs whose ``text_cfg.hf_model_name`` is a hub id, e.g. BiomedCLIP's
            PubMedBERT); default: the model directory.
        pretrained: False builds the architecture only (the weights come from a checkpoint next).

    Raises:
        FileNotFoundError: a missing weights file, directory or text-tower config.json.
    """
    open_clip = _open_clip()
    name = resolve_name(spec)
    directory = Path(name.removeprefix("local-dir:")) if name.startswith("local-dir:") else None
    text_cfg = dict(model_config(name).get("text_cfg", {}))
    overrides: dict[str, Any] = {}
    if "hf_model_name" in text_cfg:  # HF text tower: its architecture from a local config.json, never the hub
        local = Path(text_config_dir) if text_config_dir else directory
        if local is None or not (local / "config.json").is_file():
            raise FileNotFoundError(
                f"open_clip model {spec!r}: text_cfg.hf_model_name is {text_cfg['hf_model_name']!r}; offline it needs a "
                f"local directory with that model's config.json (none in {local}); set text_config_dir "
                "(model.open_clip_text_config_dir / evaluation.text_config_dir) or copy config.json into the model folder"
            )
        overrides["text_cfg"] = {**text_cfg, "hf_model_name": str(local), "hf_model_pretrained": False}
    if pretrained and weights is None and directory is not None:
        weights = directory_weights(directory)
    if pretrained and weights is not None and not Path(weights).is_file():
        raise FileNotFoundError(f"open_clip weights not found: {weights} (a local .bin/.pt/.safetensors file)")
    with _quiet_random_init():  # the weights are loaded just below: open_clip's "initialized randomly" would be false
        model = open_clip.create_model(name, load_weights=False, pretrained_text=False, pretrained_image=False, **overrides)
    if pretrained and weights is not None:
        open_clip.load_checkpoint(model, str(weights), strict=True)
    elif pretrained:
        log.warning("open_clip model %s: no weights file given, randomly initialised", spec)
    return model.train()  # train mode with its dropout whatever the loader left (callers evaluating call .eval())


def create_open_clip_tokenizer(spec: str) -> Any:
    """The open_clip tokenizer of `spec` (strings → (B, context_length) token ids), from local files."""
    name = resolve_name(spec)
    text_cfg = model_config(name).get("text_cfg", {})
    if text_cfg.get("hf_tokenizer_name") and not name.startswith("local-dir:"):
        raise ValueError(
            f"open_clip model {spec!r} uses the Hugging Face tokenizer {text_cfg['hf_tokenizer_name']!r}, which would be "
            "downloaded; use an hf-hub-layout directory holding the tokenizer files instead"
        )
    return _open_clip().get_tokenizer(name)


class OpenClipDualEncoder(nn.Module):
    """An open_clip model behind `DualEncoder`'s interface, for fine-tuning with CLIP or eCLIP.

    The text tower takes token ids of the model's own tokenizer (``data.tokenizer:
    open_clip:<spec>``); the attention mask is not needed — open_clip towers derive theirs
    from the ids (causal mask + end-of-text pooling, or the pad token for HF towers).
    ``logit_scale`` is open_clip's, already stored as log(1/T). A SigLIP ``logit_bias`` is
    left unused by the InfoNCE loss.

    Args:
        clip: an open_clip ``CLIP`` / ``CustomTextCLIP``.
        gradient_checkpointing: activation checkpointing in both towers.
    """

    def __init__(self, clip: nn.Module, gradient_checkpointing: bool = False) -> None:
        super().__init__()
        self.clip = clip
        if gradient_checkpointing:
            clip.set_grad_checkpointing(True)
        from open_clip.model import get_model_preprocess_cfg

        cfg = dict(get_model_preprocess_cfg(clip))
        size = cfg.get("size", 224)
        size = size[0] if isinstance(size, (tuple, list)) else size
        #: what the images must look like: ``image_size`` (side), ``mean`` and ``std`` (3 values).
        self.preprocess = {"image_size": int(size), "mean": tuple(cfg.get("mean", ())), "std": tuple(cfg.get("std", ()))}

    @property
    def image_encoder(self) -> nn.Module:
        """The image tower (``clip.visual``); eCLIP and channels-last act on it."""
        return self.clip.visual

    @property
    def logit_scale(self) -> nn.Parameter:
        """log(1/T), learnable (open_clip's parameter)."""
        return self.clip.logit_scale

    @property
    def context_length(self) -> int:
        """Token positions the text tower takes."""
        return int(self.clip.context_length)

    def encode_image(self, image: torch.Tensor) -> torch.Tensor:
        """Images (B, 3, S, S) → normalised embeddings (B, D)."""
        return F.normalize(self.clip.encode_image(image), dim=-1)

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Token ids (B, L) → normalised embeddings (B, D); `attention_mask` is accepted and unused.

        Raises:
            ValueError: ids of a width a fixed-length text tower cannot take (L ≠ context length).
        """
        positions = getattr(self.clip, "positional_embedding", None)
        if positions is not None and input_ids.shape[1] != positions.shape[0]:
            raise ValueError(
                f"the open_clip text tower takes {positions.shape[0]} tokens per text, got {input_ids.shape[1]}: "
                "tokenise with the model's own tokenizer (data.tokenizer: open_clip:<model>)"
            )
        return F.normalize(self.clip.encode_text(input_ids), dim=-1)

    def forward(
        self, image: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, tokens: bool = False
    ) -> DualEncoderOutput:
        if tokens:
            self.encode_image_tokens(image)  # raises: no token outputs
        return DualEncoderOutput(self.encode_image(image), self.encode_text(input_ids), self.logit_scale.exp())

    def encode_image_tokens(self, image: torch.Tensor) -> torch.Tensor:
        """Not available: open_clip models pool inside `encode_image` (token outputs need the timm/BERT towers)."""
        raise NotImplementedError(
            "token-level outputs (model.local_weight > 0, FILIP) are not available for preset: open_clip; "
            "use the timm/BERT towers (e.g. model.image_weights / model.text_model for general-domain weights)"
        )

    def encode_text_tokens(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Not available for open_clip models (see `encode_image_tokens`)."""
        return self.encode_image_tokens(input_ids)

    @torch.no_grad()
    def clamp_logit_scale(self, max_scale: float = 100.0) -> None:
        """Keep exp(logit_scale) within [1, max_scale], as open_clip does after every step."""
        self.logit_scale.clamp_(0.0, math.log(max_scale))

    def check_data(self, image_size: int, mean: tuple[float, ...], std: tuple[float, ...], tokenizer: Any) -> None:
        """Refuse data settings that do not fit the model; warn on a different normalisation.

        Args:
            image_size: ``data.image_size``.
            mean: ``data.mean``.
            std: ``data.std``.
            tokenizer: the data module's tokenizer.
        """
        want = self.preprocess
        if int(image_size) != want["image_size"]:
            raise ValueError(f"data.image_size is {image_size} but the open_clip model takes {want['image_size']} px images")
        for key, value in (("mean", mean), ("std", std)):
            if want[key] and not torch.allclose(torch.tensor(value, dtype=torch.float64), torch.tensor(want[key], dtype=torch.float64)):
                log.warning("data.%s is %s but the open_clip model was trained with %s", key, list(value), list(want[key]))
        if getattr(tokenizer, "open_clip", False) is not True:
            raise ValueError(
                "an open_clip model needs its own tokenizer: set data.tokenizer: open_clip:<the model's architecture, "
                f"config JSON or directory> (got {type(tokenizer).__name__})"
            )
