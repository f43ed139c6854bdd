"""What every dataset adapter shares: locating published files, checking columns, splits.

An adapter turns a dataset *as distributed* into a `Prepared` table (absolute image paths,
report text, split, labels) plus a count of the rows it dropped and why; `writer.py` turns that
into the standard manifest (docs/datasets.md).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

MANIFEST_COLUMNS = ("image", "text", "split", "heatmap", "id", "study_id", "subject_id")
_WHITESPACE = re.compile(r"\s+")


class AdapterError(ValueError):
    """The raw dataset is not in the published layout; the message names the file and the version."""


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
        dropped: reason → number of rows dropped for it.
        notes: facts worth printing (e.g. "views unknown: all images kept").
    """

    dataset: str
    frame: pd.DataFrame
    label_columns: list[str]
    rows_in: int
    dropped: Counter = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)


def find_file(root: Path, names: Sequence[str], dataset: str, version: str) -> Path:
    """The first of `names` (relative to `root`) that exists, accepting a ``.gz`` twin of each.

    Raises:
        AdapterError: none exists; the message lists what was looked for and the expected version.
    """
    for name in names:
        for candidate in (root / name, root / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    looked = ", ".join(f"{n}[.gz]" for n in names)
    raise AdapterError(f"{dataset}: none of {looked} found under {root}; expected the {version} layout")


def read_table(path: Path, dataset: str, version: str, required: Iterable[str], **kwargs) -> pd.DataFrame:
    """Read a CSV (plain, ``.gz`` or a one-member ``.zip``) and check that `required` columns exist."""
    try:
        frame = pd.read_csv(path, **kwargs)
    except Exception as err:  # pandas raises many types for malformed files
        raise AdapterError(f"{dataset}: cannot read {path}: {err}") from err
    require_columns(frame, required, path, dataset, version)
    return frame


def require_columns(frame: pd.DataFrame, required: Iterable[str], path: Path | str, dataset: str, version: str) -> None:
    """Raise `AdapterError` naming the missing columns, the file and the expected version."""
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise AdapterError(
            f"{dataset}: {path} lacks column(s) {missing} (found {list(frame.columns)}); expected the {version} layout"
        )


def clean_text(text: object) -> str:
    """Collapse whitespace; NaN and None become ""."""
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return ""
    return _WHITESPACE.sub(" ", str(text)).strip()


def drop(frame: pd.DataFrame, mask: pd.Series | np.ndarray, reason: str, dropped: Counter) -> pd.DataFrame:
    """Remove the rows where `mask` is true and count them under `reason`."""
    mask = np.asarray(mask, dtype=bool)
    if mask.any():
        dropped[reason] += int(mask.sum())
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
