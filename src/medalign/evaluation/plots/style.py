"""One plotting style for every medalign figure: matplotlib's object API, no global state.

No `pyplot`, no `matplotlib.use(...)`: library code must not switch the backend of a user's
notebook or hold figures in pyplot's registry. Figures are plain `matplotlib.figure.Figure`
objects with matplotlib's constrained layout (titles, colour bars and outside legends never
overlap); `save_figure` writes a PNG (folders created) at one DPI. Legends go below the axes
(`legend_below`) so they never hide plotted marks; chance levels are drawn with `chance_line`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

DPI = 110  # every PNG medalign writes
GENERIC_NAMES = {"manifest", "data", "dataset", "train", "test", "val", "labels", "reports"}


def new_figure(size: tuple[float, float] = (6.0, 4.0), **kwargs: Any):
    """A fresh `matplotlib.figure.Figure` of `size` inches (no pyplot, any backend), constrained layout.

    Raises:
        ImportError: with the pip hint, when matplotlib is missing.
    """
    try:
        from matplotlib.figure import Figure
    except ImportError as err:  # pragma: no cover - matplotlib is a core dependency
        raise ImportError("medalign plots need matplotlib: pip install matplotlib") from err
    kwargs.setdefault("layout", "constrained")
    return Figure(figsize=size, **kwargs)


def save_figure(fig, path: str | Path) -> Path:
    """A PNG at `path` (parent folders created); returns the path.

    Figures without a layout engine get a tight layout first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fig.get_layout_engine() is None:
        fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    return path


def dataset_name(manifest: str | Path) -> str:
    """A readable name for a dataset in plot titles: the manifest's stem, or its folder when the
    file name is generic (``data/mimic/manifest.csv`` → ``mimic``, ``chexpert_5x200.csv`` → ``chexpert_5x200``)."""
    path = Path(manifest)
    if path.stem.lower() in GENERIC_NAMES and path.parent.name not in ("", "."):
        return path.parent.name
    return path.stem


def legend_below(fig, ax=None, ncol: int = 2, fontsize: float = 8, **kwargs: Any):
    """One legend under the figure's axes (constrained layout makes room), so no plotted mark is hidden.

    Args:
        fig: the figure; its constrained layout reserves the space.
        ax: take the handles from this axes only; None → from every axes, duplicates dropped.
        ncol: legend columns.
    """
    axes = [ax] if ax is not None else fig.axes
    handles: dict[str, Any] = {}
    for a in axes:
        for handle, label in zip(*a.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    if not handles:
        return None
    return fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncol=ncol,
                      fontsize=fontsize, frameon=False, **kwargs)


def chance_line(ax, y: float, label: str = "chance"):
    """A dotted horizontal line at the chance level `y` (e.g. AUC 0.5), kept inside the y limits."""
    line = ax.axhline(y, linestyle=":", color="0.3", linewidth=1.2, label=f"{label} ({y:g})", zorder=0)
    low, high = ax.get_ylim()
    ax.set_ylim(min(low, y - 0.02 * abs(high - low)), max(high, y + 0.02 * abs(high - low)))
    return line
