"""Cluster quality of an embedding set: k-means, then NMI / silhouette / Calinski–Harabasz.

Pure function over scikit-learn (docs/geometry.md, "The metrics"). The k-means partition is
compared with the given class labels (NMI) and scored intrinsically (silhouette,
Calinski–Harabasz).
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.metrics import (
    calinski_harabasz_score,
    normalized_mutual_info_score,
    silhouette_score,
)

SILHOUETTE_SAMPLE_SIZE = 5000  # silhouette is O(N²); larger sets are scored on a seeded sample

__all__ = ["clustering_scores"]


def clustering_scores(
    x: torch.Tensor | np.ndarray, labels: np.ndarray, k: int | None = None, seed: int = 0
) -> dict[str, float]:
    """k-means on the embeddings, scored against the labels and by cluster compactness.

    Args:
        x: Embeddings, (N, d). Tensors are moved to CPU.
        labels: Class label per row, (N,); any hashable values.
        k: Number of k-means clusters; defaults to the number of distinct labels.
        seed: Seeds k-means (n_init=10) and the silhouette subsample.

    Returns:
        ``nmi`` (k-means clusters vs ``labels``), ``silhouette`` (Euclidean silhouette of
        the k-means partition, on at most 5000 seeded rows) and
        ``calinski_harabasz`` (of the k-means partition).

    Raises:
        ValueError: If shapes disagree, there are fewer than 2 classes, or k-means finds
            fewer than 2 clusters.
    """
    features = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    labels = np.asarray(labels)
    if features.ndim != 2:
        raise ValueError(f"x must be 2-D (N, d), got shape {features.shape}")
    if labels.shape != (features.shape[0],):
        raise ValueError(
            f"labels must have shape (N,) = ({features.shape[0]},) to match x, got {labels.shape}"
        )
    n_classes = len(np.unique(labels))
    if n_classes < 2:
        raise ValueError(f"clustering needs at least 2 distinct labels, got {n_classes}")
    n_clusters = n_classes if k is None else k
    if not 2 <= n_clusters <= features.shape[0]:
        raise ValueError(f"k must be in [2, N={features.shape[0]}], got {n_clusters}")

    predicted = KMeans(n_clusters=n_clusters, n_init=10, random_state=seed).fit_predict(features)
    n_found = len(np.unique(predicted))
    if n_found < 2:
        raise ValueError(
            f"k-means found {n_found} distinct cluster(s) for k={n_clusters}; "
            "the embeddings may be collapsed onto too few distinct points"
        )
    sample_size = SILHOUETTE_SAMPLE_SIZE if features.shape[0] > SILHOUETTE_SAMPLE_SIZE else None
    return {
        "nmi": float(normalized_mutual_info_score(labels, predicted)),
        "silhouette": float(
            silhouette_score(features, predicted, sample_size=sample_size, random_state=seed)
        ),
        "calinski_harabasz": float(calinski_harabasz_score(features, predicted)),
    }
