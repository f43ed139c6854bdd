"""Geometry of a paired embedding set: the metric table and its pictures (docs/geometry.md).

`geometry_metrics` adds label-aware clustering to `medalign.metrics.geometry.geometry_summary`;
`plot_geometry` draws the eCLIP paper's Fig. 1/5 style pictures: a 2-D PCA of both modalities
fitted jointly, with lines joining true pairs, and cosine-similarity histograms of image–text
pairs grouped by label (true pair / same label / different label). Pure functions of tensors
and arrays; usable from a notebook on any L2-normalised (N, d) embeddings.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from medalign.metrics.clustering import clustering_scores
from medalign.evaluation.tasks.zero_shot import single_label_rows
from medalign.metrics.geometry import geometry_summary

log = logging.getLogger(__name__)

__all__ = [
    "geometry_metrics",
    "joint_pca",
    "markdown_table",
    "plot_geometry",
    "row_classes",
    "similarity_groups",
]


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


def markdown_table(metrics: dict[str, float], title: str = "metric") -> str:
    """The metrics as a two-column Markdown table."""
    lines = [f"| {title} | value |", "|---|---:|"]
    lines += [f"| {key} | {value:.4f} |" for key, value in metrics.items()]
    return "\n".join(lines)


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


def plot_geometry(
    v: torch.Tensor,
    t: torch.Tensor,
    labels: np.ndarray | torch.Tensor | None = None,
    class_names: list[str] | None = None,
    path: str | Path | None = None,
    title: str = "",
    max_points: int = 2000,
    max_lines: int = 100,
    seed: int = 0,
):
    """Draw the PCA picture and the similarity histograms; optionally save a PNG.

    Args:
        v: (N, d) image embeddings, t: (N, d) text embeddings, paired row-wise.
        labels: (N, K) labels (1 / 0 / NaN) to colour points and group similarities.
        class_names: names of the K label columns, for the legend.
        path: where to write the PNG (folders are created); None → not saved.
        title: figure title.
        max_points: rows drawn at most (a seeded sample); similarities are O(N²).
        max_lines: true-pair lines drawn at most.
        seed: sampling seed.

    Returns:
        The matplotlib Figure.
    """
    try:  # the object-oriented API: no pyplot state, no backend switch, safe in a notebook
        from matplotlib import colormaps
        from matplotlib.collections import LineCollection
        from matplotlib.figure import Figure
    except ImportError as err:  # pragma: no cover - matplotlib is a core dependency today
        raise ImportError("geometry pictures need matplotlib: pip install matplotlib") from err

    rng = np.random.default_rng(seed)
    rows = np.sort(rng.permutation(len(v))[:max_points])
    v, t = v[torch.from_numpy(rows).to(v.device)], t[torch.from_numpy(rows).to(t.device)]
    classes = row_classes(labels)
    classes = None if classes is None else classes[rows]
    pv, pt = joint_pca(v, t)

    fig = Figure(figsize=(12, 5))
    ax_pca, ax_hist = fig.subplots(1, 2)
    lines = rng.permutation(len(rows))[:max_lines]
    segments = np.stack([pv[lines], pt[lines]], axis=1)  # (L, 2, 2): image end, text end

    ax_pca.add_collection(LineCollection(segments, colors="0.6", linewidths=0.5, alpha=0.5, zorder=1))
    if classes is None:
        ax_pca.scatter(*pv.T, s=8, marker="o", c="tab:blue", label="image", zorder=2)
        ax_pca.scatter(*pt.T, s=8, marker="^", c="tab:orange", label="text", zorder=2)
    else:
        cmap = colormaps["tab10"]
        for c in np.unique(classes):
            name = "multi/none" if c < 0 else (class_names[c] if class_names else f"class {c}")
            colour = "0.7" if c < 0 else cmap(int(c) % 10)
            m = classes == c
            ax_pca.scatter(*pv[m].T, s=8, marker="o", color=colour, label=f"{name} (image)", zorder=2)
            ax_pca.scatter(*pt[m].T, s=10, marker="^", color=colour, edgecolors="k", linewidths=0.2, zorder=2)
        ax_pca.plot([], [], "^", color="0.5", markeredgecolor="k", label="text (▲)")
    ax_pca.set(title="joint PCA: images ● texts ▲, lines join true pairs", xlabel="PC 1", ylabel="PC 2")
    ax_pca.legend(fontsize=7, loc="best")

    for name, values in similarity_groups(v, t, classes).items():
        if len(values):
            ax_hist.hist(values, bins=50, density=True, histtype="stepfilled", alpha=0.45, label=f"{name} (n={len(values)})")
    ax_hist.set(title="image–text cosine similarity", xlabel="cos(v_i, t_j)", ylabel="density")
    ax_hist.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100)
    return fig
