"""`medalign.metrics.classification` against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, roc_auc_score

from medalign.metrics.classification import (
    binary_auc,
    classification_metrics,
    macro_auc,
    macro_average,
    one_vs_rest,
    per_class_auc,
)


@pytest.mark.parametrize("seed", range(5))
def test_binary_auc_equals_sklearn_with_ties(seed):
    rng = np.random.default_rng(seed)
    truth = (rng.random(200) < 0.3).astype(int)
    score = np.round(rng.normal(size=200) + truth, 1)  # rounded: many ties
    assert binary_auc(truth, score) == pytest.approx(roc_auc_score(truth, score), abs=1e-12)


def test_hand_computed_auc_and_undefined_cases():
    # positives 0.8, 0.4; negatives 0.4, 0.1: pairs (0.8>0.4, 0.8>0.1, 0.4=0.4 → ½, 0.4>0.1) → 3.5 / 4
    assert binary_auc(np.array([1, 1, 0, 0]), np.array([0.8, 0.4, 0.4, 0.1])) == 0.875
    assert np.isnan(binary_auc(np.ones(4), np.arange(4.0)))
    assert np.isnan(binary_auc(np.zeros(0), np.zeros(0)))


def test_multilabel_per_class_and_macro_equal_sklearn_leaving_unknowns_out():
    rng = np.random.default_rng(0)
    truth = (rng.random((300, 4)) < 0.4).astype(float)
    truth[rng.random((300, 4)) < 0.2] = np.nan
    truth[:, 3] = np.where(np.isnan(truth[:, 3]), np.nan, 1.0)  # class 3: one outcome only → NaN
    scores = rng.normal(size=(300, 4)) + np.nan_to_num(truth)
    expected = [roc_auc_score(truth[~np.isnan(truth[:, c]), c], scores[~np.isnan(truth[:, c]), c]) for c in range(3)]
    got = per_class_auc(truth, scores)
    np.testing.assert_allclose(got[:3], expected, atol=1e-12)
    assert np.isnan(got[3])
    assert macro_auc(truth, scores) == pytest.approx(np.mean(expected), abs=1e-12)


def test_multiclass_ids_are_scored_one_vs_rest_like_sklearns_ovr_macro():
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 4, 250)
    logits = rng.normal(size=(250, 4)) + np.eye(4)[ids]
    proba = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert macro_auc(ids, proba) == pytest.approx(roc_auc_score(ids, proba, multi_class="ovr", average="macro"), abs=1e-12)
    np.testing.assert_array_equal(one_vs_rest(np.array([2, 0]), 3), [[0, 0, 1], [1, 0, 0]])


def test_macro_average_over_defined_values():
    assert macro_average([0.5, np.nan, 1.0]) == 0.75
    assert np.isnan(macro_average([np.nan, np.nan]))


def test_shapes_and_values_are_checked():
    with pytest.raises(ValueError, match=r"\(N,\) truth and \(N,\) scores"):
        binary_auc(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="0 / 1"):
        binary_auc(np.array([0, 2]), np.zeros(2))
    with pytest.raises(ValueError, match="differ"):
        per_class_auc(np.zeros((5, 2)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match=r"class ids must lie in \[0, 3\)"):
        per_class_auc(np.array([0, 3]), np.zeros((2, 3)))


def test_accuracy_f1_and_confusion_equal_sklearn():
    rng = np.random.default_rng(2)
    y_true, y_pred = rng.integers(0, 4, 120), rng.integers(0, 3, 120)  # class 3 never predicted
    got = classification_metrics(y_true, y_pred, ["a", "b", "c", "d"])
    f1 = f1_score(y_true, y_pred, labels=range(4), average=None, zero_division=0)
    assert got["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    np.testing.assert_allclose(list(got["per_class_f1"].values()), f1)
    assert got["macro_f1"] == pytest.approx(f1.mean())
    assert got["confusion_matrix"] == confusion_matrix(y_true, y_pred, labels=range(4)).tolist()
    assert got["n"] == 120
