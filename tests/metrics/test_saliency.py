"""Saliency metrics against hand-computed toy cases and sklearn's ROC AUC."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from medalign.metrics.saliency import auc, binarize, cc, kld, nss, sim

S = np.array([[0.0, 1.0], [2.0, 3.0]])  # mean 1.5, population std sqrt(1.25)
H = np.array([[0.0, 0.0], [1.0, 3.0]])  # mass on the bottom row


def test_nss_by_hand():
    z = (S - 1.5) / math.sqrt(1.25)
    expected = (z[1, 0] * 1 + z[1, 1] * 3) / 4
    assert nss(S, H) == pytest.approx(expected)
    # binary fixation map: the mean z at fixations
    fix = np.array([[0.0, 1.0], [0.0, 1.0]])
    assert nss(S, fix) == pytest.approx((z[0, 1] + z[1, 1]) / 2)


def test_cc_by_hand_and_constant_map():
    s, h = S.ravel(), H.ravel()
    expected = ((s - s.mean()) * (h - h.mean())).sum() / math.sqrt(((s - s.mean()) ** 2).sum() * ((h - h.mean()) ** 2).sum())
    assert cc(S, H) == pytest.approx(expected)
    assert cc(np.ones((2, 2)), H) == 0.0 and nss(np.ones((2, 2)), H) == 0.0


def test_kld_and_sim_by_hand():
    p = np.array([0, 0, 0.25, 0.75])
    q = np.array([0, 1, 2, 3]) / 6
    eps = 1e-7
    assert kld(S, H) == pytest.approx(float(np.sum(p * np.log(eps + p / (q + eps)))))
    assert sim(S, H) == pytest.approx(float(np.minimum(p, q).sum()))
    assert sim(H, H) == pytest.approx(1.0) and kld(H, H) == pytest.approx(0.0, abs=1e-6)
    # an all-zero saliency map is the uniform distribution
    assert sim(np.zeros((2, 2)), H) == pytest.approx(0.25 + 0.25)


def test_auc_matches_sklearn_with_ties():
    rng = np.random.default_rng(0)
    s = rng.integers(0, 4, size=(3, 6, 5)).astype(float)  # many ties
    f = rng.random((3, 6, 5)) < 0.3
    got = auc(s, f)
    assert got.shape == (3,)
    for b in range(3):
        assert float(got[b]) == pytest.approx(roc_auc_score(f[b].ravel(), s[b].ravel()), abs=1e-6)
    assert auc(S, np.array([[0, 0], [0, 1]])) == pytest.approx(1.0)
    assert auc(-S, np.array([[0, 0], [0, 1]])) == pytest.approx(0.0)


def test_batches_give_one_value_per_map():
    s = torch.rand(4, 8, 8)
    h = torch.rand(4, 8, 8)
    for metric in (nss, cc, kld, sim):
        batch = metric(s, h)
        assert batch.shape == (4,)
        assert [float(v) for v in batch] == pytest.approx([metric(s[i], h[i]) for i in range(4)], rel=1e-5)


def test_binarize_keeps_the_top_share():
    h = torch.arange(100.0).reshape(10, 10)
    assert int(binarize(h, 0.9).sum()) == 10


@pytest.mark.parametrize("call, message", [
    (lambda: nss(np.ones((2, 2)), np.ones((3, 3))), "must both be"),
    (lambda: nss(S, np.zeros((2, 2))), "all zeros"),
    (lambda: kld(-S, H), "negative"),
    (lambda: auc(S, np.full((2, 2), 0.5)), "binary"),
    (lambda: auc(S, np.ones((2, 2))), "unfixated"),
])
def test_bad_input_is_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()
