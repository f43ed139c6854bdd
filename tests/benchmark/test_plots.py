"""Benchmark pictures: legend below the panels, chance lines for AUC (0.5) and NSS (0), PNGs written;
the questions' forest plot draws each CI where the table puts it."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.colors import to_rgba

from medalign.benchmark import plots
from medalign.benchmark.plots import chance_level, plot_bars, plot_fraction_lines, plot_questions
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


def _question(name, metric, mean, low, high, reading, n=5, p=0.01):
    return {"question": name, "method": "m", "baseline": "b", "metric": metric, "fraction": 1.0,
            "difference_mean": mean, "low": low, "high": high, "p_value": p, "p_holm": min(1.0, 4 * p), "n": n,
            "reading": reading}


def test_question_forest_plot_draws_each_interval_in_table_order_coloured_by_reading(tmp_path, monkeypatch):
    figures = capture(monkeypatch, plots)
    nan = float("nan")
    questions = [_question("up", "f1", 0.05, 0.02, 0.08, "higher"),
                 _question("flat", "f1", 0.01, -0.02, 0.04, "no detectable difference", p=0.4),
                 _question("pending", "f1", nan, nan, nan, "too few seeds (< 3)", n=0, p=nan),
                 _question("down", "nss", -0.3, -0.5, -0.1, "lower", p=0.02)]
    cfg = SimpleNamespace(name="pc", fractions=[1.0])
    assert written(plot_questions(questions, cfg, tmp_path / "q.png"))
    (fig,) = figures
    assert legend_hidden_marks(fig) == 0 and overlapping_titles(fig) == []
    main = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title().split(":")[0] for ax in main] == ["f1", "nss"]
    expected_colours = {"higher": "tab:green", "lower": "tab:red", "no detectable difference": "0.3"}
    for ax, group in zip(main, (questions[:3], questions[3:])):
        labels = [t.get_text() for t in ax.get_yticklabels()]
        top_down = sorted(zip(ax.get_yticks(), labels), reverse=True)
        assert [label for _, label in top_down] == [q["question"] for q in group]  # first question on top
        y_of = dict((label, y) for y, label in top_down)
        drawn = [q for q in group if q["n"]]
        segments = [seg for coll in ax.collections if isinstance(coll, LineCollection) for seg in coll.get_segments()]
        assert len(segments) == len(drawn)
        for q in drawn:  # the CI line spans [low, high] at the question's row, in its reading's colour
            (seg,) = [s for s in segments if s[0][1] == pytest.approx(y_of[q["question"]])]
            assert sorted(seg[:, 0]) == pytest.approx([q["low"], q["high"]])
            (dot,) = [c for c in ax.collections if isinstance(c, PathCollection)
                      and c.get_offsets()[0][1] == pytest.approx(y_of[q["question"]])]
            assert dot.get_offsets()[0][0] == pytest.approx(q["difference_mean"])
            assert tuple(dot.get_facecolor()[0]) == pytest.approx(to_rgba(expected_colours[q["reading"]]))
        assert any(line.get_xdata()[0] == 0 for line in ax.get_lines())  # the zero line
    right = [t.get_text() for ax in main for child in ax.child_axes for t in child.get_yticklabels()]
    assert "not run" in right and any(t.startswith("p 0.02 · Holm 0.08") for t in right)
    assert not any(math.isnan(y) for ax in main for y in ax.get_yticks())
