"""The geometry picture: legend off the points, titles apart, a PNG written."""

import numpy as np
import torch
import torch.nn.functional as F

from medalign.evaluation.plots.geometry import plot_geometry
from tests.evaluation.plots.checks import legend_hidden_marks, overlapping_titles, written


def test_geometry_picture_legend_hides_no_point(tmp_path):
    g = torch.Generator().manual_seed(0)
    v = F.normalize(torch.randn(400, 3, generator=g), dim=1)  # spread over the whole panel: no free corner
    t = F.normalize(torch.randn(400, 3, generator=g), dim=1)
    labels = np.eye(3)[np.random.default_rng(0).integers(0, 3, 400)]
    fig = plot_geometry(v, t, labels, ["atelectasis", "cardiomegaly", "edema"], tmp_path / "g.png", title="last.ckpt on mimic · test")
    assert written(tmp_path / "g.png")
    assert legend_hidden_marks(fig) == 0
    assert overlapping_titles(fig) == []
