"""`compile_towers`: ``torch.compile`` the image and text towers in place (``model.compile: true``).

`nn.Module.compile` compiles a module's ``__call__`` without wrapping it, so parameter names
and checkpoints stay exactly those of the uncompiled model (no ``_orig_mod.`` prefix) and a
compiled run resumes into an uncompiled one and back. Only the towers are compiled: the
projections, normalisation and losses are a few small ops each.
"""

from __future__ import annotations

from typing import Any

from torch import nn


def towers(model: nn.Module) -> dict[str, nn.Module]:
    """The image and text towers of a `DualEncoder` or `OpenClipDualEncoder`, by name."""
    found = {"image": model.image_encoder}
    text = getattr(model, "text_encoder", None)
    clip = getattr(model, "clip", None)
    if text is None and clip is not None:  # open_clip: CustomTextCLIP.text, or CLIP's text transformer
        text = getattr(clip, "text", None) or getattr(clip, "transformer", None)
    if text is not None:
        found["text"] = text
    return found


def compile_towers(model: nn.Module, **compile_kwargs: Any) -> list[str]:
    """Compile each tower in place; returns the names of the compiled towers.

    Args:
        model: a dual encoder.
        **compile_kwargs: `torch.compile` arguments (``backend``, ``mode``, ``dynamic``, ...).
            ``backend="eager"`` traces with Dynamo but runs the captured graphs as they are
            (for tests: same numbers, no code generation).
    """
    compiled = towers(model)
    for tower in compiled.values():
        tower.compile(**compile_kwargs)
    return list(compiled)
