"""`CompactProgressBar`: Lightning's Rich progress bar, kept to one line per bar in an 80-column terminal.

Lightning's default Rich bar puts `v_num` and every ``prog_bar`` metric with four decimals after a
40-character bar; in 80 columns the metrics column wraps, one value per line (4 lines per
epoch on the demo). This bar drops `v_num` (the run folder names the version), prints metrics
with three significant digits, gives the bar 20 characters (12, without the it/s column, in
terminals under 100 columns), and cuts the metrics that still do not fit with "…" instead of
wrapping (all of them are in ``metrics.csv``, and without a bar `EpochSummary` prints them per epoch). `MedAlignCLI` uses it where Lightning would pick its own Rich bar.
"""

from __future__ import annotations

from typing import Any

from lightning.pytorch.callbacks import RichProgressBar
from lightning.pytorch.callbacks.progress.rich_progress import CustomBarColumn, ProcessingSpeedColumn, RichProgressBarTheme
from rich.table import Column

BAR_WIDTH = 20
WIDE = 100  # columns from which the bar is 20 characters and the speed column is shown


class CompactProgressBar(RichProgressBar):
    """`RichProgressBar` on one line: no `v_num`, ``.3g`` metrics, a short bar, overflow cut with "…".

    Args:
        refresh_rate: batches between refreshes.
        leave: keep the finished epoch bars on screen.
        theme: Lightning's theme; its `metrics_format` defaults to ``.3g`` here.
        console_kwargs: `rich.console.Console` arguments (e.g. ``{"width": 80}``).
    """

    def __init__(self, refresh_rate: int = 100, leave: bool = False, theme: RichProgressBarTheme | None = None,
                 console_kwargs: dict[str, Any] | None = None) -> None:
        super().__init__(refresh_rate=refresh_rate, leave=leave,
                         theme=theme or RichProgressBarTheme(metrics_format=".3g"), console_kwargs=console_kwargs)

    def get_metrics(self, trainer, pl_module) -> dict[str, Any]:
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        return metrics

    def configure_columns(self, trainer) -> list:
        """Lightning's columns with a 20-character bar (12 and no speed column below 100 columns), none wrapping."""
        narrow = self._console is not None and self._console.width < WIDE
        columns = [CustomBarColumn(bar_width=12 if narrow else BAR_WIDTH, complete_style=self.theme.progress_bar,
                                   finished_style=self.theme.progress_bar_finished, pulse_style=self.theme.progress_bar_pulse)
                   if isinstance(column, CustomBarColumn) else column for column in super().configure_columns(trainer)
                   if not (narrow and isinstance(column, ProcessingSpeedColumn))]
        for column in columns:  # only the metrics column gives way when the line is too long
            column._table_column = Column(no_wrap=True)
        return columns

    def _init_progress(self, trainer) -> None:
        super()._init_progress(trainer)
        component = self._metric_component
        if component is not None and not getattr(component, "_one_line", False):
            render = component.render

            def one_line(task):  # the metrics' Text is cut with "…" at the column's width instead of wrapping
                text = render(task)
                text.no_wrap, text.overflow = True, "ellipsis"
                return text

            component.render, component._one_line = one_line, True
