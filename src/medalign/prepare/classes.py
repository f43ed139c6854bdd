"""Class-name label columns for the natural-image reference datasets (multi-class or multi-label).

Recipes5k, COCO-QA and DAQUAR name their classes with strings (a food type, an answer word);
`one_hot` turns them into 1/0 manifest columns, one per class, keeping the classes seen in the
train split at least `min_count` times. A class whose name is a standard manifest column
(``image``, ``text``, ...) is renamed ``<name>_label``.
"""

from __future__ import annotations

from collections import Counter
from typing import Sequence

import numpy as np

from medalign.data.manifest import MANIFEST_COLUMNS


def class_columns(train_values: Sequence[Sequence[str]], min_count: int = 1) -> list[str]:
    """Classes seen in the train rows (each row: its class names) at least `min_count` times, sorted."""
    counts = Counter(c for row in train_values for c in set(row))
    return sorted(c for c, n in counts.items() if n >= min_count)


def column_name(name: str) -> str:
    """The manifest column of class `name` (renamed when it collides with a standard column)."""
    reserved = set(MANIFEST_COLUMNS) | {"study_id", "subject_id", "_file", "_row"}
    return f"{name}_label" if name in reserved else name


def one_hot(values: Sequence[Sequence[str]], classes: Sequence[str]) -> dict[str, np.ndarray]:
    """column → (N,) float 1/0: whether each row's class names include that class."""
    rows = [set(v) for v in values]
    return {column_name(c): np.array([float(c in r) for r in rows]) for c in classes}
