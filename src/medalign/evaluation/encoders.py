"""Frozen encoders behind one small protocol: our checkpoints, open_clip and transformers CLIP/SigLIP folders.

Every evaluator sees an `Encoder`: it knows how its images are preprocessed (`transform`),
embeds preprocessed images and raw report strings into L2-normalised vectors, and names
itself by a content hash (`fingerprint`) so that cached embeddings are never confused
between checkpoints.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import nn

from medalign.data.transforms import IMAGENET_MEAN, IMAGENET_STD, PairTransform
from medalign.run_folder import file_sha256


def state_dict_hash(model: nn.Module) -> str:
    """SHA-256 over a module's parameter and buffer names and values (for weights without a file)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


@runtime_checkable
class Encoder(Protocol):
    """What the embedding cache needs from a frozen image–text model.

    Attributes:
        name: human-readable description (checkpoint path, architecture).
        fingerprint: content hash of the weights; part of every cache key.
        transform: evaluation preprocessing of a (1, H, W) [0, 1] image to (3, S, S).
        settings: everything else that changes the embeddings (tokenizer, max length, ...).
    """

    name: str
    fingerprint: str
    transform: PairTransform
    settings: dict[str, Any]

    def to(self, device: torch.device | str) -> "Encoder": ...

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """Preprocessed images (B, 3, S, S) → L2-normalised embeddings (B, D)."""
        ...

    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        """Report strings → L2-normalised embeddings (B, D)."""
        ...


class _ModelEncoder:
    """What both encoders share: a `model` with ``encode_image`` on a `device`."""

    model: nn.Module
    device: torch.device

    def to(self, device: torch.device | str) -> "_ModelEncoder":
        self.device = torch.device(device)
        self.model.to(self.device)
        return self

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.model.encode_image(images.to(self.device)).float(), dim=-1)


