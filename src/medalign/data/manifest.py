"""The manifest: one CSV/Parquet row per image–report pair, the only input format we read.

Columns (docs/architecture.md, "The manifest"): ``image``, ``text``, ``split`` (train/val/test), optional ``heatmap``,
``id``, ``study_id``, ``subject_id`` and label columns with values 1 / 0 / -1 (uncertain) / empty.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from medalign.data.labels import BlankPolicy, UncertainPolicy, apply_label_policy

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("image", "text", "split")
SPLITS = ("train", "val", "test")


class ManifestError(ValueError):
    """A manifest that cannot be used as it is; the message names the file, row and column."""


@dataclass
class Manifest:
    """A validated manifest.

    Attributes:
        path: the manifest file.
        frame: its rows (index = original row number, 0-based, header excluded).
        label_columns: label columns in use, in order.
    """

    path: Path
    frame: pd.DataFrame
    label_columns: list[str]

    @property
    def root(self) -> Path:
        """Folder that image and heatmap paths are relative to."""
        return self.path.parent

    def __len__(self) -> int:
        return len(self.frame)

    def split(self, name: str) -> "Manifest":
        """The rows of one split (train / val / test)."""
        if name not in SPLITS:
            raise ManifestError(f"unknown split {name!r}; expected one of {SPLITS}")
        return Manifest(self.path, self.frame[self.frame["split"] == name], self.label_columns)

    def labels(self, uncertain: UncertainPolicy = "zeros", blank: BlankPolicy = "zeros") -> np.ndarray:
        """Labels as float32 (N, C): 1 / 0, NaN where left out by a policy (`medalign.data.labels`).

        Args:
            uncertain: -1 cells become 0 (``zeros``), 1 (``ones``) or NaN (``ignore``).
            blank: empty ("not mentioned") cells become 0 (``zeros``) or NaN (``ignore``).
        """
        if not self.label_columns:
            return np.zeros((len(self.frame), 0), dtype=np.float32)
        values = self.frame[self.label_columns].to_numpy(dtype=np.float32, na_value=np.nan)  # (N, C)
        return apply_label_policy(values, uncertain, blank)

    def image_paths(self) -> list[Path]:
        return [self.root / p for p in self.frame["image"]]


def read_manifest(
    path: str | Path,
    label_columns: Sequence[str] = (),
    check_files: bool = True,
) -> Manifest:
    """Read and validate a manifest.

    Args:
        path: a ``.csv``, ``.csv.gz`` or ``.parquet`` file.
        label_columns: label columns that must be present; their values must be 1, 0, -1 or empty.
        check_files: verify that every referenced image and heatmap exists.

    Raises:
        FileNotFoundError: the manifest is missing.
        ManifestError: a column is missing, or a row has a bad split, empty text, an unknown
            label value or a missing file; the message names the row and the value.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"manifest not found: {path}")
    frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, keep_default_na=True)
    missing = [c for c in (*REQUIRED_COLUMNS, *label_columns) if c not in frame.columns]
    if missing:
        raise ManifestError(f"{path}: missing column(s) {missing}; found {list(frame.columns)}")
    frame = frame.reset_index(drop=True)
    if "heatmap" not in frame.columns:
        frame["heatmap"] = ""
    frame["heatmap"] = frame["heatmap"].fillna("").astype(str)
    frame["split"] = frame["split"].astype(str).str.strip().replace({"validate": "val", "valid": "val"})
    frame["text"] = frame["text"].fillna("").astype(str)

    _check_values(path, frame, label_columns)
    if check_files:
        _check_files(path, frame)
    return Manifest(path, frame, list(label_columns))


def _row(index: int) -> str:
    # +2: 1-based, and the header is line 1 of the file.
    return f"row {index} (line {index + 2})"


def _check_values(path: Path, frame: pd.DataFrame, label_columns: Sequence[str]) -> None:
    bad_split = ~frame["split"].isin(SPLITS)
    if bad_split.any():
        i = int(np.flatnonzero(bad_split)[0])
        raise ManifestError(
            f"{path}: {_row(i)} has split {frame['split'].iloc[i]!r}; expected one of {SPLITS} "
            f"({int(bad_split.sum())} such rows)"
        )
    empty_text = frame["text"].str.strip() == ""
    if empty_text.any():
        i = int(np.flatnonzero(empty_text)[0])
        raise ManifestError(
            f"{path}: {_row(i)} (image {frame['image'].iloc[i]}) has an empty report "
            f"({int(empty_text.sum())} such rows); drop them when preparing the manifest"
        )
    for column in label_columns:
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = (values.isna() & frame[column].notna()) | ~(values.isna() | values.isin([1, 0, -1]))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ManifestError(
                f"{path}: {_row(i)}, column {column!r} has label {str(frame[column].iloc[i])!r}; "
                "expected 1, 0, -1 (uncertain) or empty"
            )
        frame[column] = values


def _check_files(path: Path, frame: pd.DataFrame) -> None:
    root = path.parent
    for column in ("image", "heatmap"):
        for i, rel in enumerate(frame[column]):
            if rel and not (root / rel).is_file():
                raise ManifestError(f"{path}: {_row(i)}, {column} file not found: {root / rel}")
