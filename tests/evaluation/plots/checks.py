"""Layout checks for rendered figures, from matplotlib's own bounding boxes (Agg canvas, no pyplot)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PathCollection
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle


def capture(monkeypatch, module) -> list:
    """Patch ``module.save_figure`` to record each figure it saves (and still save it)."""
    from medalign.evaluation.plots import style

    figures, real_save = [], style.save_figure

    def save(fig, path):
        figures.append(fig)
        return real_save(fig, path)

    monkeypatch.setattr(module, "save_figure", save)
    return figures


def draw(fig):
    """Lay out `fig` (as drawing it would, without rasterising) on an Agg canvas; returns the renderer."""
    FigureCanvasAgg(fig)
    fig.draw_without_rendering()
    return fig.canvas.get_renderer()


def legends(fig) -> list:
    return list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]


def mark_points(ax) -> np.ndarray:
    """Display coordinates (P, 2) of every plotted marker (lines with markers, scatter points)."""
    points = [np.empty((0, 2))]
    for line in ax.get_lines():
        if line.get_marker() not in (None, "None", "", " ") and len(line.get_xydata()):
            points.append(line.get_transform().transform(np.asarray(line.get_xydata(), float)))
    for coll in ax.collections:
        if isinstance(coll, PathCollection) and len(coll.get_offsets()):
            points.append(coll.get_offset_transform().transform(np.asarray(coll.get_offsets(), float)))
    return np.concatenate(points)


def legend_hidden_marks(fig) -> int:
    """How many plotted markers or bars lie under a legend."""
    renderer = draw(fig)
    hidden = 0
    for legend in legends(fig):
        box = legend.get_window_extent(renderer)
        for ax in fig.axes:
            pts = mark_points(ax)
            finite = pts[np.isfinite(pts).all(1)]
            hidden += int(sum(box.contains(x, y) for x, y in finite))
            hidden += sum(box.overlaps(p.get_window_extent(renderer)) for p in ax.patches if isinstance(p, Rectangle)
                          and p.get_height() == p.get_height() and p.get_visible())
    return hidden


def overlapping_titles(fig) -> list[tuple[str, str]]:
    """Pairs of (sup)titles whose drawn boxes overlap."""
    renderer = draw(fig)
    texts = [t for ax in fig.axes for t in (ax.title, ax._left_title, ax._right_title) if t.get_text()]
    if fig._suptitle is not None:
        texts.append(fig._suptitle)
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts]
    return [(a, b) for i, (a, ba) in enumerate(boxes) for b, bb in boxes[i + 1:] if ba.overlaps(bb)]


def colour_bars(fig) -> list:
    return [ax._colorbar for ax in fig.axes if getattr(ax, "_colorbar", None) is not None]


def written(path: Path) -> bool:
    """A non-empty PNG file."""
    path = Path(path)
    return path.is_file() and path.stat().st_size > 1000 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def legends_inside_axes(fig) -> int:
    """How many (legend, axes) pairs overlap: 0 when every legend sits outside every axes."""
    renderer = draw(fig)
    return sum(legend.get_window_extent(renderer).overlaps(ax.get_window_extent(renderer))
               for legend in legends(fig) for ax in fig.axes if ax.get_visible())
