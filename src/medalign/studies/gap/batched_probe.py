"""Many linear probes trained at once: the early-fusion probe of the cone-effect paper, batched.

A probe is one linear layer (no hidden layer) on the features of one λ; the sweep trains
P = L × S of them (L values of λ, S seeds). `train_probes` keeps all weights in one tensor
(S, in, L, out) and, at every step, feeds each seed's own minibatch to the L probes of that seed:

* the λ-shifted inputs are never materialised: a shifted, renormalised block is
  x' = (x + c_l)·a_l(x) with c_l = ∓λ/2·Δ and a_l(x) = 1/‖x + c_l‖ (cone-effect paper, Eq. 5), so
  x'W = (xW + c_l W)·a_l(x) — one (S, B, d) × (S, d, L·out) matmul per block serves every λ;
* validation is one batched pass over every seed's validation rows per epoch;
* the loss is a single masked, class-weighted sum over (seed, row, λ, class);
* early stopping is per probe: a stopped probe's weights are pinned to its best state.

``sequential=True`` trains the same P probes one at a time (`probe_loop.train_one_probe`, on
explicitly shifted inputs with torch's built-in losses) — the reference the batched mode must match.
Both modes share the per-seed validation split, data order (one permutation per seed and epoch,
shared by the seed's L probes), initialisation and stopping rule, so they agree up to float rounding.
Protocols, loss weights and the convergence rule: `probe_config`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from medalign.studies.gap.probe_config import (
    ProbeConfig,
    Task,
    class_weights,
    init_probe,
    loss_weights,
    make_optimizer,
    probe_loss,
    split_rows,
    targets_and_mask,
)
from medalign.studies.gap.probe_loop import train_one_probe

__all__ = ["ProbeConfig", "ProbeFit", "ShiftedFeatures", "Task", "class_weights", "init_probe", "predict_proba",
           "split_rows", "train_probes"]


@dataclass
class ShiftedFeatures:
    """Implicit probe inputs X[l, i] = concat_k((x_k[i] + shifts[k][l]) · scales[k][l, i]).

    Attributes:
        blocks: raw feature blocks x_k, each (N, d_k) (e.g. image and text embeddings).
        shifts: per-λ shift c_k of each block, (L, d_k).
        scales: per-λ, per-row scale a_k of each block, (L, N) (1/‖x + c‖ to renormalise).
    """

    blocks: list[Tensor]
    shifts: list[Tensor]
    scales: list[Tensor]

    @classmethod
    def plain(cls, *blocks: Tensor) -> "ShiftedFeatures":
        """Unshifted features (L = 1), e.g. the image-only reference probe."""
        return cls(list(blocks), [torch.zeros(1, x.shape[1], dtype=x.dtype) for x in blocks],
                   [torch.ones(1, len(x), dtype=x.dtype) for x in blocks])

    @property
    def n(self) -> int:
        return len(self.blocks[0])

    @property
    def dim(self) -> int:
        return sum(x.shape[1] for x in self.blocks)

    @property
    def n_lambdas(self) -> int:
        return len(self.shifts[0])

    def materialize(self, l: int) -> Tensor:
        """The explicit inputs of the l-th λ, (N, in)."""
        return torch.cat([(x + c[l]) * a[l, :, None] for x, c, a in zip(self.blocks, self.shifts, self.scales)], dim=1)

    def concat(self, other: "ShiftedFeatures") -> "ShiftedFeatures":
        """Rows of `self` then rows of `other` (same shifts)."""
        return ShiftedFeatures([torch.cat([a, b]) for a, b in zip(self.blocks, other.blocks)], self.shifts,
                               [torch.cat([a, b], dim=1) for a, b in zip(self.scales, other.scales)])


@dataclass
class ProbeFit:
    """The best (early-stopped) state of each of the L × S probes.

    Attributes:
        weight: (L, S, in, out) so that logits = X_l @ weight[l, s] + bias[l, s].
        bias: (L, S, out).
        best_epoch: (L, S) epoch (1-based) whose weights were kept.
        epochs: (L, S) epochs trained before stopping.
        best_val_loss: (L, S) validation loss at `best_epoch`.
        val_rows: per seed, the validation rows (positions in the pool train ⧺ val).
        converged: (L, S) whether the stopping rule fired within the budget (`probe_config`).
    """

    weight: Tensor
    bias: Tensor
    best_epoch: np.ndarray
    epochs: np.ndarray
    best_val_loss: np.ndarray
    val_rows: list[np.ndarray]
    converged: np.ndarray


def train_probes(
    train: ShiftedFeatures,
    y_train: Tensor,
    val: ShiftedFeatures | None,
    y_val: Tensor | None,
    seeds: list[int],
    task: Task,
    n_classes: int,
    config: ProbeConfig | None = None,
    sequential: bool = False,
    progress: bool | None = None,
    desc: str = "probes",
) -> ProbeFit:
    """Train one early-fusion linear probe per (λ, seed) with early stopping on validation loss.

    Args:
        train: training inputs (N, in) for each of L values of λ.
        y_train: (N, C) 1 / 0 / NaN (``multilabel``, NaN entries are ignored) or (N,) ids.
        val: validation inputs with the same shifts, or None to carve ``val_fraction`` of train per seed.
        y_val: validation targets (when `val` is given).
        seeds: one probe per seed and λ; a seed fixes its validation split, data order and init.
        task: ``multilabel`` (BCE) or ``multiclass`` (cross-entropy); weighting: ``config.class_weight``.
        n_classes: C, the probe's outputs.
        config: optimisation settings.
        sequential: train the probes one at a time (the reference implementation).
        progress: report epochs (batched) or probes (sequential) with an ETA (`medalign.progress`); False: quiet.
        desc: what the progress reports call this block.
    """
    from medalign.progress import Progress

    cfg = config or ProbeConfig()
    cfg.check()
    pool, y_pool = (train, y_train) if val is None else (train.concat(val), torch.cat([y_train, y_val]))
    n_val = 0 if val is None else val.n
    splits = [split_rows(train.n, n_val, s, cfg.val_fraction) for s in seeds]
    weights = torch.stack([loss_weights(y_pool[fit], task, n_classes, cfg.class_weight) for fit, _ in splits])  # (S, C), fit rows
    y_pool, known = targets_and_mask(y_pool, task)
    run = _train_sequential if sequential else _train_batched
    L, S = train.n_lambdas, len(seeds)
    total, unit = (L * S, "probe") if sequential else (cfg.epoch_budget(len(splits[0][0])), "epoch")
    with Progress(total, f"{desc} ({L} λ × {S} seeds{'' if sequential else ', batched'})", progress, unit=unit) as bar:
        return run(pool, y_pool, known, weights, splits, seeds, task, n_classes, cfg, bar)


def _probe_losses(z: Tensor, y: Tensor, known: Tensor, weights: Tensor, task: Task) -> Tensor:
    """`probe_loss` of every probe, (S, L), from logits z (S, B, L, C) of each seed's rows.

    Args:
        y: (S, B, C) float targets (multilabel) or (S, B) ids. known: (S, B, C) mask (multilabel).
        weights: (S, C) per seed: positive weights (multilabel) or class weights (multiclass).
    """
    return probe_loss(z.transpose(1, 2), y[:, None], known[:, None], weights[:, None], task)  # probes (S, L), rows B


def _batched_logits(x: list[Tensor], a: list[Tensor], feats: ShiftedFeatures, weight: Tensor, bias: Tensor) -> Tensor:
    """Logits (S, B, L, C) of every probe from each seed's raw rows x_k (S, B, d_k) and scales a_k (S, B, L).

    The matmuls run in x_k's dtype (float32, or bfloat16 blocks for ``matmul_dtype``), the rest in float32.
    """
    S, _, L, C = weight.shape
    z, offset = bias[:, None], 0  # (S, 1, L, C)
    for xk, ak, ck in zip(x, a, feats.shifts):
        d = xk.shape[-1]
        wk = weight[:, offset : offset + d]  # (S, d, L, C)
        xw = torch.bmm(xk, wk.reshape(S, d, L * C).to(xk.dtype)).float().view(S, -1, L, C)  # (S, B, L, C)
        cw = torch.einsum("ld,sdlc->slc", ck, wk)  # (S, L, C): the shift's share, c_l W_l
        z = z + (xw + cw[:, None]) * ak[..., None]
        offset += d
    return z


def _gather(feats: ShiftedFeatures, rows: Tensor) -> tuple[list[Tensor], list[Tensor]]:
    """Raw blocks (S, B, d_k) and scales (S, B, L) of the row positions `rows` (S, B); scales stored (N, L)."""
    return [x[rows] for x in feats.blocks], [a[rows] for a in feats.scales]


def _train_batched(pool, y, known, weights, splits, seeds, task, n_classes, cfg, bar) -> ProbeFit:
    S, L, dim = len(seeds), pool.n_lambdas, pool.dim
    inits = [[init_probe(s, l, dim, n_classes) for l in range(L)] for s in seeds]
    weight = torch.stack([torch.stack([w for w, _ in row], dim=1) for row in inits]).requires_grad_()  # (S, in, L, C)
    bias = torch.stack([torch.stack([b for _, b in row]) for row in inits])  # (S, L, C)
    if not cfg.bias:  # a probe without bias: z = x·W
        bias.zero_()
    bias.requires_grad_(cfg.bias)
    optimizer = make_optimizer([weight, bias] if cfg.bias else [weight], cfg)
    fit_rows = torch.from_numpy(np.stack([f for f, _ in splits]))  # (S, N_fit)
    val_rows = torch.from_numpy(np.stack([v for _, v in splits]))  # (S, N_val)
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[cfg.matmul_dtype]
    # matmul-dtype blocks; scales stored row-major (N, L) so that a row gather is contiguous
    pool = ShiftedFeatures([x.to(dtype) for x in pool.blocks], pool.shifts, [a.T.contiguous() for a in pool.scales])
    val_x, val_a = _gather(pool, val_rows)
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    best_w, best_b = weight.detach().clone(), bias.detach().clone()
    best_loss = torch.full((S, L), math.inf)
    best_epoch, stale = torch.zeros(S, L, dtype=torch.long), torch.zeros(S, L, dtype=torch.long)
    budget = cfg.epoch_budget(fit_rows.shape[1])
    epochs = torch.full((S, L), budget, dtype=torch.long)
    active = torch.ones(S, L, dtype=torch.bool)
    for epoch in range(1, budget + 1):
        order = torch.stack([fit_rows[i, torch.randperm(fit_rows.shape[1], generator=g)] for i, g in enumerate(gens)])
        for start in range(0, order.shape[1], cfg.batch_size):
            rows = order[:, start : start + cfg.batch_size]  # (S, B)
            x, a = _gather(pool, rows)
            losses = _probe_losses(_batched_logits(x, a, pool, weight, bias), y[rows], known[rows], weights, task)
            optimizer.zero_grad(set_to_none=True)
            (losses * active).sum().backward()  # probes are independent: Σ_p loss_p gives each its own gradient
            optimizer.step()
            if not active.all():  # stopped probes stay at their best state
                with torch.no_grad():
                    weight.copy_(torch.where(active[:, None, :, None], weight, best_w))
                    bias.copy_(torch.where(active[..., None], bias, best_b))
        with torch.no_grad():
            val_loss = _probe_losses(_batched_logits(val_x, val_a, pool, weight, bias), y[val_rows], known[val_rows], weights, task)
        improved = active & (val_loss < best_loss - cfg.min_delta)  # the rule of `probe_config.early_stop`
        best_loss = torch.where(improved, val_loss, best_loss)
        best_epoch = torch.where(improved, epoch, best_epoch)
        best_w = torch.where(improved[:, None, :, None], weight.detach(), best_w)
        best_b = torch.where(improved[..., None], bias.detach(), best_b)
        stale = torch.where(improved, 0, stale + 1)
        stopping = active & (stale >= cfg.patience)
        epochs = torch.where(stopping, epoch, epochs)
        active &= ~stopping
        bar.update(budget - epoch + 1 if not active.any() else 1)  # all stopped early: the block is done
        if not active.any():
            break
    return ProbeFit(best_w.permute(2, 0, 1, 3).contiguous(), best_b.transpose(0, 1).contiguous(),
                    best_epoch.T.numpy(), epochs.T.numpy(), best_loss.T.numpy(), [v for _, v in splits],
                    (~active).T.numpy())


def _train_sequential(pool, y, known, weights, splits, seeds, task, n_classes, cfg, bar) -> ProbeFit:
    """The same probes one at a time (`probe_loop.train_one_probe`) on explicitly shifted inputs."""
    L, S = pool.n_lambdas, len(seeds)
    W, b = torch.zeros(L, S, pool.dim, n_classes), torch.zeros(L, S, n_classes)
    best_epoch, epochs, best_loss = np.zeros((L, S), int), np.zeros((L, S), int), np.zeros((L, S))
    converged = np.zeros((L, S), bool)
    for l in range(L):
        x_all = pool.materialize(l)  # (N_pool, in), explicitly shifted and renormalised
        for i, seed in enumerate(seeds):
            fit, val = (torch.from_numpy(r) for r in splits[i])
            one = train_one_probe(lambda rows, _: x_all[rows], y, known, weights[i], fit, val, seed, l, pool.dim,
                                  n_classes, task, cfg)
            W[l, i], b[l, i] = one.weight, one.bias
            best_epoch[l, i], epochs[l, i], best_loss[l, i], converged[l, i] = (one.best_epoch, one.epochs,
                                                                                one.best_val_loss, one.converged)
            bar.update()
    return ProbeFit(W, b, best_epoch, epochs, best_loss, [v for _, v in splits], converged)


def predict_proba(feats: ShiftedFeatures, fit: ProbeFit, task: Task) -> Tensor:
    """Probabilities (L, S, N, C) of every probe on explicitly shifted inputs."""
    out = []
    with torch.no_grad():
        for l in range(feats.n_lambdas):
            z = torch.einsum("ni,sic->snc", feats.materialize(l), fit.weight[l]) + fit.bias[l][:, None]  # (S, N, C)
            out.append(torch.sigmoid(z) if task == "multilabel" else torch.softmax(z, dim=-1))
    return torch.stack(out)
