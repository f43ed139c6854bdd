"""The one-probe training loop: minibatch steps, a validation pass per epoch, early stopping.

Used by the batched trainer's ``sequential`` reference mode (fixed λ, inputs precomputed) and by the
learnable λ (λ = sigmoid(θ) a parameter, inputs shifted at the current λ every step). A seed fixes
the initialisation (`init_probe`), the data order (one permutation of the fit rows per epoch) and,
upstream, the validation rows; the batched trainer follows the same order, so the two agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from medalign.studies.gap.probe_config import ProbeConfig, Task, early_stop, init_probe, make_optimizer, probe_loss

# inputs(rows (B,), λ 0-d tensor or None) → probe inputs (B, in)
Inputs = Callable[[Tensor, Tensor | None], Tensor]


@dataclass
class OneProbe:
    """The best (early-stopped) state of one probe.

    Attributes:
        weight: (in, C). bias: (C,).
        best_epoch: epoch (1-based) whose state was kept. epochs: epochs trained.
        best_val_loss: validation loss at `best_epoch`.
        converged: the stopping rule fired before the budget ran out (`probe_config`).
        lam: λ at `best_epoch` (learnable λ), else None.
        history: λ after each epoch (learnable λ; NaN after stopping), (budget,).
    """

    weight: Tensor
    bias: Tensor
    best_epoch: int
    epochs: int
    best_val_loss: float
    converged: bool
    lam: float | None = None
    history: np.ndarray | None = None


def train_one_probe(
    inputs: Inputs,
    y: Tensor,
    known: Tensor,
    loss_weight: Tensor,
    fit: Tensor,
    val: Tensor,
    seed: int,
    init_index: int,
    in_dim: int,
    n_classes: int,
    task: Task,
    cfg: ProbeConfig,
    lam_init: float | None = None,
) -> OneProbe:
    """Train one linear probe z = inputs(rows) @ W + b with early stopping on validation loss.

    Args:
        inputs: row positions → inputs; called with λ = sigmoid(θ) when `lam_init` is given, else None.
        y / known: targets and known-label mask of every row (`targets_and_mask`).
        loss_weight: (C,) loss weights (`loss_weights`).
        fit / val: row positions to train on / to validate on.
        seed: seeds the data order and, with `init_index`, the initialisation.
        lam_init: learn λ = sigmoid(θ) from this initial value, with lr ``cfg.lambda_lr``.
    """
    w0, b0 = init_probe(seed, init_index, in_dim, n_classes)
    if not cfg.bias:  # a probe without bias: z = x·W
        b0 = torch.zeros_like(b0)
    weight, bias = w0.requires_grad_(), b0.requires_grad_(cfg.bias)
    groups: list[dict] = [{"params": [weight, bias] if cfg.bias else [weight]}]
    theta = None
    if lam_init is not None:
        theta = torch.tensor(math.log(lam_init / (1 - lam_init)), requires_grad=True)
        groups.append({"params": [theta], "lr": cfg.lr if cfg.lambda_lr is None else cfg.lambda_lr})
    optimizer = make_optimizer(groups, cfg)
    budget = cfg.epoch_budget(len(fit))
    history = np.full(budget, np.nan) if theta is not None else None
    gen = torch.Generator().manual_seed(seed)
    best, stale, best_epoch, stopped, state = math.inf, 0, 0, False, None
    for epoch in range(1, budget + 1):
        order = fit[torch.randperm(len(fit), generator=gen)]
        for start in range(0, len(order), cfg.batch_size):
            rows = order[start : start + cfg.batch_size]
            lam = torch.sigmoid(theta) if theta is not None else None
            loss = probe_loss(inputs(rows, lam) @ weight + bias, y[rows], known[rows], loss_weight, task)  # z (B, C)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            lam = torch.sigmoid(theta) if theta is not None else None
            val_loss = probe_loss(inputs(val, lam) @ weight + bias, y[val], known[val], loss_weight, task).item()
        if history is not None:
            history[epoch - 1] = lam.item()
        improved, stale, stopped = early_stop(val_loss, best, stale, cfg)
        if improved:
            best, best_epoch = val_loss, epoch
            state = (weight.detach().clone(), bias.detach().clone(), None if lam is None else lam.item())
        if stopped:
            break
    return OneProbe(state[0], state[1], best_epoch, epoch, best, stopped, state[2], history)
