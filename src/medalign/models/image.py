"""Image tower: any timm model, pooled to one feature vector per image."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import timm
import torch
from torch import nn


class ImageEncoder(nn.Module):
    """A timm backbone without its classifier head.

    Args:
        model_name: timm model name (e.g. ``swin_tiny_patch4_window7_224``).
        pretrained: load timm's pretrained weights; offline this needs `weights_path`.
        weights_path: local weights file (``.safetensors``, ``.pth``, ``.bin``) loaded through
            timm's ``pretrained_cfg_overlay=dict(file=...)`` mechanism.
        gradient_checkpointing: trade compute for activation memory.
        **timm_kwargs: forwarded to `timm.create_model` (``img_size``, ``depth``, ...).
    """

    def __init__(
        self,
        model_name: str,
        pretrained: bool = False,
        weights_path: str | None = None,
        gradient_checkpointing: bool = False,
        **timm_kwargs: Any,
    ) -> None:
        super().__init__()
        if model_name.startswith(("hf-hub:", "hf_hub:")):
            raise ValueError(f"model.image_model {model_name!r} would be fetched from the Hugging Face hub; medalign runs "
                             "offline: pass the timm architecture name (e.g. vit_base_patch16_224) as --model.image_model "
                             "and the downloaded weights file as --model.image_weights")
        if weights_path is not None:
            if not Path(weights_path).is_file():
                raise FileNotFoundError(f"image tower weights not found: {weights_path}")
            pretrained = True
            timm_kwargs["pretrained_cfg_overlay"] = dict(file=str(weights_path))
        elif pretrained:
            from medalign.models.weights import require_offline_ok

            require_offline_ok(f"timm pretrained weights for {model_name!r}", "--model.image_weights")
        self.backbone = timm.create_model(model_name, pretrained=pretrained, num_classes=0, **timm_kwargs)
        self.backbone.train()  # whatever the loader left: Lightning keeps a module's mode at the start of `fit`
        if gradient_checkpointing:
            self.backbone.set_grad_checkpointing(True)
        self.num_features: int = self.backbone.num_features

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Map images (B, C, H, W) to pooled features (B, num_features)."""
        return self.backbone(image)


@contextmanager
def running_stats_frozen(module: nn.Module) -> Iterator[None]:
    """Inside, `module`'s BatchNorm layers leave their running statistics (and batch count) unchanged.

    In training mode they still normalise with the batch's own statistics and pass gradients as
    usual; in eval mode nothing changes. For forwards of a second image distribution (eCLIP's
    heatmap-processed expert views) that the running statistics — what evaluation normalises
    with — must not absorb. Towers without BatchNorm (ViT, Swin: LayerNorm) are unaffected.
    """
    layers = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    for layer in layers:
        layer.track_running_stats = False  # train mode: batch statistics, running buffers neither read nor written
    try:
        yield
    finally:
        for layer in layers:
            layer.track_running_stats = True
