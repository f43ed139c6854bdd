"""Validate a prepared manifest in memory, before anything is written.

The checks are those `medalign.data.manifest.read_manifest` applies at training time (split,
labels, image path), but the messages name the *raw* file, row and column each bad row came from
(the ``_file``/``_row`` columns of `medalign.prepare.tables`), not the manifest's row.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from medalign.prepare.errors import AdapterError
from medalign.prepare.tables import where

SPLITS = ("train", "val", "test")
LABEL_VALUES = (-1.0, 0.0, 1.0)


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
    missing = [c for c in ("image", "text", "split", *label_columns) if c not in frame.columns]
    if missing:
        raise AdapterError(f"{dataset}: the adapter produced no column(s) {missing} (a bug in the adapter)")
    bad = ~frame["split"].isin(SPLITS).to_numpy()
    if bad.any():
        raise _first(frame, bad, dataset, "split", f"is not one of {list(SPLITS)}")
    images = frame["image"]
    bad = (images.isna() | images.astype(str).str.strip().eq("")).to_numpy()
    if bad.any():
        raise _first(frame, bad, dataset, "image", "is not an image path")
    for column in label_columns:
        raw = frame[column]
        values = pd.to_numeric(raw, errors="coerce")
        bad = ((values.isna() & raw.notna()) | (values.notna() & ~values.isin(LABEL_VALUES))).to_numpy()
        if bad.any():
            raise _first(frame, bad, dataset, column, f"is not a label (expected one of {list(LABEL_VALUES)} or blank)")
