"""How a gap-sweep probe is trained: the protocol, its loss, and when it counts as converged.

Shared by the batched trainer (`batched_probe`), the one-probe loop (`probe_loop`, also the
learnable λ) and the tests' plain reference (`tests/oracles/gap_probe.py`).

Protocols (``ProbeConfig.protocol``; docs/gap_sweep.md):

* ``converge`` (the default): AdamW, lr 1e-2, batch 256, early stopping on validation loss
  (patience 20, min_delta 1e-4) with a budget of 2,000 epochs — trained until the stopping rule
  fires on any set size.
* ``paper``: the cone-effect paper's optimiser (Restrepo et al., 2026, §2.2.4): SGD, momentum 0.9,
  lr 3e-4, early stopping on validation loss. Its budget is a number of optimisation steps
  (``max_steps`` 10,000), so small sets get more epochs; on embeddings concentrated in a cone it
  often does not converge, and then says so.

Both use the loss the paper states: class-weighted BCE for multi-label data, (unweighted)
categorical cross-entropy for multi-class data (``class_weight: paper``); ``balanced`` /
``none`` weight every task / none.

Convergence rule: a probe has converged iff its early-stopping rule fired — ``patience`` epochs in a
row without the validation loss falling by more than ``min_delta`` below its best — before the
budget ran out. A probe still improving at its last epoch, or one that improved within the last
``patience`` epochs, is ``converged: false``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from typing import Any, Literal

# torch is imported inside the functions, so `medalign gap-sweep -h` stays torch-free (jsonargparse
# executes `if TYPE_CHECKING:` blocks of a config class's module, so no typing-only import either).
Tensor = Any  # annotations: torch.Tensor

log = logging.getLogger(__name__)

Task = Literal["multilabel", "multiclass"]
Protocol = Literal["converge", "paper", "custom"]
ClassWeight = Literal["paper", "balanced", "none"]


@dataclass
class ProbeConfig:
    """How each probe is trained (defaults: the ``converge`` protocol; `ProbeConfig.paper()`: the paper's).

    Attributes:
        protocol: a label for the settings (``converge``, ``paper`` or ``custom``); a ``paper``
            config whose optimiser differs from the paper's is warned about.
        optimizer: ``sgd`` (the paper) or ``adamw`` (the authors' released code; the default).
        lr: learning rate.
        momentum: SGD momentum.
        weight_decay: L2 (SGD) or decoupled (AdamW) weight decay.
        max_epochs: epoch budget (when ``max_steps`` is None).
        max_steps: budget in optimisation steps; the epoch budget is then ceil(max_steps / steps per
            epoch), so it scales with the set size. None → ``max_epochs``.
        patience: epochs without a validation loss below best − ``min_delta`` before a probe stops.
        min_delta: the smallest fall of the validation loss that counts as an improvement.
        batch_size: training rows per step and seed.
        val_fraction: share of train carved out (per seed) when there is no validation split.
        class_weight: ``paper`` (class-weighted BCE for multilabel, plain CE for multiclass, as §2.2.4
            states), ``balanced`` (weights N/(C·count_c) for both) or ``none``.
        matmul_dtype: ``float32`` or ``bfloat16`` for the batched mode's matmuls (fp32 master
            weights and accumulation; AUCs then differ from the fp32 reference by ~1e-3).
        lambda_lr: learning rate of the learnable λ's logit θ (`learnable_lambda`; None → `lr`).
            With SGD at lr 3e-4 a scalar barely moves; AdamW steps ≈ lr whatever the gradient.
        bias: learn the probe's bias (True, the paper's probe). False fixes it at 0, so a shift that
            is a translation of the inputs is no longer absorbed by it (docs/gap_sweep.md).
    """

    protocol: Protocol = "converge"
    optimizer: Literal["sgd", "adamw"] = "adamw"
    lr: float = 1e-2
    momentum: float = 0.9
    weight_decay: float = 0.0
    max_epochs: int = 2000
    max_steps: int | None = None
    patience: int = 20
    min_delta: float = 1e-4
    batch_size: int = 256
    val_fraction: float = 0.1
    class_weight: ClassWeight = "paper"
    matmul_dtype: Literal["float32", "bfloat16"] = "float32"
    lambda_lr: float | None = 1e-2
    bias: bool = True

    @classmethod
    def paper(cls, **overrides) -> "ProbeConfig":
        """The cone-effect paper's probe optimiser: SGD, momentum 0.9, lr 3e-4, a 10,000-step budget."""
        base = cls(protocol="paper", optimizer="sgd", lr=3e-4, momentum=0.9, max_steps=10_000, patience=10,
                   min_delta=0.0, batch_size=512, lambda_lr=0.1)
        return replace(base, **overrides)

    def epoch_budget(self, n_fit: int) -> int:
        """Epochs at most for `n_fit` training rows (``max_steps`` converted, or ``max_epochs``)."""
        if self.max_steps is None:
            return self.max_epochs
        return max(1, math.ceil(self.max_steps / math.ceil(n_fit / self.batch_size)))

    def check(self) -> None:
        """Warn when a config labelled ``paper`` does not use the paper's optimiser."""
        if self.protocol == "paper" and (self.optimizer, self.lr, self.momentum) != ("sgd", 3e-4, 0.9):
            log.warning("probe protocol 'paper' with optimizer=%s lr=%g momentum=%g: the paper's is sgd, 3e-4, 0.9; "
                        "set probe.protocol: custom to label it honestly", self.optimizer, self.lr, self.momentum)


