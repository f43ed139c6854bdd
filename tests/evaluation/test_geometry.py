"""Geometry table and pictures, each checked against a direct (numpy / sklearn / loop) computation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.decomposition import PCA

from medalign.evaluation.geometry import geometry_metrics, joint_pca, row_classes, similarity_groups
from medalign.evaluation.plots.geometry import plot_geometry
from medalign.evaluation.results import format_table, metrics_table
from medalign.metrics.geometry import geometry_summary
from medalign.metrics.clustering import clustering_scores

NAN = float("nan")


def _embeddings(n: int, d: int = 8, seed: int = 0, shift: float = 1.5) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    v = F.normalize(torch.randn(n, d, generator=g) + shift * torch.eye(d)[0], dim=1)
    t = F.normalize(v + 0.5 * torch.randn(n, d, generator=g) - shift * torch.eye(d)[0], dim=1)
    return v, t


def _clustered(n_per_class: int = 20, classes: int = 3, d: int = 8, seed: int = 0):
    """Image embeddings around `classes` well separated directions, one-hot labels, a few ambiguous rows."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(classes).repeat_interleave(n_per_class)
    v = F.normalize(4 * torch.eye(d)[y] + torch.randn(len(y), d, generator=g), dim=1)
    t = F.normalize(v + torch.randn(len(y), d, generator=g), dim=1)
    labels = F.one_hot(y, classes).float().numpy()
    labels[0, 1] = 1.0  # multi-label row
    labels[5, 2] = NAN  # unknown value
    labels[7] = 0.0  # no finding
    return v, t, labels


def test_row_classes_matches_a_loop():
    labels = np.array([[1, 0, 0], [0, 1, 1], [0, 0, 1], [NAN, 1, 0], [0, 0, 0], [0, 1, 0]], dtype=np.float32)
    expected = []
    for row in labels:
        single = not np.isnan(row).any() and (row == 1).sum() == 1
        expected.append(int(np.argmax(row)) if single else -1)
    np.testing.assert_array_equal(row_classes(labels), expected)
    np.testing.assert_array_equal(row_classes(torch.from_numpy(labels)), expected)
    assert row_classes(None) is None and row_classes(np.zeros((6, 0))) is None


def test_metrics_without_labels_are_the_geometry_summary():
    v, t = _embeddings(30)
    assert geometry_metrics(v, t) == geometry_summary(v, t)
    assert geometry_metrics(v, t, np.zeros((30, 0))) == geometry_summary(v, t)


def test_clustering_runs_on_single_label_rows_against_sklearn():
    v, t, labels = _clustered()
    metrics = geometry_metrics(v, t, labels, seed=3)
    keep = row_classes(labels) >= 0
    y = labels[keep].argmax(1)
    assert metrics["n_clustered"] == keep.sum() == 57
    # the single-label rows, and only they, reach the clustering scores (themselves checked against
    # hand-computed cases and independent formulas in tests/metrics/test_clustering.py)
    expected = clustering_scores(v[torch.from_numpy(keep)], y, seed=3)
    for key, value in expected.items():
        assert metrics[key] == pytest.approx(value), key
    assert metrics["nmi"] > 0.9  # well separated classes are recovered
    for key, value in geometry_summary(v, t).items():
        assert metrics[key] == value


def test_clustering_is_skipped_with_fewer_than_two_classes():
    v, t = _embeddings(10)
    labels = np.zeros((10, 3), dtype=np.float32)
    labels[:, 1] = 1.0  # one class only
    assert "nmi" not in geometry_metrics(v, t, labels)


def test_joint_pca_matches_sklearn_on_the_union():
    v, t = _embeddings(25, d=6)
    pv, pt = joint_pca(v, t)
    reference = PCA(n_components=2, svd_solver="full").fit_transform(torch.cat([v, t]).double().numpy())
    ours = np.concatenate([pv, pt])
    signs = np.sign((ours * reference).sum(0))  # principal axes are defined up to sign
    np.testing.assert_allclose(ours * signs, reference, atol=1e-10)
    assert abs(pv[:, 0].mean() - pt[:, 0].mean()) > 1.0  # the gap is the dominant axis here


def test_similarity_groups_match_a_double_loop():
    v, t, labels = _clustered(n_per_class=4)
    classes = row_classes(labels)
    groups = similarity_groups(v, t, classes)
    cosine = lambda a, b: float(a.double() @ b.double() / (a.double().norm() * b.double().norm()))  # noqa: E731
    same, different = [], []
    for i in range(len(v)):
        for j in range(len(t)):
            if i == j or classes[i] < 0 or classes[j] < 0:
                continue
            cos = cosine(v[i], t[j])
            (same if classes[i] == classes[j] else different).append(cos)
    np.testing.assert_allclose(groups["true pair"], [cosine(a, b) for a, b in zip(v, t)], atol=1e-12)
    np.testing.assert_allclose(np.sort(groups["same label"]), np.sort(same), atol=1e-12)
    np.testing.assert_allclose(np.sort(groups["different label"]), np.sort(different), atol=1e-12)
    unlabelled = similarity_groups(v, t, None)
    assert len(unlabelled["other pairs"]) == len(v) * (len(v) - 1)


@pytest.mark.parametrize("with_labels", [True, False])
def test_plot_writes_a_png_with_both_panels(tmp_path, with_labels):
    v, t, labels = _clustered(n_per_class=10)
    path = tmp_path / "sub" / "geometry.png"
    fig = plot_geometry(v, t, labels if with_labels else None, ["a", "b", "c"], path, title="test", max_points=25, max_lines=5)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pca, hist = fig.axes
    assert len(pca.collections[0].get_segments()) == 5  # the pair lines
    assert len(hist.patches) == (3 if with_labels else 2)  # one filled histogram per group


def test_metrics_table_lists_every_metric():
    table = metrics_table({"alignment": -0.12345, "modality_gap": 1.0, "n_pairs": 7})
    assert table.splitlines() == ["| metric | value |", "|---|---:|", "| alignment | -0.1235 |", "| modality_gap | 1 |", "| n_pairs | 7 |"]


def test_format_table_right_aligns_numeric_columns_only():
    table = format_table(["name", "n", "auc"], [["a", 3, 0.123456], ["b", 10, float("nan")]])
    assert table.splitlines() == ["| name | n | auc |", "|---|---:|---:|", "| a | 3 | 0.1235 |", "| b | 10 | nan |"]
