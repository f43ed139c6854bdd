"""Pictures of a paired embedding set (eCLIP paper Fig. 1/5 style).

`plot_geometry` draws a 2-D PCA of both modalities fitted jointly, with lines joining true pairs,
and cosine-similarity histograms of image–text pairs grouped by label (true pair / same label /
different label). The numbers behind it live in `medalign.evaluation.geometry`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from medalign.evaluation.geometry import joint_pca, row_classes, similarity_groups
from medalign.evaluation.plots.style import legend_below, new_figure, save_figure

__all__ = ["plot_geometry"]


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
    fig = new_figure((12, 5.6))  # checks matplotlib first
    from matplotlib import colormaps
    from matplotlib.collections import LineCollection

    rng = np.random.default_rng(seed)
    rows = np.sort(rng.permutation(len(v))[:max_points])
    v, t = v[torch.from_numpy(rows).to(v.device)], t[torch.from_numpy(rows).to(t.device)]
    classes = row_classes(labels)
    classes = None if classes is None else classes[rows]
    pv, pt = joint_pca(v, t)

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

    for name, values in similarity_groups(v, t, classes).items():
        if len(values):
            ax_hist.hist(values, bins=50, density=True, histtype="stepfilled", alpha=0.45, label=f"{name} (n={len(values)})")
    ax_hist.set(title="image–text cosine similarity", xlabel="cos(v_i, t_j)", ylabel="density")
    legend_below(fig, ncol=4)  # both panels' keys under the figure: no point or bar is hidden
    if title:
        fig.suptitle(title)
    if path is not None:
        save_figure(fig, path)
    return fig
