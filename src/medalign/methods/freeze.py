"""Freezing pretrained towers: LiT's lock, a locked tower, or its first k blocks (transfer studies).

LiT (Zhai et al., CVPR 2022, "LiT: Zero-Shot Transfer with Locked-image text Tuning"; big_vision's
``lit_coco`` config) locks the pretrained image tower AND its head: nothing on the image side
trains, only the text tower and its projection. The settings of a tower:

* ``lock`` — LiT: the tower and its projection into the shared space are fixed;
* ``all`` — the tower is fixed, its projection into the shared space still trains;
* k — the stem (patch embedding, class / position tokens, pre-norm) and the first k blocks are fixed;
* ``none`` (or 0) — everything trains.

A frozen module has ``requires_grad = False`` on every parameter (so `medalign.optim.param_groups`
gives it no optimizer state) and is kept in eval mode (BatchNorm statistics and dropout fixed).
"""

from __future__ import annotations

from typing import Iterable

from torch import nn

from medalign.methods.base import Objective
from medalign.models import DualEncoder

# Where each layout keeps its stem (embedding) and its sequence of blocks, in the order tried.
_STEMS = ("patch_embed", "stem", "embeddings", "conv1", "norm_pre", "ln_pre")  # last two: pre-block norms (timm, open_clip)
_BLOCK_LISTS = ("blocks", "layers", "stages", "encoder.layer", "transformer.resblocks")  # last: open_clip ViT
# learned tokens fed in with the stem: timm ViT / Swin, then open_clip ViT
_VIT_STEM_PARAMS = ("cls_token", "reg_token", "pos_embed", "dist_token", "absolute_pos_embed", "class_embedding", "positional_embedding")
SETTINGS = ("none", "all", "lock")


def parse_freeze(value: str | int | None, key: str) -> str | int:
    """Normalise a freeze setting: ``none``, ``all``, ``lock`` or a block count k ≥ 0 (0 = ``none``).

    Raises:
        ValueError: anything else, naming the config `key`.
    """
    if value is None or value is False:
        return "none"
    if isinstance(value, str) and value.strip().lower() in SETTINGS:
        return value.strip().lower()
    try:
        k = int(value)
    except (TypeError, ValueError):
        k = -1
    if k < 0 or isinstance(value, bool) or (isinstance(value, float) and value != k):
        raise ValueError(f"{key} must be 'none', 'all', 'lock' or a number of blocks k ≥ 0, got {value!r}")
    return "none" if k == 0 else k


def _get(module: nn.Module, dotted: str) -> nn.Module | None:
    for part in dotted.split("."):
        module = getattr(module, part, None)
        if module is None:
            return None
    return module


def block_layout(model: nn.Module) -> tuple[list[nn.Module], list[nn.Module]]:
    """The stem modules and the block list of a timm image model or a Hugging Face BERT.

    ViT: ``patch_embed`` (+ ``norm_pre``) + ``blocks``; Swin: ``patch_embed`` + ``layers``; ConvNeXt:
    ``stem`` + ``stages``; BERT: ``embeddings`` + ``encoder.layer``; open_clip ViT: ``conv1`` +
    ``ln_pre`` + ``transformer.resblocks``.

    Raises:
        ValueError: a layout with no known block list, naming the children it has.
    """
    stems = [m for m in (_get(model, name) for name in _STEMS) if m is not None and any(True for _ in m.parameters())]
    for name in _BLOCK_LISTS:
        blocks = _get(model, name)
        if blocks is not None and len(list(blocks.children())):
            return stems, list(blocks.children())
    children = [name for name, _ in model.named_children()]
    raise ValueError(
        f"cannot freeze blocks of {type(model).__name__}: no block list among {list(_BLOCK_LISTS)} "
        f"(its children: {children}); use 'all' or 'none', or freeze it by hand"
    )


def freeze_tower(model: nn.Module, setting: str | int, key: str = "model.image_freeze") -> list[nn.Module]:
    """Freeze a tower in place and return the frozen modules (to keep in eval mode).

    Args:
        model: the backbone (timm model or Hugging Face encoder).
        setting: ``none``, ``all`` / ``lock`` (the whole module), or k: the stem (+ a ViT's
            class/position tokens) and the first k blocks (ViT blocks, Swin layers, ConvNeXt
            stages, BERT layers, open_clip resblocks).
        key: config key named in errors.

    Raises:
        ValueError: unknown setting or layout, or k larger than the number of blocks.
    """
    setting = parse_freeze(setting, key)
    if setting == "none":
        return []
    if setting in ("all", "lock"):
        frozen = [model]
    else:
        stems, blocks = block_layout(model)
        if setting > len(blocks):
            raise ValueError(f"{key}: {setting} blocks requested but {type(model).__name__} has only {len(blocks)}")
        frozen = stems + blocks[:setting]
        for name in _VIT_STEM_PARAMS:
            param = getattr(model, name, None)
            if isinstance(param, nn.Parameter):
                param.requires_grad_(False)
    for module in frozen:
        module.requires_grad_(False)
        module.eval()
    return frozen


def keep_frozen_in_eval(modules: Iterable[nn.Module]) -> None:
    """Put frozen modules back in eval mode (call after every ``.train()``)."""
    for module in modules:
        module.eval()


class Freeze(Objective):
    """Fixed towers for transfer studies: LiT (``image: lock``), a locked tower (``all``) or its first k blocks.

    Adds no loss term. Frozen parts stay in eval mode whenever the module trains.

    Args:
        image: the image tower's setting (``none``, ``all``, ``lock`` or k; module docstring).
        text: the text tower's setting (timm/BERT towers only).
    """

    def __init__(self, image: str | int = "none", text: str | int = "none") -> None:
        super().__init__()
        self.image, self.text = parse_freeze(image, "Freeze.image"), parse_freeze(text, "Freeze.text")
        self._frozen: list[nn.Module] = []  # not submodules: the model owns them

    def setup(self, model: nn.Module) -> None:
        timm_bert = isinstance(model, DualEncoder)
        if self.text != "none" and not timm_bert:
            raise ValueError("Freeze.text needs the timm/BERT towers, not preset: open_clip; set text: none")
        if timm_bert:
            self._frozen = _freeze_side(model.image_encoder.backbone, model.image_projection, self.image, "Freeze.image")
            self._frozen += _freeze_side(model.text_encoder.model, model.text_projection, self.text, "Freeze.text")
        else:  # open_clip: the projection lives inside the tower (`visual.proj`, or a timm trunk's `visual.head`)
            visual = model.clip.visual
            self._frozen = freeze_tower(visual, "all" if self.image == "lock" else self.image, "Freeze.image")
            if self.image == "all":
                projection = getattr(visual, "proj", None)
                projection = projection if isinstance(projection, nn.Parameter) else getattr(visual, "head", None)
                if projection is not None:
                    projection.requires_grad_(True)

    def train(self, mode: bool = True) -> "Freeze":
        """Runs after the model's own ``train`` (the model is registered first): frozen parts back to eval."""
        super().train(mode)
        keep_frozen_in_eval(self._frozen)
        return self


def _freeze_side(tower: nn.Module, projection: nn.Module, setting: str | int, key: str) -> list[nn.Module]:
    """Freeze a timm/BERT tower; with ``lock`` also its projection into the shared space."""
    frozen = freeze_tower(tower, "all" if setting == "lock" else setting, key)
    if setting == "lock":
        frozen += freeze_tower(projection, "all", key)
    return frozen
