"""The plain reference probe (nn.Linear + DataLoader) against the batched trainer, and the one probe loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from medalign.studies.gap.batched_probe import ProbeConfig, _probe_losses, class_weights
from medalign.studies.gap.probe_config import probe_loss
from medalign.studies.gap.sweep import run_gap_sweep
from tests.oracles.gap_probe import _loss, reference_sweep


pytestmark = pytest.mark.usefixtures("one_thread")


def _noisy_pairs(n: int, seed: int, d: int = 16):
    """Two labels seen weakly by both modalities (AUC ≈ 0.8, not saturated), each modality in its own cone."""
    g = torch.Generator().manual_seed(seed)
    y = (torch.rand(n, 2, generator=g) < 0.4).float()
    protos = torch.randn(2, 2, d, generator=torch.Generator().manual_seed(5))
    v = F.normalize(y @ protos[0] + 6.0 * torch.randn(n, d, generator=g) + 1.0, dim=1)
    t = F.normalize(y @ protos[1] + 6.0 * torch.randn(n, d, generator=g) - 1.0, dim=1)
    return v, t, y


@pytest.mark.parametrize("task", ["multilabel", "multiclass"])
def test_reference_and_batched_probes_reach_the_same_auc(task):
    train, test = _noisy_pairs(600, seed=0), _noisy_pairs(600, seed=1)
    if task == "multiclass":  # 4 classes from the two bits
        train, test = [(v, t, (y[:, 0] + 2 * y[:, 1]).long()) for v, t, y in (train, test)]
    lambdas, seeds = [0.0, 0.5, 1.0], [42, 43, 44]
    cfg = ProbeConfig(optimizer="sgd", min_delta=0.0, lr=0.05, max_epochs=40, patience=5, batch_size=64)
    batched = run_gap_sweep(train, None, test, lambdas, seeds, task, config=cfg, references=False)
    reference, _ = reference_sweep(train, None, test, lambdas, seeds, task, 2 if task == "multilabel" else 4, cfg)
    assert batched.auc.min() > 0.65 and reference.min() > 0.65  # both learned something (chance = 0.5) …
    assert batched.auc.max() < 0.97  # … on a problem that is not saturated, so agreement is informative
    # Different inits (nn.Linear's vs `init_probe`) and minibatch orders (DataLoader vs per-seed
    # permutations) make each probe a different SGD run: here the per-seed AUCs of one λ spread by
    # 0.007–0.02 while the 3-seed means agree to ≤ 0.003, so 0.01 leaves room for platform rounding.
    # This catches gross errors (no learning, wrong probabilities / AUC, lost best state); subtle
    # ones (e.g. dropping the class weights moves the mean by ≤ 0.005 here) are caught by the
    # exact checks below and by the batched ≡ sequential tests in test_batched_probe.py.
    np.testing.assert_allclose(batched.auc_mean, reference.mean(1), atol=0.01)


@pytest.mark.parametrize("task", ["multilabel", "multiclass"])
def test_the_one_probe_loss_equals_torchs_builtins_for_one_probe_and_for_a_batch(task):
    """`probe_loss` (used by the batched, one-probe and reference trainers) against F.cross_entropy /
    masked F.binary_cross_entropy_with_logits, probe by probe."""
    g = torch.Generator().manual_seed(0)
    if task == "multilabel":
        y = (torch.rand(50, 3, generator=g) < 0.3).float()
        y[::6, 2] = float("nan")  # unknown labels are ignored
        known, target = ~torch.isnan(y), torch.nan_to_num(y)
    else:
        y = torch.randint(0, 3, (50,), generator=g)
        known, target = torch.ones(50, dtype=torch.bool), y
    w = class_weights(y, task, 3)

    def builtin(z):
        if task == "multiclass":
            return F.cross_entropy(z, y, weight=w)
        return F.binary_cross_entropy_with_logits(z, target, pos_weight=w, reduction="none")[known].mean()

    z = torch.randn(50, 3, generator=g)
    torch.testing.assert_close(probe_loss(z, target, known, w, task), builtin(z))
    torch.testing.assert_close(_loss(z, y, w, task), builtin(z))  # the reference's call: raw labels
    zs = torch.randn(2, 50, 4, 3, generator=g)  # (S seeds, B rows, L λs, C)
    batched = _probe_losses(zs, target[None].expand(2, *target.shape), known[None].expand(2, *known.shape),
                            w[None].expand(2, 3), task)
    assert batched.shape == (2, 4)
    for s in range(2):
        for lam in range(4):
            torch.testing.assert_close(batched[s, lam], builtin(zs[s, :, lam]))
