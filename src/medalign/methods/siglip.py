"""SigLIP's pair loss: a sigmoid loss per image–text pair with a learnable bias (Zhai et al., ICCV 2023).

Replaces CLIP's InfoNCE when listed. SigLIP starts the logit scale at 10 (``model.init_temperature:
0.1``) and the bias at −10 for its batch of 32k (the paper's §3.3), which is −log N for a global
batch of N: by default the bias starts at −log(global batch) at the first training step
(`medalign.losses.siglip_bias_init`; docs/methods.md, "SigLIP at small batch"); a number fixes it.
The bias is a parameter of this objective, in its own optimizer group (`bias_weight_decay`, `bias_lr_scale`).
"""

from __future__ import annotations

import torch

from medalign.losses import siglip_bias_init, siglip_contrastive_loss
from medalign.methods.base import PairLoss, StepContext


class SigLIP(PairLoss):
    """Sigmoid pair loss with a learnable logit bias; logged as ``siglip_loss`` (and ``logit_bias``).

    Args:
        bias_init: the bias b at start; None (default): −log(global batch) at the first training step
            (SigLIP's −10 at its batch of 32k); a resumed run keeps its checkpoint's bias.
        bias_weight_decay: AdamW weight decay of the bias (0: a scalar is not decayed, open_clip's rule).
        bias_lr_scale: the bias's learning rate as a multiple of ``model.lr``.
    """

    term = "siglip_loss"
    legacy_state = {"logit_bias": "logit_bias"}

    def __init__(self, bias_init: float | None = None, bias_weight_decay: float = 0.0, bias_lr_scale: float = 1.0) -> None:
        super().__init__()
        if bias_weight_decay < 0 or bias_lr_scale <= 0:
            raise ValueError(f"SigLIP needs bias_weight_decay ≥ 0 ({bias_weight_decay}) and bias_lr_scale > 0 ({bias_lr_scale})")
        self.bias_init, self.bias_weight_decay, self.bias_lr_scale = bias_init, bias_weight_decay, bias_lr_scale
        # a placeholder until the first training batch when bias_init is None
        self.logit_bias = torch.nn.Parameter(torch.tensor(-10.0 if bias_init is None else float(bias_init)))
        self._bias_from_batch = bias_init is None

    def param_groups(self, weight_decay: float, lr: float) -> list[dict]:
        return [{"params": [self.logit_bias], "weight_decay": self.bias_weight_decay, "lr": lr * self.bias_lr_scale}]

    def loss(self, image_emb: torch.Tensor, text_emb: torch.Tensor, logit_scale: torch.Tensor,
             ctx: StepContext) -> torch.Tensor:
        text_all = ctx.gather(text_emb)  # (world·B, D)
        if self._bias_from_batch and self.training and ctx.step == 0:  # a fresh run; a resumed one keeps its bias
            with torch.no_grad():
                self.logit_bias.fill_(siglip_bias_init(len(text_all)))
        if self.training:
            self._bias_from_batch = False
        return siglip_contrastive_loss(image_emb, text_all, logit_scale, self.logit_bias,
                                       offset=ctx.offset(len(image_emb)))

    def step_logs(self) -> dict[str, torch.Tensor]:
        return {"logit_bias": self.logit_bias.detach()}
