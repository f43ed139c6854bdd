"""The probe training-size plot: y from below chance to 1, the chance line at AUC 0.5, legend off the data."""

from medalign.evaluation.plots import style
from medalign.evaluation.tasks.linear_probe import plot_fraction_sweep
from tests.evaluation.plots.checks import capture, legend_hidden_marks, overlapping_titles, written


def test_probe_plot_shows_chance_and_the_full_auc_range(tmp_path, monkeypatch):
    figures = capture(monkeypatch, style)
    sweep = {f"{f:g}": {"fraction": f, "macro_auc": a} for f, a in [(0.01, 0.71), (0.1, 0.74), (1.0, 0.78)]}
    path = plot_fraction_sweep(sweep, tmp_path / "p.png", title="probe on chexpert")
    assert written(path)
    (fig,) = figures
    ax = fig.axes[0]
    low, high = ax.get_ylim()
    assert low < 0.5 and high >= 1.0  # not truncated to the data's 0.71–0.78
    assert [tuple(line.get_ydata()) for line in ax.get_lines() if line.get_linestyle() == ":"] == [(0.5, 0.5)]
    assert legend_hidden_marks(fig) == 0 and overlapping_titles(fig) == []
