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

``sequential=True`` trains the same P probes one at a time with plain ``nn.Linear`` on explicitly
shifted inputs and torch's built-in losses — the reference the batched mode must match. Both modes
share the per-seed validation split, data order (one permutation per seed and epoch, shared by the
seed's L probes) and initialisation, so they agree up to float rounding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

Task = Literal["multilabel", "multiclass"]


@dataclass
class ProbeConfig:
    """How each probe is trained (defaults: the cone-effect paper §2.2.4).

    Attributes:
        optimizer: ``sgd`` (the paper) or ``adamw`` (the authors' released code).
        lr: learning rate.
        momentum: SGD momentum.
        weight_decay: L2 (SGD) or decoupled (AdamW) weight decay.
        max_epochs: epochs at most.
        patience: epochs without a lower validation loss before a probe stops.
        batch_size: training rows per step and seed.
        val_fraction: share of train carved out (per seed) when there is no validation split.
        matmul_dtype: ``float32`` or ``bfloat16`` for the batched mode's matmuls (fp32 master
            weights and accumulation; ~5× faster on CPUs with AVX-512 BF16 / AMX, AUCs then
            differ from the sequential fp32 reference by ~1e-3 instead of ~1e-5).
        lambda_lr: learning rate of the learnable λ's logit θ (`learnable_lambda`; None → `lr`). The
            probe's SGD lr 3e-4 barely moves a scalar (λ moved < 0.002 in 100 epochs on a problem whose
            best λ is 0.8; 0.1 reached ≈ 0.8). AdamW steps ≈ lr whatever the gradient: use ≤ 1e-2 there.
    """

    optimizer: Literal["sgd", "adamw"] = "sgd"
    lr: float = 3e-4
    momentum: float = 0.9
    weight_decay: float = 0.0
    max_epochs: int = 100
    patience: int = 10
    batch_size: int = 512
    val_fraction: float = 0.1
    matmul_dtype: Literal["float32", "bfloat16"] = "float32"
    lambda_lr: float | None = 0.1


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
        val_rows: per seed, the validation rows (positions in train, or in val when given).
    """

    weight: Tensor
    bias: Tensor
    best_epoch: np.ndarray
    epochs: np.ndarray
    best_val_loss: np.ndarray
    val_rows: list[np.ndarray]


def class_weights(y: Tensor, task: Task, n_classes: int) -> Tensor:
    """Class weights N / (C · count_c) (scikit-learn's "balanced"); count_c ≥ 1 is enforced.

    Args:
        y: (N, C) 1 / 0 / NaN for ``multilabel`` (count_c = positives), (N,) class ids otherwise.
        n_classes: C.

    Returns:
        (C,) float32.
    """
    if task == "multilabel":
        counts = (torch.nan_to_num(y.float()) == 1).sum(0).float()
    else:
        counts = torch.bincount(y.long(), minlength=n_classes).float()
    return (len(y) / (n_classes * counts.clamp(min=1))).float()


def split_rows(n_train: int, n_val: int, seed: int, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """(fit rows, validation rows) as positions in the pool train ⧺ val.

    With a validation split (n_val > 0) every seed fits on all train rows; otherwise a seeded
    `fraction` of train (at least one row) is held out.
    """
    if n_val > 0:
        return np.arange(n_train), n_train + np.arange(n_val)
    if not 0 < fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1) to carve validation rows from train, got {fraction}")
    perm = np.random.default_rng(seed).permutation(n_train)
    k = min(n_train - 1, max(1, round(fraction * n_train)))
    return np.sort(perm[k:]), np.sort(perm[:k])


def init_probe(seed: int, lam_index: int, in_dim: int, out_dim: int) -> tuple[Tensor, Tensor]:
    """``nn.Linear``'s uniform(±1/√in) initialisation from a generator seeded by (seed, λ index)."""
    g = torch.Generator().manual_seed(seed * 10_007 + lam_index)
    bound = 1 / math.sqrt(in_dim)
    weight = (torch.rand(in_dim, out_dim, generator=g) * 2 - 1) * bound  # (in, out)
    bias = (torch.rand(out_dim, generator=g) * 2 - 1) * bound  # (out,)
    return weight, bias


def targets_and_mask(y: Tensor, task: Task) -> tuple[Tensor, Tensor]:
    """(targets, known mask): NaN-free (N, C) floats and their mask, or (N,) ids and all-true."""
    if task == "multilabel":
        return torch.nan_to_num(y.float()), ~torch.isnan(y.float())
    return y.long(), torch.ones(len(y), dtype=torch.bool)


def make_optimizer(params: list[Tensor] | list[dict], cfg: ProbeConfig) -> torch.optim.Optimizer:
    """SGD (momentum) or AdamW over tensors or param-group dicts, with the config's lr / weight decay."""
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise ValueError(f"probe optimizer must be 'sgd' or 'adamw', got {cfg.optimizer!r}")


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
) -> ProbeFit:
    """Train one early-fusion linear probe per (λ, seed) with early stopping on validation loss.

    Args:
        train: training inputs (N, in) for each of L values of λ.
        y_train: (N, C) 1 / 0 / NaN (``multilabel``, NaN entries are ignored) or (N,) ids.
        val: validation inputs with the same shifts, or None to carve ``val_fraction`` of train per seed.
        y_val: validation targets (when `val` is given).
        seeds: one probe per seed and λ; a seed fixes its validation split, data order and init.
        task: ``multilabel`` (class-weighted BCE) or ``multiclass`` (class-weighted cross-entropy).
        n_classes: C, the probe's outputs.
        config: optimisation settings.
        sequential: train the probes one at a time (the reference implementation).
    """
    cfg = config or ProbeConfig()
    pool, y_pool = (train, y_train) if val is None else (train.concat(val), torch.cat([y_train, y_val]))
    n_val = 0 if val is None else val.n
    splits = [split_rows(train.n, n_val, s, cfg.val_fraction) for s in seeds]
    weights = torch.stack([class_weights(y_pool[fit], task, n_classes) for fit, _ in splits])  # (S, C), from fit rows
    y_pool, known = targets_and_mask(y_pool, task)
    run = _train_sequential if sequential else _train_batched
    return run(pool, y_pool, known, weights, splits, seeds, task, n_classes, cfg)


def _probe_losses(z: Tensor, y: Tensor, known: Tensor, weights: Tensor, task: Task) -> Tensor:
    """Per-probe class-weighted loss, (S, L), from logits z (S, B, L, C) of each seed's rows.

    Args:
        y: (S, B, C) float targets (multilabel) or (S, B) ids. known: (S, B, C) mask (multilabel).
        weights: (S, C) class weights per seed.
    """
    if task == "multilabel":
        bce = F.binary_cross_entropy_with_logits(z, y[:, :, None].expand_as(z), reduction="none")  # (S, B, L, C)
        mask = known[:, :, None].float() * weights[:, None, None, :]  # (S, B, 1, C)
        return (bce * mask).sum((1, 3)) / known.sum((1, 2)).clamp(min=1)[:, None]
    nll = -F.log_softmax(z, dim=-1).gather(-1, y[:, :, None, None].expand(*z.shape[:3], 1)).squeeze(-1)  # (S, B, L)
    w = weights.gather(1, y)  # (S, B)
    return (nll * w[:, :, None]).sum(1) / w.sum(1)[:, None]


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


def _train_batched(pool, y, known, weights, splits, seeds, task, n_classes, cfg) -> ProbeFit:
    S, L, dim = len(seeds), pool.n_lambdas, pool.dim
    inits = [[init_probe(s, l, dim, n_classes) for l in range(L)] for s in seeds]
    weight = torch.stack([torch.stack([w for w, _ in row], dim=1) for row in inits]).requires_grad_()  # (S, in, L, C)
    bias = torch.stack([torch.stack([b for _, b in row]) for row in inits]).requires_grad_()  # (S, L, C)
    optimizer = make_optimizer([weight, bias], cfg)
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
    epochs = torch.full((S, L), cfg.max_epochs, dtype=torch.long)
    active = torch.ones(S, L, dtype=torch.bool)
    for epoch in range(1, cfg.max_epochs + 1):
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
        improved = active & (val_loss < best_loss)
        best_loss = torch.where(improved, val_loss, best_loss)
        best_epoch = torch.where(improved, epoch, best_epoch)
        best_w = torch.where(improved[:, None, :, None], weight.detach(), best_w)
        best_b = torch.where(improved[..., None], bias.detach(), best_b)
        stale = torch.where(improved, 0, stale + 1)
        stopping = active & (stale >= cfg.patience)
        epochs = torch.where(stopping, epoch, epochs)
        active &= ~stopping
        if not active.any():
            break
    return ProbeFit(best_w.permute(2, 0, 1, 3).contiguous(), best_b.transpose(0, 1).contiguous(),
                    best_epoch.T.numpy(), epochs.T.numpy(), best_loss.T.numpy(), [v for _, v in splits])


def probe_loss(z: Tensor, y: Tensor, known: Tensor, weight: Tensor, task: Task) -> Tensor:
    """The same weighted losses from torch's built-ins (one probe, z (B, C))."""
    if task == "multiclass":
        return F.cross_entropy(z, y, weight=weight)
    bce = F.binary_cross_entropy_with_logits(z, y, weight=weight, reduction="none")
    return (bce * known).sum() / known.sum().clamp(min=1)


def _train_sequential(pool, y, known, weights, splits, seeds, task, n_classes, cfg) -> ProbeFit:
    L, S = pool.n_lambdas, len(seeds)
    W, b = torch.zeros(L, S, pool.dim, n_classes), torch.zeros(L, S, n_classes)
    best_epoch, epochs, best_loss = np.zeros((L, S), int), np.zeros((L, S), int), np.zeros((L, S))
    for l in range(L):
        x_all = pool.materialize(l)  # (N_pool, in), explicitly shifted and renormalised
        for i, seed in enumerate(seeds):
            fit, val = (torch.from_numpy(r) for r in splits[i])
            probe = torch.nn.Linear(pool.dim, n_classes)
            w0, b0 = init_probe(seed, l, pool.dim, n_classes)
            with torch.no_grad():
                probe.weight.copy_(w0.T)
                probe.bias.copy_(b0)
            optimizer = make_optimizer(list(probe.parameters()), cfg)
            gen = torch.Generator().manual_seed(seed)
            best, stale, best_state = math.inf, 0, None
            for epoch in range(1, cfg.max_epochs + 1):
                order = fit[torch.randperm(len(fit), generator=gen)]
                for start in range(0, len(order), cfg.batch_size):
                    rows = order[start : start + cfg.batch_size]
                    loss = probe_loss(probe(x_all[rows]), y[rows], known[rows], weights[i], task)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                with torch.no_grad():
                    val_loss = probe_loss(probe(x_all[val]), y[val], known[val], weights[i], task).item()
                if val_loss < best:
                    best, stale, best_epoch[l, i] = val_loss, 0, epoch
                    best_state = (probe.weight.detach().T.clone(), probe.bias.detach().clone())
                else:
                    stale += 1
                epochs[l, i] = epoch
                if stale >= cfg.patience:
                    break
            W[l, i], b[l, i] = best_state
            best_loss[l, i] = best
    return ProbeFit(W, b, best_epoch, epochs, best_loss, [v for _, v in splits])


def predict_proba(feats: ShiftedFeatures, fit: ProbeFit, task: Task) -> Tensor:
    """Probabilities (L, S, N, C) of every probe on explicitly shifted inputs."""
    out = []
    with torch.no_grad():
        for l in range(feats.n_lambdas):
            z = torch.einsum("ni,sic->snc", feats.materialize(l), fit.weight[l]) + fit.bias[l][:, None]  # (S, N, C)
            out.append(torch.sigmoid(z) if task == "multilabel" else torch.softmax(z, dim=-1))
    return torch.stack(out)
