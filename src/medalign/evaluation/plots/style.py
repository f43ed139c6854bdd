"""One plotting style for every medalign figure: matplotlib's object API, no global state.

No `pyplot`, no `matplotlib.use(...)`: library code must not switch the backend of a user's
notebook or hold figures in pyplot's registry. Figures are plain `matplotlib.figure.Figure`
objects; `save_figure` writes a PNG (folders created) with one DPI and tight layout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

DPI = 110  # every PNG medalign writes


def new_figure(size: tuple[float, float] = (6.0, 4.0), **kwargs: Any):
    """A fresh `matplotlib.figure.Figure` of `size` inches (no pyplot, any backend).

    Raises:
        ImportError: with the pip hint, when matplotlib is missing.
    """
    try:
        from matplotlib.figure import Figure
    except ImportError as err:  # pragma: no cover - matplotlib is a core dependency
        raise ImportError("medalign plots need matplotlib: pip install matplotlib") from err
    return Figure(figsize=size, **kwargs)


def save_figure(fig, path: str | Path) -> Path:
    """Tight layout, then a PNG at `path` (parent folders created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    return path
