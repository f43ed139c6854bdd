"""`SigLIP(bias_init=None)` starts the bias at −log(global batch) at the first training step only."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from medalign.methods.base import StepContext
from medalign.methods.siglip import SigLIP


def _embeddings(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return (F.normalize(torch.randn(n, 8, generator=generator), dim=-1),
            F.normalize(torch.randn(n, 8, generator=generator), dim=-1))


def test_bias_follows_the_global_batch_at_the_first_training_step():
    objective = SigLIP().train()
    image, text = _embeddings(4)
    world = lambda x: torch.cat([x, x, x])  # noqa: E731 - 3 ranks' rows: the global batch is 12
    objective.loss(image, text, torch.tensor(10.0), StepContext(model=torch.nn.Identity(), step=0, gather=world))
    assert abs(float(objective.logit_bias) + math.log(12)) < 1e-6
    objective.logit_bias.data.fill_(-1.0)  # as if trained; later steps never reset it
    objective.loss(image, text, torch.tensor(10.0), StepContext(model=torch.nn.Identity(), step=0))
    assert float(objective.logit_bias) == -1.0


def test_resumed_or_fixed_bias_is_kept():
    image, text = _embeddings(4)
    resumed = SigLIP().train()
    resumed.logit_bias.data.fill_(-2.5)  # restored from a checkpoint
    resumed.loss(image, text, torch.tensor(10.0), StepContext(model=torch.nn.Identity(), step=7))
    assert float(resumed.logit_bias) == -2.5
    fixed = SigLIP(bias_init=-10.0).train()
    fixed.loss(image, text, torch.tensor(10.0), StepContext(model=torch.nn.Identity(), step=0))
    assert float(fixed.logit_bias) == -10.0
    validating = SigLIP().eval()  # a sanity validation before training does not consume the first step
    validating.loss(image, text, torch.tensor(10.0), StepContext(model=torch.nn.Identity(), step=0))
    assert float(validating.logit_bias) == -10.0 and validating._bias_from_batch