def weighted(task: Task, class_weight: ClassWeight) -> bool:
    """Whether the loss is class-weighted: ``paper`` weights multilabel BCE only (§2.2.4)."""
    return class_weight == "balanced" or (class_weight == "paper" and task == "multilabel")


def class_weights(y: Tensor, task: Task, n_classes: int) -> Tensor:
    """Class weights of the loss, from the fit rows' labels.

    Multilabel (class-weighted BCE): the positive weight of each class, n_neg / n_pos over its known
    labels (torch's ``pos_weight``), so positives and negatives carry equal total weight. Multiclass
    (class-weighted CE): N / (C · count_c) (scikit-learn's "balanced"). Counts are clamped at ≥ 1.

    Args:
        y: (N, C) 1 / 0 / NaN for ``multilabel``, (N,) class ids otherwise.
        n_classes: C.

    Returns:
        (C,) float32.
    """
    import torch
    if task == "multilabel":
        y = y.float()
        positives = (y == 1).sum(0).float()
        negatives = (y == 0).sum(0).float()
        return (negatives / positives.clamp(min=1)).float()
    counts = torch.bincount(y.long(), minlength=n_classes).float()
    return (len(y) / (n_classes * counts.clamp(min=1))).float()


def loss_weights(y: Tensor, task: Task, n_classes: int, class_weight: ClassWeight) -> Tensor:
    """The (C,) weights the loss uses for fit labels `y`: `class_weights`, or ones when unweighted."""
    import torch
    return class_weights(y, task, n_classes) if weighted(task, class_weight) else torch.ones(n_classes)


def split_rows(n_train: int, n_val: int, seed: int, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """(fit rows, validation rows) as positions in the pool train ⧺ val.

    With a validation split (n_val > 0) every seed fits on all train rows; otherwise a seeded
    `fraction` of train (at least one row) is held out.
    """
    import numpy as np
    if n_val > 0:
        return np.arange(n_train), n_train + np.arange(n_val)
    if not 0 < fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1) to carve validation rows from train, got {fraction}")
    perm = np.random.default_rng(seed).permutation(n_train)
    k = min(n_train - 1, max(1, round(fraction * n_train)))
    return np.sort(perm[k:]), np.sort(perm[:k])


