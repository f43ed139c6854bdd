"""Validate a prepared manifest in memory, before anything is written.

The rules are the manifest's own (`medalign.data.manifest`: columns, split, label values, image
path), those `read_manifest` applies at training time, but the messages name the *raw* file, row and column each bad row came from
(the ``_file``/``_row`` columns of `medalign.prepare.tables`), not the manifest's row.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from medalign.data.manifest import LABEL_VALUES, REQUIRED_COLUMNS, SPLITS, bad_label_rows, bad_split_rows, empty_rows
from medalign.prepare.errors import AdapterError
from medalign.prepare.tables import where


def _first(frame: pd.DataFrame, bad: np.ndarray, dataset: str, column: str, what: str) -> AdapterError:
    i = int(np.flatnonzero(bad)[0])
    value = frame[column].iloc[i]
    return AdapterError(f"{dataset}: {where(frame, i)}, column {column!r}: {str(value)!r} {what} ({int(bad.sum())} such rows)")


def validate_frame(frame: pd.DataFrame, label_columns: Sequence[str], dataset: str) -> None:
    """Raise `AdapterError` on the first bad split, label or image path of `frame`.

    Args:
        frame: the manifest rows (``image``, ``text``, ``split``, labels; ``_file``/``_row`` if known).
        label_columns: columns whose values must be 1, 0, -1 or blank.
        dataset: adapter name, for the message.
    """
    missing = [c for c in (*REQUIRED_COLUMNS, *label_columns) if c not in frame.columns]
    if missing:
        raise AdapterError(f"{dataset}: the adapter produced no column(s) {missing} (a bug in the adapter)")
    bad = bad_split_rows(frame["split"])
    if bad.any():
        raise _first(frame, bad, dataset, "split", f"is not one of {list(SPLITS)}")
    bad = empty_rows(frame["image"])
    if bad.any():
        raise _first(frame, bad, dataset, "image", "is not an image path")
    for column in label_columns:
        bad, _ = bad_label_rows(frame[column])
        if bad.any():
            raise _first(frame, bad, dataset, column, f"is not a label (expected one of {list(LABEL_VALUES)} or blank)")
