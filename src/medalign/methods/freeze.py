"""Freezing a pretrained tower, whole (LiT) or its first k blocks (transfer studies).

LiT (Zhai et al., CVPR 2022, "LiT: Zero-Shot Transfer with Locked-image text Tuning") locks a
pretrained image tower and trains only the text side; partial freezing keeps the stem and the
first k blocks of a tower fixed. A frozen module has ``requires_grad = False`` on every
parameter (so `medalign.optim.param_groups` gives it no optimizer state) and is kept in eval
mode (BatchNorm statistics and dropout fixed) by `keep_frozen_in_eval`.
"""

from __future__ import annotations

from typing import Iterable

from torch import nn

# Where each layout keeps its stem (embedding) and its sequence of blocks, in the order tried.
_STEMS = ("patch_embed", "stem", "embeddings", "conv1")
_BLOCK_LISTS = ("blocks", "layers", "stages", "encoder.layer", "transformer.resblocks")  # last: open_clip ViT
_VIT_STEM_PARAMS = ("cls_token", "reg_token", "pos_embed", "dist_token")  # learned tokens fed in with the stem


def parse_freeze(value: str | int | None, key: str) -> str | int:
    """Normalise a freeze setting: ``none``, ``all`` or a block count k ≥ 0 (0 = ``none``).

    Raises:
        ValueError: anything else, naming the config `key`.
    """
    if value is None or value is False:
        return "none"
    if isinstance(value, str) and value.strip().lower() in ("none", "all"):
        return value.strip().lower()
    try:
        k = int(value)
    except (TypeError, ValueError):
        k = -1
    if k < 0 or isinstance(value, bool) or (isinstance(value, float) and value != k):
        raise ValueError(f"{key} must be 'none', 'all' or a number of blocks k ≥ 0, got {value!r}")
    return "none" if k == 0 else k


def _get(module: nn.Module, dotted: str) -> nn.Module | None:
    for part in dotted.split("."):
        module = getattr(module, part, None)
        if module is None:
            return None
    return module


def block_layout(model: nn.Module) -> tuple[list[nn.Module], list[nn.Module]]:
    """The stem modules and the block list of a timm image model or a Hugging Face BERT.

    ViT: ``patch_embed`` + ``blocks``; Swin: ``patch_embed`` + ``layers``; ConvNeXt:
    ``stem`` + ``stages``; BERT: ``embeddings`` + ``encoder.layer``.

    Raises:
        ValueError: a layout with no known block list, naming the children it has.
    """
    stems = [m for m in (_get(model, name) for name in _STEMS) if m is not None]
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
        setting: ``none``, ``all``, or k: the stem (+ a ViT's class/position tokens) and the
            first k blocks (ViT blocks, Swin layers, ConvNeXt stages, BERT layers).
        key: config key named in errors.

    Raises:
        ValueError: unknown setting or layout, or k larger than the number of blocks.
    """
    setting = parse_freeze(setting, key)
    if setting == "none":
        return []
    if setting == "all":
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
