"""Optimizer parameter groups and the warmup + cosine learning-rate schedule."""

from __future__ import annotations

import math
from typing import Iterable

import torch
from torch import nn


def param_groups(
    named_parameters: Iterable[tuple[str, nn.Parameter]],
    weight_decay: float,
    no_decay_names: tuple[str, ...] = ("logit_scale",),
) -> list[dict]:
    """Split parameters into decayed weights and undecayed biases, norms, scalars (open_clip's rule).

    A parameter is exempt from weight decay when it has fewer than 2 dimensions (biases,
    LayerNorm / BatchNorm weights, the logit scale) or its name contains one of `no_decay_names`.
    """
    decay, no_decay = [], []
    for name, param in named_parameters:
        if not param.requires_grad:
            continue
        exempt = param.ndim < 2 or any(n in name for n in no_decay_names)
        (no_decay if exempt else decay).append(param)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def warmup_cosine(total_steps: int, warmup_fraction: float = 0.1, min_ratio: float = 0.0):
    """LR multiplier: linear warmup over `warmup_fraction` of the steps, then cosine to `min_ratio`.

    Args:
        total_steps: optimizer steps of the whole run.
        warmup_fraction: share of steps spent warming up (0.1 in the eCLIP paper).
        min_ratio: final LR as a fraction of the peak.
    """
    if not 0 <= warmup_fraction < 1:
        raise ValueError(f"model.warmup_fraction must be in [0, 1), got {warmup_fraction}")
    total_steps = max(int(total_steps), 1)
    warmup = int(round(warmup_fraction * total_steps))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min((step - warmup) / max(total_steps - warmup, 1), 1.0)
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


FUSED_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)  # torch's fused AdamW kernel


def fused_supported(params: Iterable[torch.Tensor]) -> bool:
    """True when AdamW's fused CUDA kernel can take every tensor: all on CUDA, all in `FUSED_DTYPES`.

    The fused kernel updates all parameters in one launch per group (PyTorch's fastest AdamW
    on GPUs). On CPU it is not requested: ``foreach`` is PyTorch's default there, and a model
    with some tensors elsewhere (e.g. on CPU while others are on CUDA) would be refused by it.
    """
    tensors = list(params)
    return bool(tensors) and all(t.is_cuda and t.dtype in FUSED_DTYPES for t in tensors)


def build_optimizer(
    groups: list[dict], lr: float, betas: tuple[float, float], eps: float, fused: bool | None = None
) -> torch.optim.Optimizer:
    """AdamW over prepared groups; fused on CUDA when every tensor lives there.

    Args:
        groups: parameter groups (`param_groups`).
        lr: peak learning rate.
        betas: AdamW betas.
        eps: AdamW epsilon.
        fused: None = `fused_supported` decides (call this after the model is on its device, as
            Lightning's ``configure_optimizers`` is); True forces it (PyTorch raises if unsupported).
    """
    if fused is None:
        fused = fused_supported(p for g in groups for p in g["params"])
    return torch.optim.AdamW(groups, lr=lr, betas=tuple(betas), eps=eps, fused=fused or None)
