"""What every dataset adapter shares: locating published files, checking columns, splits.

An adapter turns a dataset *as distributed* into a `Prepared` table (absolute image paths,
report text, split, labels) plus a count of the rows it dropped and why; `writer.py` turns that
into the standard manifest (docs/datasets.md). Table reading lives in `tables.py`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from medalign.data.manifest import MANIFEST_COLUMNS  # noqa: F401 - re-exported: the standard columns
from medalign.data.text import clean_report as clean_text  # noqa: F401 - re-exported: the one cleaning rule
from medalign.prepare.errors import AdapterError
from medalign.prepare.tables import (
    SOURCE_COLUMNS, Layout, find_file, read_table, require_columns, source_of, strict_labels, where,
)  # fmt: skip

MAX_EXAMPLES = 5

__all__ = [
    "AdapterError", "Drops", "Layout", "MANIFEST_COLUMNS", "Prepared", "SOURCE_COLUMNS", "clean_text", "drop", "find_file",
    "index_files", "labels_text", "read_table", "require_columns", "source_of", "split_by_group", "strict_labels", "where",
]  # fmt: skip


class Drops(Counter):
    """reason → rows dropped for it, plus the first few of them (``examples``: raw file, row, value)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.examples: dict[str, list[dict[str, Any]]] = {}


@dataclass
class Prepared:
    """An adapter's output, before it is written as a manifest.

    Attributes:
        dataset: adapter name (goes into prepare_report.json).
        frame: one row per image–text pair: ``image`` (absolute path), ``text``, ``split``,
            optional ``heatmap`` (absolute path or ""), ``id``, ``study_id``, ``subject_id``, the
            label columns and any extra columns to keep.
        label_columns: label columns, in order; values 1 / 0 / -1 / NaN.
        rows_in: rows read from the primary table, before any were dropped.
        dropped: reason → number of rows dropped for it (a `Drops` also keeps the first few rows).
        notes: facts worth printing (e.g. "views unknown: all images kept").
        report: extra sections for prepare_report.json (e.g. ``{"gaze": {...}}``).
        heatmaps: files the writer renders into the output folder: path relative to it (as in
            the ``heatmap`` column) → a function returning the (H, W) array. Rendering is deferred
            so nothing is written before the manifest validates.
    """

    dataset: str
    frame: pd.DataFrame
    label_columns: list[str]
    rows_in: int
    dropped: Counter = field(default_factory=Drops)
    notes: list[str] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)
    heatmaps: dict[str, Callable[[], np.ndarray]] = field(default_factory=dict)


def drop(
    frame: pd.DataFrame, mask: pd.Series | np.ndarray, reason: str, dropped: Counter, value: str | None = None
) -> pd.DataFrame:
    """Remove the rows where `mask` is true and count them under `reason`.

    When `dropped` is a `Drops`, the first few dropped rows are kept as examples: their raw file
    and row (where the frame carries ``_file``/``_row``) and the value of column `value`.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.any():
        dropped[reason] += int(mask.sum())
        if isinstance(dropped, Drops):
            examples = dropped.examples.setdefault(reason, [])
            for i in np.flatnonzero(mask)[: max(0, MAX_EXAMPLES - len(examples))]:
                example: dict[str, Any] = {"where": where(frame, int(i))}
                if value is not None:
                    cell = frame[value].iloc[int(i)]
                    example[value] = None if pd.isna(cell) else str(cell) if not isinstance(cell, (list, tuple)) else cell
                examples.append(example)
    return frame.loc[~mask]


def split_by_group(
    groups: pd.Series, val_fraction: float, test_fraction: float, seed: int
) -> np.ndarray:
    """Assign train / val / test by group (e.g. patient), so no group spans two splits.

    Groups are shuffled with `seed`; the first ``test_fraction`` of them go to test, the next
    ``val_fraction`` to val, the rest to train. Returns an array of split names, one per row.
    """
    if not (0 <= val_fraction and 0 <= test_fraction and val_fraction + test_fraction < 1):
        raise ValueError(f"val_fraction {val_fraction} + test_fraction {test_fraction} must lie in [0, 1)")
    unique = np.array(sorted(groups.astype(str).unique()))
    order = np.random.default_rng(seed).permutation(len(unique))
    n_test = int(round(test_fraction * len(unique)))
    n_val = int(round(val_fraction * len(unique)))
    split_of = np.full(len(unique), "train", dtype=object)
    split_of[order[:n_test]] = "test"
    split_of[order[n_test : n_test + n_val]] = "val"
    lookup = dict(zip(unique, split_of))
    return groups.astype(str).map(lookup).to_numpy()


def index_files(root: Path, patterns: Sequence[str]) -> dict[str, Path]:
    """Map file name → path for files under `root` matching the glob `patterns` (first wins)."""
    found: dict[str, Path] = {}
    for pattern in patterns:
        for path in root.glob(pattern):
            found.setdefault(path.name, path)
    return found


def labels_text(row: pd.Series, label_columns: Sequence[str]) -> str:
    """A report-like sentence from labels: positives, then uncertain ones (for label-only datasets)."""
    positive = [c for c in label_columns if row[c] == 1]
    uncertain = [c for c in label_columns if row[c] == -1]
    parts = []
    if positive:
        parts.append(", ".join(p.replace("_", " ").lower() for p in positive).capitalize() + ".")
    if uncertain:
        parts.append("Possible " + ", ".join(u.replace("_", " ").lower() for u in uncertain) + ".")
    return " ".join(parts) or "No finding."
