"""The shared style: dataset names for titles, chance lines inside the y range, legends below the axes."""

import pytest

from medalign.evaluation.plots.style import chance_line, dataset_name, legend_below, new_figure
from tests.evaluation.plots.checks import draw, legend_hidden_marks


@pytest.mark.parametrize("manifest, name", [
    ("data/mimic/manifest.csv", "mimic"),
    ("/x/chexpert/test.csv", "chexpert"),
    ("data/chexpert_5x200.csv", "chexpert_5x200"),
    ("manifest.csv", "manifest"),
])
def test_dataset_name_is_the_folder_for_a_generic_manifest_name(manifest, name):
    assert dataset_name(manifest) == name


def test_chance_line_extends_the_y_limits_to_include_chance():
    fig = new_figure()
    ax = fig.subplots()
    ax.plot([1, 2], [0.8, 0.9])
    line = chance_line(ax, 0.5)
    low, high = ax.get_ylim()
    assert low < 0.5 < high and tuple(line.get_ydata()) == (0.5, 0.5)


def test_legend_below_sits_under_the_axes_and_hides_no_mark():
    fig = new_figure((4, 3))
    ax = fig.subplots()
    for k in range(6):  # a legend this long would cover the axes' points inside them
        ax.plot([0, 1, 2], [k, k + 0.5, k], marker="o", label=f"series number {k}")
    legend = legend_below(fig, ncol=2)
    renderer = draw(fig)
    assert legend.get_window_extent(renderer).y1 <= ax.get_window_extent(renderer).y0
    assert legend_hidden_marks(fig) == 0
