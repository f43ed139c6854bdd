"""`probe.bias: false`: the bias stays 0 in both training modes, which still agree."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medalign.studies.gap.batched_probe import ProbeConfig, train_probes
from medalign.studies.gap.sweep import lambda_features
from medalign.metrics.geometry import gap_vector
from tests.studies.gap.test_batched_probe import _pairs

pytestmark = pytest.mark.usefixtures("one_thread")


def test_a_probe_without_bias_keeps_it_at_zero_in_both_modes():
    v, t, y = _pairs(240)
    feats = lambda_features(v, t, gap_vector(v, t), [0.0, 1.0])
    cfg = ProbeConfig(optimizer="adamw", min_delta=0.0, lr=0.05, max_epochs=15, patience=3, batch_size=64, bias=False)
    args = (feats, y, None, None, [42, 43], "multilabel", 3, cfg)
    batched, sequential = train_probes(*args), train_probes(*args, sequential=True)
    assert torch.count_nonzero(batched.bias) == 0 and torch.count_nonzero(sequential.bias) == 0
    np.testing.assert_array_equal(batched.epochs, sequential.epochs)
    torch.testing.assert_close(batched.weight, sequential.weight, rtol=1e-4, atol=1e-5)
    with_bias = train_probes(feats, y, None, None, [42, 43], "multilabel", 3, ProbeConfig(**{**cfg.__dict__, "bias": True}))
    assert torch.count_nonzero(with_bias.bias) > 0
