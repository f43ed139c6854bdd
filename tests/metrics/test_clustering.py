"""`medalign.metrics.clustering` against hand-computed cases and independent formulas (tests/reference.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medalign.metrics.clustering import clustering_scores
from tests.reference import calinski_harabasz_by_hand, nmi_by_hand, silhouette_by_hand


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _blobs(n_per_class: int, n_classes: int, d: int, spread: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(n_classes), n_per_class)
    centres = np.eye(d)[:n_classes]
    return _unit(centres[labels] + spread * rng.normal(size=(len(labels), d))), labels


def test_clustering_two_point_pairs_by_hand():
    # k-means splits {(0,0), (0,1)} from {(10,0), (10,1)}.
    # silhouette: a = 1 (own partner), b = (10 + √101) / 2 (the other pair), s = 1 − a/b for every point;
    # Calinski–Harabasz: centroids (0, .5), (10, .5) around (5, .5): B = 4·25 = 100, W = 4·0.25 = 1,
    # CH = (B / (k−1)) / (W / (n−k)) = 100 / 0.5 = 200.
    x = np.array([[0, 0], [0, 1], [10, 0], [10, 1]], dtype=np.float64)
    matched = clustering_scores(x, np.array([0, 0, 1, 1]))
    assert matched["nmi"] == pytest.approx(1.0)
    assert matched["silhouette"] == pytest.approx(1 - 2 / (10 + np.sqrt(101)))
    assert matched["calinski_harabasz"] == pytest.approx(200.0)
    crossed = clustering_scores(x, np.array([0, 1, 0, 1]))  # labels independent of the two pairs
    assert crossed["nmi"] == pytest.approx(0.0, abs=1e-12)
    assert crossed["silhouette"] == matched["silhouette"]  # intrinsic scores ignore the labels


def test_clustering_nmi_by_hand_with_more_classes_than_clusters():
    # clusters {0,1,2} and {3,4,5}; labels 0 0 1 | 1 2 2 (k = 2 given):
    # I = 2·(2/6)·log 2 + 2·(1/6)·log 1 = (2/3)·log 2; H(labels) = log 3, H(clusters) = log 2
    x = np.array([[0, 0], [0, 1], [1, 0], [10, 0], [10, 1], [11, 0]], dtype=np.float64)
    got = clustering_scores(x, np.array([0, 0, 1, 1, 2, 2]), k=2)
    assert got["nmi"] == pytest.approx((2 / 3) * np.log(2) / ((np.log(3) + np.log(2)) / 2))


@pytest.mark.parametrize(
    "n_per_class,n_classes,spread,shuffle,tolerance",
    [(60, 3, 0.05, False, 1e-9), (60, 4, 0.05, True, 1e-9), (1700, 3, 0.05, False, 5e-3)],
    ids=["exact", "shuffled-labels", "silhouette-subsampled"],  # above 5000 rows: a 5000-row sample
)
def test_clustering_scores_match_independent_formulas_on_separated_blobs(n_per_class, n_classes, spread, shuffle, tolerance):
    x, labels = _blobs(n_per_class, n_classes, 8, spread)
    scored = np.random.default_rng(1).permutation(labels) if shuffle else labels
    scores = clustering_scores(torch.tensor(x), scored, seed=3)
    # separated blobs: k-means recovers the generating classes, so the partition is `labels`
    assert scores["nmi"] == pytest.approx(nmi_by_hand(list(scored), list(labels)))
    assert (scores["nmi"] < 0.1) if shuffle else (scores["nmi"] == pytest.approx(1.0))
    assert scores["calinski_harabasz"] == pytest.approx(calinski_harabasz_by_hand(x, labels), rel=1e-6)
    assert scores["silhouette"] == pytest.approx(silhouette_by_hand(x, labels), abs=tolerance)


def test_clustering_nmi_near_one_on_separated_blobs_and_near_zero_on_random_labels():
    x, labels = _blobs(100, 3, 8, 0.05)
    assert clustering_scores(x, labels)["nmi"] > 0.99
    shuffled = np.random.default_rng(0).permutation(labels)
    assert clustering_scores(x, shuffled)["nmi"] < 0.05


@pytest.mark.parametrize(
    "labels,k,match",
    [
        (np.zeros(30), None, "at least 2 distinct labels, got 1"),
        (np.arange(29) % 2, None, r"labels must have shape \(N,\) = \(30,\)"),
        (np.arange(30) % 2, 31, r"k must be in \[2, N=30\], got 31"),
    ],
    ids=["one-class", "length-mismatch", "k-too-large"],
)
def test_clustering_invalid_input(labels, k, match):
    x, _ = _blobs(10, 3, 8, 0.1)
    with pytest.raises(ValueError, match=match):
        clustering_scores(x, labels, k=k)
