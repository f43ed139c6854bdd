"""A learnable gap shift: λ optimised jointly with the early-fusion probe (cone-effect paper, §2.2 option).

Instead of sweeping a grid, λ = sigmoid(θ) is a parameter of the probe. Each step shifts the
minibatch with `medalign.metrics.geometry.lambda_shift` (Eq. 5) at the current λ — the function is
differentiable in a tensor λ — with Δ from the train split (Eq. 6), and the loss (the sweep's
weighted BCE / CE) is back-propagated to the probe's weights and to θ. The sigmoid keeps λ in
(0, 1). Early stopping on validation loss restores the best (weights, λ) together. One model per
seed, trained by the sweep's own loop (`probe_loop.train_one_probe`) with the sweep's validation
split, data order and initialisation for that seed, so with a zero λ learning rate it reproduces the
sweep's probe at the initial λ exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from medalign.studies.gap.probe_config import ProbeConfig, Task, loss_weights, split_rows, targets_and_mask
from medalign.studies.gap.probe_loop import train_one_probe
from medalign.metrics.geometry import lambda_shift


@dataclass
class LearnedLambda:
    """The best (early-stopped) state of each seed's probe and its λ.

    Attributes:
        lambdas: (S,) the λ each seed settled on, in (0, 1).
        weight: (S, 2d, C). bias: (S, C).
        best_epoch: (S,) epoch (1-based) whose state was kept. epochs: (S,) epochs trained.
        history: (S, budget) λ at the end of each epoch (NaN after stopping).
        converged: (S,) whether the stopping rule fired within the budget (`probe_config`).
    """

    lambdas: np.ndarray
    weight: Tensor
    bias: Tensor
    best_epoch: np.ndarray
    epochs: np.ndarray
    history: np.ndarray
    converged: np.ndarray


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
    progress: bool | None = None,
) -> LearnedLambda:
    """Fit one early-fusion probe with a learnable λ per seed.

    Args:
        train / val: (v (N, d), t (N, d), y) — y (N, C) 1/0/NaN (multilabel) or (N,) ids; `val`
            None → the sweep's seeded carve of ``config.val_fraction`` of train.
        delta: Δ = μ_v − μ_t of the train split, (d,).
        config: probe optimisation; ``config.lambda_lr`` is θ's learning rate (None → ``config.lr``).
        init: the initial λ, in (0, 1) (θ = logit(init)).
        progress: report each seed's probe with an ETA (`medalign.progress`); False: quiet.
    """
    from medalign.progress import track

    cfg = config or ProbeConfig()
    if not 0 < init < 1:
        raise ValueError(f"learnable λ: init must be in (0, 1), got {init}")
    v_pool, t_pool, y_raw = train if val is None else (torch.cat([a, b]) for a, b in zip(train, val))
    n_val = 0 if val is None else len(val[0])
    y_pool, known = targets_and_mask(y_raw, task)
    fits = []
    for seed in track(list(seeds), desc="gap sweep: learnable-λ probes", enabled=progress, unit="probe"):
        fit, held = (torch.from_numpy(r) for r in split_rows(len(train[0]), n_val, seed, cfg.val_fraction))
        weight = loss_weights(y_raw[fit], task, n_classes, cfg.class_weight)
        inputs = lambda rows, lam: _fused(v_pool[rows], t_pool[rows], lam, delta)  # noqa: E731 (B, 2d)
        fits.append(train_one_probe(inputs, y_pool, known, weight, fit, held, seed, 0, 2 * v_pool.shape[1],
                                    n_classes, task, cfg, lam_init=init))
    history = np.full((len(seeds), max(len(f.history) for f in fits)), np.nan)
    for i, f in enumerate(fits):
        history[i, : len(f.history)] = f.history
    return LearnedLambda(np.array([f.lam for f in fits]), torch.stack([f.weight for f in fits]),
                         torch.stack([f.bias for f in fits]), np.array([f.best_epoch for f in fits]),
                         np.array([f.epochs for f in fits]), history, np.array([f.converged for f in fits]))


def predict_learned(v: Tensor, t: Tensor, delta: Tensor, fit: LearnedLambda, task: Task) -> Tensor:
    """Probabilities (S, N, C) of each seed's probe on inputs shifted by that seed's λ."""
    out = []
    with torch.no_grad():
        for s, lam in enumerate(fit.lambdas):
            z = _fused(v, t, torch.tensor(float(lam)), delta) @ fit.weight[s] + fit.bias[s]
            out.append(torch.sigmoid(z) if task == "multilabel" else torch.softmax(z, dim=-1))
    return torch.stack(out)
