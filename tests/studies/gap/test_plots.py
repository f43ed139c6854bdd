"""λ-sweep pictures: the legend hides no mark (the "not converged" crosses stay visible); PCA legend off the points."""

import numpy as np
import torch
import torch.nn.functional as F

from medalign.studies.gap.plots import plot_auc_vs_lambda, plot_shift_pca
from medalign.studies.gap.sweep import SweepResult
from tests.evaluation.plots.checks import legend_hidden_marks, legends_inside_axes, overlapping_titles, written


def _result() -> SweepResult:
    lam = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    auc = 0.7 + 0.1 * np.sin(np.linspace(0, 3, 6))[:, None] + np.random.default_rng(0).normal(0, 0.01, (6, 3))
    converged = np.ones((6, 3), bool)
    converged[[1, 4], [0, 2]] = False
    ref = lambda a: {"auc": np.array(a), "val_auc": np.array(a), "converged": np.ones(3, bool), "per_class_auc": np.ones((3, 1))}
    return SweepResult(lam, [0, 1, 2], "multilabel", ["a"], auc, auc[..., None], [{"lambda": 0.0}] * 6, np.zeros(4),
                       auc + 0.01, converged, references={"image_only": ref([0.72, 0.73, 0.71]), "text_only": ref([0.66, 0.67, 0.65])},
                       learned={"lambda": np.array([0.4, 0.5, 0.45]), "auc": np.array([0.78, 0.79, 0.8]),
                                "converged": np.ones(3, bool), "per_class_auc": np.ones((3, 1))})


def test_auc_vs_lambda_legend_hides_no_mark_and_not_converged_crosses_are_drawn(tmp_path):
    result = _result()
    fig = plot_auc_vs_lambda(result, tmp_path / "auc.png", title="mimic: AUC vs λ")
    assert written(tmp_path / "auc.png")
    crosses = [line for line in fig.axes[0].get_lines() if line.get_marker() == "x"]
    assert len(crosses) == 1 and list(crosses[0].get_xdata()) == [0.2, 0.8]
    assert legend_hidden_marks(fig) == 0
    assert overlapping_titles(fig) == []


def test_shift_pca_legend_hides_no_point(tmp_path):
    g = torch.Generator().manual_seed(0)
    v = F.normalize(torch.randn(400, 8, generator=g) + 2, dim=1)  # at λ = 1 the points fill the panel
    t = F.normalize(torch.randn(400, 8, generator=g) - 2, dim=1)
    fig = plot_shift_pca(v, t, v.mean(0) - t.mean(0), [0.0, 0.5, 1.0], tmp_path / "pca.png", title="mimic: test split")
    assert written(tmp_path / "pca.png")
    assert legends_inside_axes(fig) == 0  # one legend under the panels, whatever the point cloud
    assert legend_hidden_marks(fig) == 0 and overlapping_titles(fig) == []