def init_probe(seed: int, lam_index: int, in_dim: int, out_dim: int) -> tuple[Tensor, Tensor]:
    """``nn.Linear``'s uniform(±1/√in) initialisation from a generator seeded by (seed, λ index)."""
    import torch
    g = torch.Generator().manual_seed(seed * 10_007 + lam_index)
    bound = 1 / math.sqrt(in_dim)
    weight = (torch.rand(in_dim, out_dim, generator=g) * 2 - 1) * bound  # (in, out)
    bias = (torch.rand(out_dim, generator=g) * 2 - 1) * bound  # (out,)
    return weight, bias


def targets_and_mask(y: Tensor, task: Task) -> tuple[Tensor, Tensor]:
    """(targets, known mask): NaN-free (N, C) floats and their mask, or (N,) ids and all-true."""
    import torch
    if task == "multilabel":
        return torch.nan_to_num(y.float()), ~torch.isnan(y.float())
    return y.long(), torch.ones(len(y), dtype=torch.bool)


def make_optimizer(params: list[Tensor] | list[dict], cfg: ProbeConfig) -> "torch.optim.Optimizer":
    """SGD (momentum) or AdamW over tensors or param-group dicts, with the config's lr / weight decay."""
    import torch
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise ValueError(f"probe optimizer must be 'sgd' or 'adamw', got {cfg.optimizer!r}")


def probe_loss(z: Tensor, y: Tensor, known: Tensor, weight: Tensor, task: Task) -> Tensor:
    """The probes' loss, one value per probe: the one definition every gap-study trainer uses.

    Multilabel: BCE with positive weights, averaged over the known labels of the batch.
    Multiclass: class-weighted cross-entropy, Σ_i w_{y_i} nll_i / Σ_i w_{y_i} (torch's weighted mean).
    Leading probe dimensions P (none for one probe; (S, L) for a batch of probes) broadcast.

    Args:
        z: (*P, B, C) logits.
        y: (*P, B, C) NaN-free float targets (multilabel) or (*P, B) class ids.
        known: (*P, B, C) mask of the known labels (multilabel; unused for multiclass).
        weight: (*P, C) positive weights (multilabel) or class weights (multiclass); ones: unweighted.

    Returns:
        (*P,) losses (a scalar for one probe).
    """
    import torch.nn.functional as F
    if task == "multiclass":
        ids = y.expand(z.shape[:-1])[..., None]  # (*P, B, 1)
        nll = -F.log_softmax(z, dim=-1).gather(-1, ids).squeeze(-1)  # (*P, B)
        w = weight[..., None, :].expand(z.shape).gather(-1, ids).squeeze(-1)  # (*P, B): weight of each row's class
        return (nll * w).sum(-1) / w.sum(-1)
    bce = F.binary_cross_entropy_with_logits(z, y.expand_as(z), pos_weight=weight[..., None, :], reduction="none")  # (*P, B, C)
    known = known.to(bce.dtype)
    return (bce * known).sum((-2, -1)) / known.sum((-2, -1)).clamp(min=1)


def early_stop(val_loss: float, best: float, stale: int, cfg: ProbeConfig) -> tuple[bool, int, bool]:
    """One epoch of the stopping rule: (improved, stale epochs, stop now).

    Improved: val_loss < best − ``min_delta``; stop once ``patience`` epochs in a row did not improve.
    """
    improved = val_loss < best - cfg.min_delta
    stale = 0 if improved else stale + 1
    return improved, stale, stale >= cfg.patience


def warn_unconverged(what: str, converged: np.ndarray, cfg: ProbeConfig) -> None:
    """Log one warning naming how many of `what`'s probes did not converge and what to change."""
    import numpy as np
    bad = int((~np.asarray(converged, bool)).sum())
    if bad:
        log.warning("%s: %d of %d probes did not converge (early stopping never fired within %s); their AUCs are "
                    "not results. Raise probe.max_steps / probe.max_epochs, or use the converging protocol "
                    "(probe.optimizer adamw, lr 1e-2; configs/gap_sweep.yaml).", what, bad, converged.size,
                    f"{cfg.max_steps} steps" if cfg.max_steps is not None else f"{cfg.max_epochs} epochs")