class MedAlignEncoder(_ModelEncoder):
    """A medalign `DualEncoder` with the tokenizer and image settings it was trained with.

    Args:
        model: the dual encoder (put in eval mode here).
        tokenizer: Hugging Face tokenizer of the text tower.
        max_length: report tokens kept.
        image_size: side length fed to the image tower.
        mean: normalisation mean.
        std: normalisation std.
        fingerprint: content hash of the weights; default: hash of the state dict.
        name: description used in results.
    """

    def __init__(
        self,
        model: nn.Module,
        tokenizer: Any,
        max_length: int = 256,
        image_size: int = 224,
        mean: tuple[float, ...] = IMAGENET_MEAN,
        std: tuple[float, ...] = IMAGENET_STD,
        fingerprint: str | None = None,
        name: str = "medalign",
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.transform = PairTransform(image_size=image_size, mean=tuple(mean), std=tuple(std))
        self.fingerprint = fingerprint or state_dict_hash(model)
        self.name = name
        vocab = tokenizer.get_vocab() if hasattr(tokenizer, "get_vocab") else {}
        self.settings = {
            "kind": "medalign",
            "max_length": max_length,
            "tokenizer": hashlib.sha256(json.dumps(sorted(vocab.items())).encode()).hexdigest()[:16],
            "image_size": image_size,
            "mean": list(mean),
            "std": list(std),
        }
        self.device = torch.device("cpu")

    @classmethod
    def from_checkpoint(cls, path: str | Path, tokenizer: Any, saved: Any = None, **kwargs: Any) -> "MedAlignEncoder":
        """Rebuild the dual encoder a Lightning checkpoint (or weights file + `preset`) describes.

        The checkpoint's saved hyper-parameters give the `ModelSpec` (any `ContrastiveModule`
        subclass); `kwargs` go to `__init__` (max_length, image_size, mean, std) plus an optional
        ``preset`` / ``model_kwargs`` (spec fields) for files without hyper-parameters.
        Prefer `load_checkpoint_encoder`, which also takes the data settings from the checkpoint.
        """
        from medalign.models import ModelSpec, create_dual_encoder, load_weights
        from medalign.models.checkpoint import load_checkpoint_file

        if saved is None:  # `saved`: the file already loaded by the caller (read once)
            saved = load_checkpoint_file(path, mmap=Path(path).suffix != ".safetensors")  # validates: names a damaged file
        path = Path(path)
        hparams = dict(saved.get("hyper_parameters", {})) if isinstance(saved, dict) else {}
        hparams.update(kwargs.pop("model_kwargs", None) or {})
        if "preset" in kwargs:
            hparams["preset"] = kwargs.pop("preset")
        spec = ModelSpec.from_hparams(hparams).for_weights_from_file()
        if spec.vocab_size is None and spec.preset != "open_clip":
            spec = ModelSpec.from_hparams(hparams, vocab_size=len(tokenizer)).for_weights_from_file()
        elif spec.vocab_size is not None and len(tokenizer) > spec.vocab_size:
            raise ValueError(f"the tokenizer has {len(tokenizer)} tokens but {path}'s text tower has {spec.vocab_size}: "
                             "it is not the tokenizer the model was trained with; pass that one (e.g. --tokenizer <train data>/tokenizer)")
        model = create_dual_encoder(spec)
        load_weights(model, saved if isinstance(saved, dict) else path, strict=True)
        return cls(model, tokenizer, fingerprint=file_sha256(path), name=str(path), **kwargs)

    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        tokens = self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        emb = self.model.encode_text(tokens["input_ids"].to(self.device), tokens["attention_mask"].to(self.device))
        return F.normalize(emb.float(), dim=-1)


class OpenClipEncoder(_ModelEncoder):
    """A frozen open_clip model and its tokenizer, loaded from local files only.

    Args:
        model: an open_clip ``CLIP`` / ``CustomTextCLIP``.
        tokenizer: the matching open_clip tokenizer (strings → token tensor).
        fingerprint: content hash of the weights.
        name: description used in results.
    """

    def __init__(self, model: nn.Module, tokenizer: Any, fingerprint: str, name: str = "open_clip") -> None:
        from open_clip.model import get_model_preprocess_cfg

        self.model = model.eval()
        self.tokenizer = tokenizer
        cfg = get_model_preprocess_cfg(model)
        size = cfg.get("size", 224)
        size = size[0] if isinstance(size, (tuple, list)) else size
        mean, std = tuple(cfg.get("mean", IMAGENET_MEAN)), tuple(cfg.get("std", IMAGENET_STD))
        self.transform = PairTransform(image_size=int(size), mean=mean, std=std)
        self.fingerprint = fingerprint
        self.name = name
        self.settings = {"kind": "open_clip", "image_size": int(size), "mean": list(mean), "std": list(std),
                         "context_length": getattr(tokenizer, "context_length", None)}
        self.device = torch.device("cpu")

    @classmethod
    def from_pretrained(
        cls, path: str | Path, arch: str | None = None, text_config_dir: str | Path | None = None
    ) -> "OpenClipEncoder":
        """Load from a weights file for a named architecture, or an hf-hub-layout directory.

        Args:
            path: ``.bin`` / ``.pt`` / ``.safetensors`` file (needs `arch`, e.g. ``ViT-B-32``), or a
                directory holding ``open_clip_config.json`` and ``open_clip_pytorch_model.bin``
                (BiomedCLIP layout; its tokenizer files are read from the same directory).
            arch: open_clip architecture name (or model-config JSON) for a weights file.
            text_config_dir: local Hugging Face directory with the text tower's ``config.json``
                (for configs whose ``text_cfg.hf_model_name`` is a hub id); default: `path` when it
                holds a ``config.json``.

        Raises:
            FileNotFoundError: the file or directory, or a needed config, is missing.
            ValueError: a weights file without `arch`.
        """
        from medalign.models.open_clip_tower import create_open_clip, create_open_clip_tokenizer, directory_weights

        path = Path(path)
        if path.is_dir():
            model = create_open_clip(str(path), text_config_dir=text_config_dir)
            config_file = path / "open_clip_config.json"
            digest = hashlib.sha256((file_sha256(directory_weights(path)) + file_sha256(config_file)).encode()).hexdigest()
            return cls(model, create_open_clip_tokenizer(str(path)), digest, name=f"open_clip:{path}")
        if not path.is_file():
            raise FileNotFoundError(f"open_clip weights not found: {path}")
        if not arch:
            raise ValueError(f"open_clip weights file {path} needs its architecture: set arch (e.g. 'ViT-B-32')")
        model = create_open_clip(arch, weights=path)
        return cls(model, create_open_clip_tokenizer(arch), file_sha256(path), name=f"open_clip:{arch}:{path}")

    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        tokens = self.tokenizer(list(texts)).to(self.device)
        return F.normalize(self.model.encode_text(tokens).float(), dim=-1)


class HFImageTransform:
    """Evaluation preprocessing of a transformers CLIP/SigLIP folder: its own image processor.

    The loaded (1, H, W) [0, 1] image is turned back into the 8-bit grey picture it was read
    from (exact for 8-bit files), repeated to RGB and passed through the saved processor, so
    the pixels equal ``processor(images=Image.open(file).convert("RGB"))``. 16-bit images are
    rounded to 8 bits; JPEGs decoded at a reduced size (`medalign.data.decode`) are not exact.

    Args:
        image_processor: the folder's image processor.
        image_size: its output side (the embedding loader's decode size and blank size).
    """

    def __init__(self, image_processor: Any, image_size: int) -> None:
        self.image_processor = image_processor
        self.image_size = int(image_size)
        self.channels = 3

    def __call__(
        self, image: torch.Tensor, heatmap: torch.Tensor | None = None, generator: Any = None,
        source_size: tuple[int, int] | None = None,
    ) -> tuple[torch.Tensor, None]:
        """(1, H, W) [0, 1] image → (3, S, S) pixel values (no heatmap support)."""
        import numpy as np
        from PIL import Image

        if heatmap is not None:
            raise ValueError("transformers CLIP/SigLIP encoders do not transform heatmaps (saliency needs a medalign checkpoint)")
        if image.ndim != 3 or image.shape[0] != 1:
            raise ValueError(f"expected a (1, H, W) grey image, got shape {tuple(image.shape)}")
        pixels = (image[0].clamp(0, 1) * 255.0).round().to(torch.uint8).numpy()
        picture = Image.fromarray(np.ascontiguousarray(pixels), mode="L").convert("RGB")
        return self.image_processor(images=picture, return_tensors="pt")["pixel_values"][0], None


class HFClipEncoder(_ModelEncoder):
    """A frozen transformers ``CLIPModel`` / ``SiglipModel`` folder with its processor.

    Texts are tokenised by the folder's tokenizer with SigLIP's ``padding="max_length"`` (its
    text tower pools the last position, as trained) or CLIP's ``padding=True``.

    Args:
        model: the model (put in eval mode here).
        processor: its processor (``image_processor`` + ``tokenizer``).
        model_type: ``clip``, ``siglip`` or ``siglip2``.
        fingerprint: content hash of the folder.
        name: description used in results.
    """

    def __init__(self, model: nn.Module, processor: Any, model_type: str, fingerprint: str, name: str = "transformers") -> None:
        self.model = model.eval()
        self.tokenizer = processor.tokenizer
        self.model_type = model_type
        image_cfg = getattr(model.config, "vision_config", None)
        size = int(getattr(image_cfg, "image_size", 224))
        self.transform = HFImageTransform(processor.image_processor, size)
        self.padding: bool | str = "max_length" if model_type.startswith("siglip") else True
        text_cfg = getattr(model.config, "text_config", None)
        self.max_length = int(getattr(text_cfg, "max_position_embeddings", 0) or self.tokenizer.model_max_length)
        self.fingerprint = fingerprint
        self.name = name
        processor_cfg = processor.image_processor.to_dict()
        self.settings = {"kind": "transformers", "model_type": model_type, "image_size": size, "padding": self.padding,
                         "max_length": self.max_length,
                         "image_processor": json.loads(json.dumps(processor_cfg, sort_keys=True, default=str))}
        self.device = torch.device("cpu")

    @classmethod
    def from_pretrained(cls, path: str | Path) -> "HFClipEncoder":
        """Load a folder written by ``model.save_pretrained`` + ``processor.save_pretrained``."""
        from medalign.models.hf_clip import load_hf_clip

        loaded = load_hf_clip(path)
        return cls(loaded.model, loaded.processor, loaded.model_type, loaded.fingerprint, name=f"transformers:{path}")

    @torch.no_grad()
    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        from medalign.models.hf_clip import features

        return F.normalize(features(self.model.get_image_features(pixel_values=images.to(self.device))).float(), dim=-1)

    @torch.no_grad()
    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        from medalign.models.hf_clip import features

        tokens = self.tokenizer(list(texts), padding=self.padding, truncation=True, max_length=self.max_length,
                                return_tensors="pt")
        tokens = {k: v.to(self.device) for k, v in tokens.items() if k in ("input_ids", "attention_mask", "position_ids")}
        return F.normalize(features(self.model.get_text_features(**tokens)).float(), dim=-1)


def load_pretrained_encoder(
    weights: str | Path, arch: str | None = None, text_config_dir: str | Path | None = None
) -> OpenClipEncoder | HFClipEncoder:
    """A frozen pretrained model from local files: a transformers CLIP/SigLIP folder or an open_clip model.

    Args:
        weights: a folder with ``config.json`` of ``model_type`` clip/siglip (MedSigLIP's
            layout), else anything `OpenClipEncoder.from_pretrained` takes.
        arch, text_config_dir: open_clip only (see `OpenClipEncoder.from_pretrained`).
    """
    from medalign.models.hf_clip import hf_clip_model_type

    if hf_clip_model_type(weights) is not None:
        return HFClipEncoder.from_pretrained(weights)
    return OpenClipEncoder.from_pretrained(weights, arch, text_config_dir)


def checkpoint_hparams(path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(model, data) hyper-parameters saved in a Lightning checkpoint; ({}, {}) for weights files."""
    path = Path(path)
    if path.suffix == ".safetensors":
        return {}, {}
    from medalign.models.checkpoint import load_checkpoint_file

    saved = load_checkpoint_file(path, mmap=True)  # validates: names a damaged file
    if not isinstance(saved, dict):
        return {}, {}
    return dict(saved.get("hyper_parameters") or {}), dict(saved.get("datamodule_hyper_parameters") or {})


def load_checkpoint_encoder(
    checkpoint: str | Path,
    tokenizer: Any | None = None,
    manifest: str | Path | None = None,
    preset: str | None = None,
    max_length: int | None = None,
    image_size: int | None = None,
    mean: tuple[float, ...] | None = None,
    std: tuple[float, ...] | None = None,
    model_kwargs: dict[str, Any] | None = None,
    weights_file_model: dict[str, Any] | None = None,
) -> MedAlignEncoder:
    """The one checkpoint → encoder path (``test``, ``geometry``, ``gap-sweep``, notebooks).

    The architecture comes from the checkpoint's model hyper-parameters, the image and text
    settings from its data hyper-parameters; every argument given here overrides them.

    Args:
        checkpoint: a medalign ``.ckpt`` (or a weights file, then `preset` is needed).
        tokenizer: a loaded tokenizer; default: the checkpoint's ``data.tokenizer`` folder, else
            ``<folder of the checkpoint's training manifest>/tokenizer`` (the synthetic set's layout), else
            ``<manifest folder>/tokenizer``.
        manifest: the data manifest (only used to find a default tokenizer).
        preset: model preset for weights files without hyper-parameters.
        max_length, image_size, mean, std: override the checkpoint's data settings.
        model_kwargs: `ModelSpec` fields (e.g. a run's model hyper-parameters) describing the
            architecture of a weights file; they override a checkpoint's saved ones.
        weights_file_model: `ModelSpec` fields used only when the file has no hyper-parameters
            (a plain weights file): e.g. the run's configured model in `test`.

    Raises:
        FileNotFoundError: the checkpoint, or no tokenizer could be found (names where it looked).
        ValueError: the tokenizer has more tokens than the checkpoint's text tower (not its own).
    """
    from medalign.data.tokenizer import load_tokenizer

    from medalign.models.checkpoint import load_checkpoint_file

    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise FileNotFoundError(f"checkpoint not found: {checkpoint}")
    saved = load_checkpoint_file(checkpoint, mmap=checkpoint.suffix != ".safetensors")  # read once; names a damaged file
    data = dict(saved.get("datamodule_hyper_parameters") or {}) if isinstance(saved, dict) else {}
    if tokenizer is None:
        saved_tokenizer = data.get("tokenizer")
        if saved_tokenizer and str(saved_tokenizer).startswith("open_clip:"):
            tokenizer = load_tokenizer(saved_tokenizer)
        else:
            # the checkpoint's own training set first: a manifest given for evaluation may carry another vocabulary
            manifests = [m for m in (data.get("manifest"), manifest) if m]
            candidates = [Path(p) for p in (saved_tokenizer, *(Path(m).parent / "tokenizer" for m in manifests)) if p]
            found = next((c for c in candidates if c.is_dir()), None)
            if found is None:
                where = ", ".join(str(c) for c in candidates) or "nowhere (no data.tokenizer or manifest saved or given)"
                raise FileNotFoundError(f"no tokenizer for {checkpoint}: tried {where}; pass a tokenizer folder")
            tokenizer = load_tokenizer(found)
    settings: dict[str, Any] = {
        "max_length": max_length or data.get("max_length", 256),
        "image_size": image_size or data.get("image_size", 224),
    }
    for key, value in (("mean", mean), ("std", std)):
        if value is not None or data.get(key):
            settings[key] = tuple(value if value is not None else data[key])
    if preset:
        settings["preset"] = preset
    has_hparams = isinstance(saved, dict) and bool(saved.get("hyper_parameters"))
    model_kwargs = model_kwargs or (None if has_hparams else weights_file_model)
    if model_kwargs:
        settings["model_kwargs"] = model_kwargs
    return MedAlignEncoder.from_checkpoint(checkpoint, tokenizer, saved=saved, **settings)
