"""SigLIP's pair loss: a sigmoid loss per image–text pair with a learnable bias (Zhai et al., ICCV 2023).

Replaces CLIP's InfoNCE when listed. SigLIP starts the logit scale at 10 (``model.init_temperature:
0.1``) and the bias at −10 (the paper's §3.3); the bias is a parameter of this objective, in its own
optimizer group (`bias_weight_decay`, `bias_lr_scale`).
"""

from __future__ import annotations

import torch

from medalign.losses import siglip_contrastive_loss
from medalign.methods.base import PairLoss, StepContext


class SigLIP(PairLoss):
    """Sigmoid pair loss with a learnable logit bias; logged as ``siglip_loss`` (and ``logit_bias``).

    Args:
        bias_init: the bias b at start (SigLIP: −10).
        bias_weight_decay: AdamW weight decay of the bias (0: a scalar is not decayed, open_clip's rule).
        bias_lr_scale: the bias's learning rate as a multiple of ``model.lr``.
    """

    term = "siglip_loss"
    legacy_state = {"logit_bias": "logit_bias"}

    def __init__(self, bias_init: float = -10.0, bias_weight_decay: float = 0.0, bias_lr_scale: float = 1.0) -> None:
        super().__init__()
        if bias_weight_decay < 0 or bias_lr_scale <= 0:
            raise ValueError(f"SigLIP needs bias_weight_decay ≥ 0 ({bias_weight_decay}) and bias_lr_scale > 0 ({bias_lr_scale})")
        self.bias_init, self.bias_weight_decay, self.bias_lr_scale = bias_init, bias_weight_decay, bias_lr_scale
        self.logit_bias = torch.nn.Parameter(torch.tensor(float(bias_init)))

    def param_groups(self, weight_decay: float, lr: float) -> list[dict]:
        return [{"params": [self.logit_bias], "weight_decay": self.bias_weight_decay, "lr": lr * self.bias_lr_scale}]

    def loss(self, image_emb: torch.Tensor, text_emb: torch.Tensor, logit_scale: torch.Tensor,
             ctx: StepContext) -> torch.Tensor:
        return siglip_contrastive_loss(image_emb, ctx.gather(text_emb), logit_scale, self.logit_bias,
                                       offset=ctx.offset(len(image_emb)))

    def step_logs(self) -> dict[str, torch.Tensor]:
        return {"logit_bias": self.logit_bias.detach()}
