"""The batched early-fusion probe trainer: class weights, batched ≡ sequential, early stopping."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from medalign.studies.gap.batched_probe import (
    ProbeConfig,
    ShiftedFeatures,
    class_weights,
    init_probe,
    split_rows,
    train_probes,
)
from medalign.studies.gap.sweep import lambda_features
from medalign.metrics.geometry import gap_vector


pytestmark = pytest.mark.usefixtures("one_thread")


def _pairs(n: int, d: int = 16, c: int = 3, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    y = (torch.rand(n, c, generator=g) < 0.3).float()
    protos = torch.randn(c, d, generator=torch.Generator().manual_seed(99))
    v = F.normalize(y @ protos + torch.randn(n, d, generator=g) + 2, dim=1)
    t = F.normalize(y @ protos + torch.randn(n, d, generator=g) - 2, dim=1)
    return v, t, y


def test_class_weights_match_a_hand_computation():
    y = torch.tensor([[1, 0, 1], [1, 0, float("nan")], [0, 1, 0], [1, 0, 0]])
    # multilabel: the positive weight n_neg / n_pos over known labels: (1/3, 3/1, 2/1) (the NaN is neither)
    torch.testing.assert_close(class_weights(y, "multilabel", 3), torch.tensor([1 / 3, 3.0, 2.0]))
    ids = torch.tensor([0, 0, 0, 1, 2, 2])  # counts (3, 1, 2), N = 6
    torch.testing.assert_close(class_weights(ids, "multiclass", 4), torch.tensor([6 / 12, 6 / 4, 6 / 8, 6 / 4]))
    # sklearn's "balanced" weights are the same formula
    from sklearn.utils.class_weight import compute_class_weight

    np.testing.assert_allclose(class_weights(ids, "multiclass", 3).numpy(),
                               compute_class_weight("balanced", classes=np.arange(3), y=ids.numpy()), rtol=1e-6)


def test_carved_validation_is_seeded_disjoint_and_ten_percent():
    fit, val = split_rows(200, 0, seed=42, fraction=0.1)
    assert len(val) == 20 and len(fit) == 180 and not set(fit) & set(val)
    np.testing.assert_array_equal(split_rows(200, 0, 42, 0.1)[1], val)
    assert not np.array_equal(split_rows(200, 0, 43, 0.1)[1], val)
    fit, val = split_rows(50, 10, seed=1, fraction=0.1)  # a given val split: all train rows fit
    np.testing.assert_array_equal(fit, np.arange(50))
    np.testing.assert_array_equal(val, 50 + np.arange(10))


def test_implicit_features_equal_concatenated_lambda_shift():
    v, t, _ = _pairs(40)
    delta = gap_vector(v, t)
    feats = lambda_features(v, t, delta, [0.0, 0.3, 1.0])
    from medalign.metrics.geometry import lambda_shift

    for l, lam in enumerate([0.0, 0.3, 1.0]):
        torch.testing.assert_close(feats.materialize(l), torch.cat(lambda_shift(v, t, lam, delta), dim=1))


@pytest.mark.parametrize("task", ["multilabel", "multiclass"])
@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_batched_and_sequential_give_the_same_probes(task, optimizer):
    v, t, y = _pairs(240)
    if task == "multiclass":
        y = y.argmax(1)
    else:
        y[::7, 1] = float("nan")  # unknown labels are ignored by both modes
    feats = lambda_features(v, t, gap_vector(v, t), [0.0, 0.5, 1.0])
    cfg = ProbeConfig(optimizer=optimizer, min_delta=0.0, lr=0.05, max_epochs=25, patience=3, batch_size=64)
    args = (feats, y, None, None, [42, 43], task, 3, cfg)
    batched, sequential = train_probes(*args), train_probes(*args, sequential=True)
    np.testing.assert_array_equal(batched.best_epoch, sequential.best_epoch)
    np.testing.assert_array_equal(batched.epochs, sequential.epochs)
    torch.testing.assert_close(batched.weight, sequential.weight, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(batched.bias, sequential.bias, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(batched.best_val_loss, sequential.best_val_loss, rtol=1e-5)


def test_early_stopping_restores_the_best_weights():
    # validation labels are the opposite of training labels: val loss is lowest after epoch 1,
    # then rises; with patience 10 the probe stops at epoch 11 and returns the epoch-1 weights.
    g = torch.Generator().manual_seed(0)
    x = F.normalize(torch.randn(200, 8, generator=g), dim=1)
    y = (x[:, :1] > 0).float()
    train, val = ShiftedFeatures.plain(x[:150]), ShiftedFeatures.plain(x[150:])
    cfg = ProbeConfig(optimizer="sgd", min_delta=0.0, lr=0.5, max_epochs=100, patience=10, batch_size=32)
    for sequential in (False, True):
        fit = train_probes(train, y[:150], val, 1 - y[150:], [42], "multilabel", 1, cfg, sequential=sequential)
        one = train_probes(train, y[:150], val, 1 - y[150:], [42], "multilabel", 1,
                           ProbeConfig(optimizer="sgd", min_delta=0.0, lr=0.5, max_epochs=1, batch_size=32), sequential=sequential)
        assert fit.best_epoch[0, 0] == 1 and fit.epochs[0, 0] == 11
        torch.testing.assert_close(fit.weight, one.weight, rtol=0, atol=0)
        w0, _ = init_probe(42, 0, 8, 1)
        assert not torch.equal(fit.weight[0, 0], w0)  # it did train for an epoch


def test_a_stopped_probe_keeps_its_state_while_others_train():
    # a high learning rate on few rows makes probes stop at different epochs (patience 2);
    # each probe of the batch must equal that probe trained alone.
    v, t, y = _pairs(80, d=32)
    feats = lambda_features(v, t, gap_vector(v, t), [0.0, 1.0])
    cfg = ProbeConfig(optimizer="sgd", min_delta=0.0, lr=2.0, max_epochs=30, patience=2, batch_size=16)
    both = train_probes(feats, y, None, None, [7, 8, 9], "multilabel", 3, cfg)
    assert both.epochs.min() < 30 and len(np.unique(both.epochs)) > 1  # stopped at different epochs
    alone = train_probes(feats, y, None, None, [9], "multilabel", 3, cfg, sequential=True)
    np.testing.assert_array_equal(both.epochs[:, 2:], alone.epochs)
    torch.testing.assert_close(both.weight[:, 2:], alone.weight, rtol=1e-4, atol=1e-5)
