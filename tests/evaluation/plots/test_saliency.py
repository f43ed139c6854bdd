"""Saliency panels: colour bars for gaze and saliency, no title overlaps, a PNG written."""

import torch

from medalign.evaluation.plots import saliency
from tests.evaluation.plots.checks import capture, colour_bars, overlapping_titles, written


def _rows(n: int = 2):
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 16), torch.linspace(-1, 1, 16), indexing="ij")
    heat = torch.exp(-4 * (xx**2 + yy**2))
    return [(torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(i)), heat, heat.flip(0)) for i in range(n)]


def test_panels_have_a_colour_bar_for_gaze_and_saliency_and_no_overlapping_titles(tmp_path, monkeypatch):
    figures = capture(monkeypatch, saliency)
    path = saliency.plot_panels(_rows(), tmp_path / "s.png", title="gradcam vs expert gaze on a long dataset name")
    assert written(path)
    (fig,) = figures
    bars = colour_bars(fig)
    assert sorted(b.cmap.name for b in bars) == ["jet", "magma"]  # expert gaze and model saliency
    assert all(b.vmin == 0 and b.vmax == 1 for b in (bar.norm for bar in bars))
    assert overlapping_titles(fig) == []
