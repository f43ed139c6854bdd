"""The plain reference probe (nn.Linear + DataLoader + sklearn) against the batched trainer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from medalign.evaluation.gap.batched_probe import ProbeConfig, _probe_losses, class_weights
from medalign.evaluation.gap.sweep import probe_auc, run_gap_sweep
from medalign.evaluation.gap.reference_probe import _auc, _loss, reference_sweep


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
def test_reference_loss_and_auc_equal_the_batched_trainers(task):
    g = torch.Generator().manual_seed(0)
    z = torch.randn(50, 3, generator=g)
    if task == "multilabel":
        y = (torch.rand(50, 3, generator=g) < 0.3).float()
        y[::6, 2] = float("nan")  # unknown labels: both ignore them
        known, target = ~torch.isnan(y), torch.nan_to_num(y)
    else:
        y = torch.randint(0, 3, (50,), generator=g)
        known, target = torch.ones(50, dtype=torch.bool), y
    w = class_weights(y, task, 3)
    batched = _probe_losses(z[None, :, None], target[None], known[None], w[None], task)  # one seed, one λ
    torch.testing.assert_close(_loss(z, y, w, task), batched[0, 0])
    proba = torch.sigmoid(z) if task == "multilabel" else torch.softmax(z, dim=1)
    assert _auc(y.numpy(), proba.numpy(), task) == pytest.approx(probe_auc(y.numpy(), proba.numpy(), task)[0])
