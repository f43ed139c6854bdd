"""Classification metrics as pure functions: ROC AUC (per class and macro) and accuracy / F1.

The one macro-AUC rule of the project (linear probe, zero-shot, gap sweep): a class's AUC is
defined only when its known (non-NaN) truth has both outcomes, else NaN; the macro AUC is the
mean over the classes where it is defined (NaN when none is).

AUC is the Mann–Whitney U statistic over average ranks (Hanley & McNeil 1982, eq. 2): the
probability that a random positive scores above a random negative, ties counting one half.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from scipy.stats import rankdata

__all__ = ["binary_auc", "per_class_auc", "macro_average", "macro_auc", "one_vs_rest", "classification_metrics"]


def binary_auc(truth: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC of `score` (N,) for 1 / 0 `truth` (N,); NaN when only one outcome is present.

    Raises:
        ValueError: shapes differ, are not 1-D, or truth has values other than 0 / 1.
    """
    truth, score = np.asarray(truth, dtype=np.float64), np.asarray(score, dtype=np.float64)
    if truth.ndim != 1 or truth.shape != score.shape:
        raise ValueError(f"binary AUC needs (N,) truth and (N,) scores, got {truth.shape} and {score.shape}")
    if not np.isin(truth, (0.0, 1.0)).all():
        raise ValueError(f"binary AUC truth must be 0 / 1, got values {sorted(set(truth.tolist()) - {0.0, 1.0})[:5]}")
    n_pos = int(truth.sum())
    n_neg = len(truth) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(score)  # average ranks: ties count one half
    return float((ranks[truth == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def one_vs_rest(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Class ids (N,) → (N, C) 1 / 0 indicators."""
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"class ids must be (N,), got shape {labels.shape}")
    if len(labels) and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"class ids must lie in [0, {n_classes}), got [{labels.min()}, {labels.max()}]")
    return (labels[:, None] == np.arange(n_classes)[None, :]).astype(np.float64)


def per_class_auc(truth: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """ROC AUC per class (C,), NaN where a class's known truth has one outcome only.

    Args:
        truth: (N, C) 1 / 0 / NaN (NaN: unknown, left out of that class), or (N,) class ids
            (scored one-vs-rest).
        scores: (N, C) probabilities, logits or similarities (higher = more likely).
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2:
        raise ValueError(f"scores must be (N, C), got shape {scores.shape}")
    truth = np.asarray(truth)
    if truth.ndim == 1:
        truth = one_vs_rest(truth, scores.shape[1])
    truth = truth.astype(np.float64)
    if truth.shape != scores.shape:
        raise ValueError(f"truth {truth.shape} and scores {scores.shape} differ")
    out = np.full(scores.shape[1], np.nan)
    for c in range(scores.shape[1]):
        known = ~np.isnan(truth[:, c])
        out[c] = binary_auc(truth[known, c], scores[known, c])
    return out


def macro_average(per_class: Sequence[float] | np.ndarray) -> float:
    """Mean over the defined (non-NaN) per-class values; NaN when none is defined."""
    values = np.asarray(per_class, dtype=np.float64)
    defined = values[~np.isnan(values)]
    return float(defined.mean()) if len(defined) else float("nan")


def macro_auc(truth: np.ndarray, scores: np.ndarray) -> float:
    """`macro_average` of `per_class_auc`: the macro ROC AUC over classes with both outcomes."""
    return macro_average(per_class_auc(truth, scores))


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, classes: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class F1 and the confusion matrix (rows = truth) of class ids (N,).

    F1 of a class that is neither predicted nor present is 0 (scikit-learn's ``zero_division=0``).
    """
    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    if y_true.ndim != 1 or y_true.shape != y_pred.shape:
        raise ValueError(f"need (N,) true and (N,) predicted class ids, got {y_true.shape} and {y_pred.shape}")
    k = len(classes)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (y_true, y_pred), 1)  # (K, K), rows = truth
    hits = np.diag(confusion).astype(np.float64)
    denominator = confusion.sum(0) + confusion.sum(1)  # predicted + true = 2TP + FP + FN
    per_class = np.divide(2 * hits, denominator, out=np.zeros(k), where=denominator > 0)
    return {
        "accuracy": float(hits.sum() / len(y_true)) if len(y_true) else float("nan"),
        "macro_f1": float(per_class.mean()),
        "per_class_f1": {c: float(f) for c, f in zip(classes, per_class)},
        "confusion_matrix": confusion.tolist(),
        "n": int(len(y_true)),
    }
