"""The plain one-probe-at-a-time λ-sweep: the reference that validates and benchmarks `batched_probe`.

Written the way a researcher would write the cone-effect paper's probe (Restrepo et al., 2026, §2.2.4)
without any of the batched trainer's tricks: for each (λ, seed), `medalign.metrics.geometry.lambda_shift` on
every split with Δ from train (Eq. 5–6), an ``nn.Linear(2d, C)``, a shuffled ``DataLoader``, the
config's optimiser (AdamW or the paper's SGD), BCE with ``pos_weight`` n_neg/n_pos (multilabel) or
cross-entropy (weighted N/(C·count_c) only for ``class_weight: balanced``), a full validation pass
per epoch, early stopping restoring the best ``state_dict``, and test ROC AUC from sklearn. Its loss
weights, stopping and AUC are computed here independently of `batched_probe` / `gap_sweep`; only the
seeded validation carve (`split_rows`) is shared so that both see the same rows.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from medalign.studies.gap.batched_probe import ProbeConfig, Task, split_rows
from medalign.studies.gap.probe_config import probe_loss, targets_and_mask
from medalign.metrics.classification import macro_auc
from medalign.metrics.geometry import gap_vector, lambda_shift


def _loss(logits: Tensor, y: Tensor, weight: Tensor | None, task: Task) -> Tensor:
    """The study's one `probe_loss` on raw labels (NaN = unknown); `weight` None: unweighted."""
    targets, known = targets_and_mask(y, task)
    return probe_loss(logits, targets, known, torch.ones(logits.shape[-1]) if weight is None else weight, task)


def reference_probe(
    train: tuple[Tensor, Tensor, Tensor],
    val: tuple[Tensor, Tensor, Tensor],
    test: tuple[Tensor, Tensor, Tensor],
    delta: Tensor,
    lam: float,
    seed: int,
    task: Task,
    n_classes: int,
    config: ProbeConfig,
) -> tuple[float, bool]:
    """Train one early-fusion probe on λ-shifted (image, text); return (macro test AUC, converged).

    Args:
        train / val / test: (v (N, d), t (N, d), y) with y (N, C) 1/0/NaN (multilabel) or (N,) ids.
        delta: Δ = μ_v − μ_t of the train split, (d,).
        lam: the shift fraction λ.
        seed: seeds the initialisation and the DataLoader's shuffling.
    """
    torch.manual_seed(seed)
    fused = [torch.cat(lambda_shift(v, t, lam, delta), dim=1) for v, t, _ in (train, val, test)]  # (N, 2d) each
    (x_tr, x_va, x_te), (y_tr, y_va, y_te) = fused, [s[2] for s in (train, val, test)]
    weight = None
    if task == "multilabel" and config.class_weight != "none":  # class-weighted BCE: n_neg / n_pos per class
        weight = (y_tr == 0).sum(0).float() / (y_tr == 1).sum(0).float().clamp(min=1)
    elif task == "multiclass" and config.class_weight == "balanced":  # N / (C · count_c)
        weight = len(y_tr) / (n_classes * torch.bincount(y_tr, minlength=n_classes).float().clamp(min=1))
    probe = nn.Linear(x_tr.shape[1], n_classes, bias=config.bias)
    if config.optimizer == "sgd":
        optimizer = torch.optim.SGD(probe.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    else:
        optimizer = torch.optim.AdamW(probe.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    loader = DataLoader(TensorDataset(x_tr, y_tr), batch_size=config.batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(seed))
    best, stale, best_state, converged = math.inf, 0, copy.deepcopy(probe.state_dict()), False
    for _ in range(config.epoch_budget(len(x_tr))):
        probe.train()
        for xb, yb in loader:
            optimizer.zero_grad()
            _loss(probe(xb), yb, weight, task).backward()
            optimizer.step()
        probe.eval()
        with torch.no_grad():
            val_loss = _loss(probe(x_va), y_va, weight, task).item()
        if val_loss < best - config.min_delta:
            best, stale, best_state = val_loss, 0, copy.deepcopy(probe.state_dict())
        else:
            stale += 1
            if stale >= config.patience:
                converged = True
                break
    probe.load_state_dict(best_state)
    with torch.no_grad():
        logits = probe(x_te)
        proba = torch.sigmoid(logits) if task == "multilabel" else torch.softmax(logits, dim=1)
    return macro_auc(y_te.numpy(), proba.numpy()), converged


def reference_sweep(
    train: tuple[Tensor, Tensor, Tensor],
    val: tuple[Tensor, Tensor, Tensor] | None,
    test: tuple[Tensor, Tensor, Tensor],
    lambdas: list[float],
    seeds: list[int],
    task: Task,
    n_classes: int,
    config: ProbeConfig | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(Macro test AUC (L, S), converged (L, S)) of one reference probe per (λ, seed), one after the other.

    Tensors as in `reference_probe` (float v / t; float labels for multilabel, long ids for multiclass).
    Without `val`, each seed carves the same 10 % of train as the batched trainer (`split_rows`).
    """
    cfg = config or ProbeConfig()
    delta = gap_vector(train[0], train[1])  # Eq. 6 on train rows only
    auc, converged = np.zeros((len(lambdas), len(seeds))), np.zeros((len(lambdas), len(seeds)), bool)
    for j, seed in enumerate(seeds):
        if val is None:
            fit, held = (torch.from_numpy(r) for r in split_rows(len(train[0]), 0, seed, cfg.val_fraction))
            fit_split, val_split = tuple(a[fit] for a in train), tuple(a[held] for a in train)
        else:
            fit_split, val_split = train, val
        for i, lam in enumerate(lambdas):
            auc[i, j], converged[i, j] = reference_probe(fit_split, val_split, test, delta, lam, seed, task, n_classes, cfg)
    return auc, converged
