"""`ModelSpec`: everything that says which dual encoder to build, in one object.

`ContrastiveModule` takes one as its ``model`` argument (``model.init_args.model.preset`` ...) and
hands it to `create_dual_encoder`; a checkpoint's saved hyper-parameters rebuild the same spec
(`ModelSpec.from_hparams`), so `test`, `geometry` and `gap-sweep` build exactly the model that
was trained. Field names are the config keys.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal, Mapping


@dataclass(frozen=True)
class ModelSpec:
    """Architecture and initial weights of a dual encoder.

    Attributes:
        preset: named architecture (`medalign.models.presets.PRESETS`) or ``open_clip``.
        vocab_size: tokenizer size for a randomly initialised text tower (linked from the data).
        image_model: timm name overriding the preset's image tower.
        image_kwargs: extra `timm.create_model` kwargs (replace the preset's with `image_model`).
        image_weights: local timm weights file for the image tower.
        text_model: local Hugging Face directory of a pretrained text tower (e.g. ClinicalBERT).
        text_config: `BertConfig` overrides of the preset's randomly initialised text tower.
        text_pooling: ``cls`` or ``mean``.
        embed_dim: shared-space width (default: the preset's).
        init_temperature: initial temperature (0.07 in CLIP and eCLIP).
        gradient_checkpointing: activation checkpointing in both towers.
        open_clip_model: ``preset: open_clip``: architecture, model-config JSON or hf-hub-layout folder.
        open_clip_weights: its local weights file (default for a folder: the folder's own).
        open_clip_text_config_dir: local folder with its HF text tower's config.json.
        open_clip_pretrained: False builds the open_clip architecture without loading weights.
    """

    preset: str = "tiny"
    vocab_size: int | None = None
    image_model: str | None = None
    image_kwargs: dict[str, Any] | None = None
    image_weights: str | None = None
    text_model: str | None = None
    text_config: dict[str, Any] | None = None
    text_pooling: Literal["cls", "mean"] = "cls"
    embed_dim: int | None = None
    init_temperature: float = 0.07
    gradient_checkpointing: bool = False
    open_clip_model: str | None = None
    open_clip_weights: str | None = None
    open_clip_text_config_dir: str | None = None
    open_clip_pretrained: bool = True

    def __post_init__(self) -> None:
        if self.embed_dim is not None and (isinstance(self.embed_dim, bool) or self.embed_dim < 1):
            raise ValueError(f"model.embed_dim must be ≥ 1 (or null for the preset's width), got {self.embed_dim!r}")

    @classmethod
    def from_hparams(cls, hparams: Mapping[str, Any], **overrides: Any) -> "ModelSpec":
        """The spec inside a module's (or checkpoint's) hyper-parameters; other keys are ignored.

        Reads the ``model`` entry (a spec or its fields) and, for checkpoints written before the
        module took one `ModelSpec`, spec fields at the top level (these win: callers override there).
        """
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise ValueError(f"unknown model spec keys {unknown}; known: {sorted(names)}")
        nested = dict(hparams).get("model")
        nested = asdict(nested) if isinstance(nested, ModelSpec) else dict(nested) if isinstance(nested, Mapping) else {}
        values = {**nested, **{k: v for k, v in dict(hparams).items() if k in names}}
        return cls(**{**{k: v for k, v in values.items() if k in names}, **overrides})

    def for_weights_from_file(self) -> "ModelSpec":
        """The same architecture with no initial-weight files: weights come from a checkpoint."""
        return replace(self, image_weights=None, gradient_checkpointing=False, open_clip_pretrained=False)
