"""A learnable gap shift: λ optimised jointly with the early-fusion probe (cone-effect paper, §2.2 option).

Instead of sweeping a grid, λ = sigmoid(θ) is a parameter of the probe. Each step shifts the
minibatch with `medalign.metrics.geometry.lambda_shift` (Eq. 5) at the current λ — the function is
differentiable in a tensor λ — with Δ from the train split (Eq. 6), and the loss (the sweep's
class-weighted BCE / CE) is back-propagated to the probe's weights and to θ. The sigmoid keeps λ in
(0, 1). Early stopping on validation loss restores the best (weights, λ) together. One model per
seed, with the sweep's validation split, data order and initialisation for that seed, so with a
zero λ learning rate it reproduces the sweep's probe at the initial λ exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from medalign.evaluation.gap.batched_probe import (
    ProbeConfig,
    Task,
    class_weights,
    init_probe,
    make_optimizer,
    probe_loss,
    split_rows,
    targets_and_mask,
)
from medalign.metrics.geometry import lambda_shift


@dataclass
class LearnedLambda:
    """The best (early-stopped) state of each seed's probe and its λ.

    Attributes:
        lambdas: (S,) the λ each seed settled on, in (0, 1).
        weight: (S, 2d, C). bias: (S, C).
        best_epoch: (S,) epoch (1-based) whose state was kept. epochs: (S,) epochs trained.
        history: (S, epochs) λ at the end of each epoch (NaN after stopping).
    """

    lambdas: np.ndarray
    weight: Tensor
    bias: Tensor
    best_epoch: np.ndarray
    epochs: np.ndarray
    history: np.ndarray


def _fused(v: Tensor, t: Tensor, lam: Tensor, delta: Tensor) -> Tensor:
    """concat(lambda_shift(v, t, λ, Δ)), (B, 2d); differentiable in λ (a 0-d tensor)."""
    return torch.cat(lambda_shift(v, t, lam, delta), dim=1)


def train_learnable_lambda(
    train: tuple[Tensor, Tensor, Tensor],
    val: tuple[Tensor, Tensor, Tensor] | None,
    delta: Tensor,
    seeds: list[int],
    task: Task,
    n_classes: int,
    config: ProbeConfig | None = None,
    init: float = 0.5,
) -> LearnedLambda:
    """Fit one early-fusion probe with a learnable λ per seed.

    Args:
        train / val: (v (N, d), t (N, d), y) — y (N, C) 1/0/NaN (multilabel) or (N,) ids; `val`
            None → the sweep's seeded carve of ``config.val_fraction`` of train.
        delta: Δ = μ_v − μ_t of the train split, (d,).
        config: probe optimisation; ``config.lambda_lr`` is θ's learning rate (None → ``config.lr``).
        init: the initial λ, in (0, 1) (θ = logit(init)).
    """
    cfg = config or ProbeConfig()
    if not 0 < init < 1:
        raise ValueError(f"learnable λ: init must be in (0, 1), got {init}")
    v_pool, t_pool, y_pool = train if val is None else (torch.cat([a, b]) for a, b in zip(train, val))
    n_val = 0 if val is None else len(val[0])
    y_pool, known = targets_and_mask(y_pool, task)
    S, dim = len(seeds), 2 * v_pool.shape[1]
    weights, biases = torch.zeros(S, dim, n_classes), torch.zeros(S, n_classes)
    lambdas, best_epoch, epochs = np.zeros(S), np.zeros(S, int), np.zeros(S, int)
    history = np.full((S, cfg.max_epochs), np.nan)
    for i, seed in enumerate(seeds):
        fit, held = (torch.from_numpy(r) for r in split_rows(len(train[0]), n_val, seed, cfg.val_fraction))
        cw = class_weights((train[2] if val is None else torch.cat([train[2], val[2]]))[fit], task, n_classes)
        w0, b0 = init_probe(seed, 0, dim, n_classes)
        weight, bias = w0.requires_grad_(), b0.requires_grad_()
        theta = torch.tensor(math.log(init / (1 - init)), requires_grad=True)
        lambda_lr = cfg.lr if cfg.lambda_lr is None else cfg.lambda_lr
        optimizer = make_optimizer([{"params": [weight, bias]}, {"params": [theta], "lr": lambda_lr}], cfg)
        gen = torch.Generator().manual_seed(seed)
        best, stale, best_state = math.inf, 0, None
        for epoch in range(1, cfg.max_epochs + 1):
            order = fit[torch.randperm(len(fit), generator=gen)]
            for start in range(0, len(order), cfg.batch_size):
                rows = order[start : start + cfg.batch_size]
                z = _fused(v_pool[rows], t_pool[rows], torch.sigmoid(theta), delta) @ weight + bias  # (B, C)
                loss = probe_loss(z, y_pool[rows], known[rows], cw, task)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            with torch.no_grad():
                lam = torch.sigmoid(theta)
                z = _fused(v_pool[held], t_pool[held], lam, delta) @ weight + bias
                val_loss = probe_loss(z, y_pool[held], known[held], cw, task).item()
            history[i, epoch - 1] = lam.item()
            if val_loss < best:
                best, stale, best_epoch[i] = val_loss, 0, epoch
                best_state = (weight.detach().clone(), bias.detach().clone(), lam.item())
            else:
                stale += 1
            epochs[i] = epoch
            if stale >= cfg.patience:
                break
        weights[i], biases[i], lambdas[i] = best_state
    return LearnedLambda(lambdas, weights, biases, best_epoch, epochs, history)


def predict_learned(v: Tensor, t: Tensor, delta: Tensor, fit: LearnedLambda, task: Task) -> Tensor:
    """Probabilities (S, N, C) of each seed's probe on inputs shifted by that seed's λ."""
    out = []
    with torch.no_grad():
        for s, lam in enumerate(fit.lambdas):
            z = _fused(v, t, torch.tensor(float(lam)), delta) @ fit.weight[s] + fit.bias[s]
            out.append(torch.sigmoid(z) if task == "multilabel" else torch.softmax(z, dim=-1))
    return torch.stack(out)
