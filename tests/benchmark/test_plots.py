"""Benchmark pictures: legend below the panels, chance lines for AUC (0.5) and NSS (0), PNGs written."""

from types import SimpleNamespace

import numpy as np
import pytest

from medalign.benchmark import plots
from medalign.benchmark.plots import chance_level, plot_bars, plot_fraction_lines
from tests.evaluation.plots.checks import capture, legend_hidden_marks, overlapping_titles, written

METRICS = ["zero_shot.macro_f1", "linear_probe.macro_auc@1", "saliency.model.nss_mean"]


def _summary():
    rng = np.random.default_rng(0)
    methods, fractions = ["clip", "eclip", "siglip", "dacl"], [0.1, 1.0]
    rows = [{"method": m, "fraction": f, "metric": k, "mean": float(rng.uniform(0.3, 0.9)), "sd": 0.02}
            for m in methods for f in fractions for k in METRICS]
    cfg = SimpleNamespace(name="demo", methods=[SimpleNamespace(name=m) for m in methods], fractions=fractions, seeds=[0, 1, 2])
    return rows, cfg


@pytest.mark.parametrize("plot", [plot_bars, plot_fraction_lines])
def test_benchmark_plots_keep_the_legend_off_the_data_and_mark_chance(plot, tmp_path, monkeypatch):
    figures = capture(monkeypatch, plots)
    summary, cfg = _summary()
    assert written(plot(summary, cfg, METRICS, tmp_path / "b.png"))
    (fig,) = figures
    assert legend_hidden_marks(fig) == 0 and overlapping_titles(fig) == []
    for ax, metric in zip(fig.axes, METRICS):
        dotted = [line.get_ydata()[0] for line in ax.get_lines() if line.get_linestyle() == ":"]
        assert dotted == ([] if chance_level(metric) is None else [chance_level(metric)])
        if dotted:
            low, high = ax.get_ylim()
            assert low <= dotted[0] <= high


def test_chance_levels():
    assert chance_level("linear_probe.macro_auc@0.1") == 0.5 and chance_level("saliency.model.auc_mean") == 0.5
    assert chance_level("saliency.random_model.nss_mean") == 0.0 and chance_level("zero_shot/macro_f1") is None
