"""Geometry of a paired embedding set beyond the pure metrics: label-aware clustering, joint PCA,
similarity groups. Used by the geometry callback, `medalign geometry` and the plots.

`geometry_metrics` adds label-aware clustering to `medalign.metrics.geometry.geometry_summary`.
Pure functions of tensors and arrays; usable from a notebook on any L2-normalised (N, d) embeddings.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
import torch.nn.functional as F

from medalign.data.labels import single_label_rows
from medalign.evaluation.results import format_table
from medalign.metrics.clustering import clustering_scores
from medalign.metrics.geometry import geometry_summary

log = logging.getLogger(__name__)

__all__ = ["BETTER", "geometry_metrics", "geometry_table", "joint_pca", "row_classes", "similarity_groups"]

# Which way each metric moves when its paper calls the space better: ↑ higher, ↓ lower. The two
# uniformities point opposite ways (eCLIP's cross-modal one is −log E[...], Wang & Isola's is log E[...]).
# modality_gap, r_* and intra_cosine_* have no better direction: a smaller gap or a wider cone is what
# gap-closing methods aim for, not by itself a better space (docs/methods.md), so they stay unmarked.
BETTER = {
    "alignment": "↑", "uniformity": "↑", "uniformity_image": "↓", "uniformity_text": "↓",
    "true_pair_cosine": "↑", "nmi": "↑", "silhouette": "↑", "calinski_harabasz": "↑",
}


def row_classes(labels: np.ndarray | torch.Tensor | None) -> np.ndarray | None:
    """Class id per row for single-label rows, −1 elsewhere.

    Args:
        labels: (N, K) labels, 1 / 0 / NaN (unknown); None or K = 0 means unlabelled.

    Returns:
        (N,) int64 array, or None when there are no label columns.
    """
    if labels is None:
        return None
    labels = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if labels.ndim != 2 or labels.shape[1] == 0:
        return None
    classes = np.nan_to_num(labels).argmax(axis=1).astype(np.int64)
    classes[~single_label_rows(labels)] = -1
    return classes


def geometry_metrics(
    v: torch.Tensor, t: torch.Tensor, labels: np.ndarray | torch.Tensor | None = None, seed: int = 0
) -> dict[str, float]:
    """`geometry_summary` plus k-means clustering of the image embeddings when labels exist.

    Clustering uses the single-label rows only, with k = the number of classes present among
    them; it is skipped (and logged) when fewer than 2 classes or too few rows remain.

    Args:
        v: Image embeddings, (N, d), L2-normalised.
        t: Text embeddings paired row-wise with ``v``, (N, d), L2-normalised.
        labels: (N, K) labels (1 / 0 / NaN), or None.
        seed: k-means seed.

    Returns:
        The `geometry_summary` keys, plus ``nmi``, ``silhouette``, ``calinski_harabasz`` and
        ``n_clustered`` when clustering ran.
    """
    metrics = geometry_summary(v, t)
    classes = row_classes(labels)
    if classes is None:
        return metrics
    mask = classes >= 0
    n_classes = len(np.unique(classes[mask]))
    if n_classes < 2 or mask.sum() <= n_classes:
        log.info("geometry: clustering skipped (%d single-label rows, %d classes)", mask.sum(), n_classes)
        return metrics
    try:
        scores = clustering_scores(v[torch.from_numpy(mask).to(v.device)], classes[mask], seed=seed)
    except ValueError as err:
        log.warning("geometry: clustering skipped: %s", err)
        return metrics
    return {**metrics, **scores, "n_clustered": float(mask.sum())}


def joint_pca(v: torch.Tensor, t: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Project both modalities on the top-2 principal axes of their union.

    Fitting on the union (not per modality) keeps the modality gap visible as a shift.

    Args:
        v: (N_v, d) image embeddings. t: (N_t, d) text embeddings.

    Returns:
        (N_v, 2) and (N_t, 2) float64 coordinates.
    """
    both = torch.cat([v, t]).double().cpu().numpy()  # (N_v + N_t, d)
    centred = both - both.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)  # rows of vt: principal axes
    coords = centred @ vt[:2].T  # (N_v + N_t, 2)
    return coords[: len(v)], coords[len(v) :]


def similarity_groups(v: torch.Tensor, t: torch.Tensor, classes: np.ndarray | None) -> dict[str, np.ndarray]:
    """Image–text cosine similarities cos(v_i, t_j), split by how i and j relate.

    Args:
        v: (N, d) image embeddings, t: (N, d) text embeddings, paired row-wise.
        classes: (N,) class per row (−1 = not single-label) or None.

    Returns:
        ``true pair`` (i = j); with classes, ``same label`` and ``different label`` over i ≠ j
        among single-label rows; without, ``other pairs`` (all i ≠ j).
    """
    sims = (F.normalize(v.double(), dim=1) @ F.normalize(t.double(), dim=1).T).cpu().numpy()  # (N, N)
    off_diagonal = ~np.eye(len(sims), dtype=bool)
    groups = {"true pair": np.diagonal(sims).copy()}
    if classes is None:
        groups["other pairs"] = sims[off_diagonal]
        return groups
    known = classes >= 0
    same = classes[:, None] == classes[None, :]  # (N, N)
    valid = off_diagonal & known[:, None] & known[None, :]
    groups["same label"] = sims[valid & same]
    groups["different label"] = sims[valid & ~same]
    return groups


def geometry_table(metrics: dict[str, float]) -> str:
    """`geometry_metrics` as a Markdown table whose metric names carry the better direction (``alignment ↑``).

    Metrics without a better direction (``modality_gap``, ``r_*``, counts such as ``n_pairs``) are listed
    unmarked; a note under the table says what the arrows mean.
    """
    body = [[f"{k} {BETTER[k]}" if k in BETTER else k, v] for k, v in metrics.items()]
    table = format_table(["metric (↑/↓: better)", "value"], body, numeric={1})
    return table + ("\n\n↑ higher is better, ↓ lower is better (the two uniformities point opposite ways); "
                    "unmarked: no better direction (a smaller gap or lower R is not by itself a better space)")
