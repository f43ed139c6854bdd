"""Counting rows skipped under ``on_error: skip``: distinct rows per epoch, a share threshold, a file.

Workers find unreadable rows; each batch carries its reports (``batch["bad_rows"]``, see
`ImageTextDataset`) to the main process, where one `SkipLedger` per split counts *distinct* rows
per epoch (a row that fails in two workers, or twice, counts once), stops the run when more than
`max_share` of the split is unreadable, and appends every new bad row to a CSV file so the data
can be fixed.
"""

from __future__ import annotations

import csv
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, NamedTuple

log = logging.getLogger(__name__)

BAD_ROWS_KEY = "bad_rows"  # batch key: list of `BadRow`, present only when a row was skipped
BAD_ROWS_COLUMNS = ("split", "epoch", "row", "path", "error")


class BadRow(NamedTuple):
    """One unreadable manifest row: its number, the file that failed and why.

    A named tuple, not a dataclass: Lightning's batch transfer rebuilds dataclasses field by field.
    """

    row: int
    path: str
    error: str


class TooManyBadRows(RuntimeError):
    """More than the allowed share of a split is unreadable."""


@dataclass
class SkipLedger:
    """Distinct skipped rows of one split, per epoch.

    Args:
        split: split name (for messages and the file).
        size: rows in the split (the threshold's denominator).
        max_share: largest tolerated share of unreadable rows in one epoch (0.01 = 1 %).
        path: CSV file the bad rows are appended to (created on the first one); None = none.
    """

    split: str
    size: int
    max_share: float = 0.01
    path: Path | None = None
    epoch: int = 0
    rows: dict[int, BadRow] = field(default_factory=dict)
    _written: set[tuple[int, int]] = field(default_factory=set)

    def __post_init__(self) -> None:
        if not 0 <= self.max_share <= 1:
            raise ValueError(f"data.max_skip_share must be in [0, 1], got {self.max_share}")

    @property
    def limit(self) -> int:
        """Most distinct bad rows tolerated per epoch."""
        return math.floor(self.max_share * self.size)

    @property
    def count(self) -> int:
        """Distinct bad rows seen in the current epoch."""
        return len(self.rows)

    def start_epoch(self, epoch: int) -> None:
        """Reset the count for `epoch` (a new epoch re-counts every bad row it meets)."""
        if epoch != self.epoch:
            self.epoch, self.rows = epoch, {}

    def record(self, reports: Iterable[BadRow], epoch: int | None = None) -> int:
        """Add a batch's reports; returns how many rows were new this epoch.

        Raises:
            TooManyBadRows: the epoch's distinct bad rows exceed `limit`.
        """
        if epoch is not None:
            self.start_epoch(epoch)
        new = []
        for report in reports:
            if report.row not in self.rows:
                self.rows[report.row] = report
                new.append(report)
                log.warning("%s row %d skipped: %s", self.split, report.row, report.error)
        self._write(new)
        if self.count > self.limit:
            where = f"; the bad rows are listed in {self.path}" if self.path else ""
            raise TooManyBadRows(
                f"{self.count} distinct unreadable rows in the {self.split} split in epoch {self.epoch} "
                f"(more than data.max_skip_share = {self.max_share:g} of {self.size} rows){where}. "
                "Fix or remove them, or raise data.max_skip_share"
            )
        return len(new)

    def _write(self, reports: list[BadRow]) -> None:
        if self.path is None:
            return
        fresh = [r for r in reports if (self.epoch, r.row) not in self._written]
        if not fresh:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        header = not self.path.exists()
        with self.path.open("a", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            if header:
                writer.writerow(BAD_ROWS_COLUMNS)
            for r in fresh:
                writer.writerow((self.split, self.epoch, r.row, r.path, r.error))
                self._written.add((self.epoch, r.row))
