"""The manifest: one CSV/Parquet row per image–report pair, the only input format we read.

Columns (docs/architecture.md, "The manifest"): ``image``, ``text``, ``split`` (train/val/test), optional ``heatmap``,
``id``, ``study_id``, ``subject_id`` and label columns with values 1 / 0 / -1 (uncertain) / empty.
"""

from __future__ import annotations

import gzip
import io
import logging
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from medalign.data.labels import BlankPolicy, UncertainPolicy, apply_label_policy

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("image", "text", "split")
MANIFEST_COLUMNS = (*REQUIRED_COLUMNS, "heatmap", "id", "study_id", "subject_id")  # the standard columns, in order
SPLITS = ("train", "val", "test")
LABEL_VALUES = (1.0, 0.0, -1.0)  # positive, negative, uncertain; an empty cell is "not mentioned"


# The row rules, declared once: `read_manifest` and `medalign prepare` (`prepare.validate`) apply
# them and word the error for their reader (the manifest's row, or the raw file's).
def bad_split_rows(split: pd.Series) -> np.ndarray:
    """(N,) bool: rows whose split is not one of `SPLITS`."""
    return ~split.isin(SPLITS).to_numpy()


def empty_rows(column: pd.Series) -> np.ndarray:
    """(N,) bool: rows with a missing or blank value (an image path, a report)."""
    return (column.isna() | column.astype(str).str.strip().eq("")).to_numpy()


def bad_label_rows(column: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """((N,) bool rows whose label is not one of `LABEL_VALUES` or empty, the column as numbers)."""
    values = pd.to_numeric(column, errors="coerce")
    bad = (values.isna() & column.notna()) | ~(values.isna() | values.isin(LABEL_VALUES))
    return bad.to_numpy(), values


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
    allow_outside_paths: bool = False,
) -> Manifest:
    """Read and validate a manifest.

    Args:
        path: a ``.csv``, ``.csv.gz`` or ``.parquet`` file.
        label_columns: label columns that must be present; their values must be 1, 0, -1 or empty.
        check_files: verify that every referenced image and heatmap exists.
        allow_outside_paths: accept image / heatmap paths that are absolute or lead out of the
            manifest's folder (``../``). Every command refuses them by default (`confine_paths`, one
            rule and one flag) so that a manifest cannot make medalign read — or copy — files
            elsewhere on the machine (``/etc/passwd`` as an image).

    Raises:
        FileNotFoundError: the manifest is missing.
        ManifestError: the file is not UTF-8, a column is missing, or a row has a
            bad split, empty text, an unknown label value, a path outside the manifest's folder or
            a missing file; the message names the row and the value.
    """
    failed = Path(path).parent / "PREPARE_FAILED.txt"
    if failed.is_file():
        log.warning("%s: the last `medalign prepare` into this folder failed (%s); this manifest is from an earlier run",
                    path, failed)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"manifest not found: {path}")
    frame = pd.read_parquet(path) if path.suffix == ".parquet" else _read_csv(path)
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
    _check_ids(path, frame)
    confine_paths(path, frame, allow_outside_paths)
    if check_files:
        _check_files(path, frame)
    return Manifest(path, frame, list(label_columns))


def _row(index: int) -> str:
    # +2: 1-based, and the header is line 1 of the file.
    return f"row {index} (line {index + 2})"


def _check_values(path: Path, frame: pd.DataFrame, label_columns: Sequence[str]) -> None:
    bad_split = bad_split_rows(frame["split"])
    if bad_split.any():
        i = int(np.flatnonzero(bad_split)[0])
        raise ManifestError(
            f"{path}: {_row(i)} has split {frame['split'].iloc[i]!r}; expected one of {SPLITS} "
            f"({int(bad_split.sum())} such rows)"
        )
    empty_text = empty_rows(frame["text"])
    if empty_text.any():
        i = int(np.flatnonzero(empty_text)[0])
        raise ManifestError(
            f"{path}: {_row(i)} (image {frame['image'].iloc[i]}) has an empty report "
            f"({int(empty_text.sum())} such rows); drop them when preparing the manifest"
        )
    for column in label_columns:
        bad, values = bad_label_rows(frame[column])
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ManifestError(
                f"{path}: {_row(i)}, column {column!r} has label {str(frame[column].iloc[i])!r}; "
                "expected 1, 0, -1 (uncertain) or empty"
            )
        frame[column] = values


def _read_csv(path: Path) -> pd.DataFrame:
    """`pd.read_csv` of a UTF-8 file; any other encoding is reported with its line and byte."""
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        where = "the header (line 1)" if line == 1 else f"{_row(line - 2)}"
        raise ManifestError(
            f"{path} is not UTF-8: byte {raw[err.start:err.start + 1]!r} in {where} cannot be decoded "
            f"({err.reason}). medalign reads manifests as UTF-8: convert it, e.g. "
            f"`iconv -f latin1 -t utf-8 {path.name} > fixed.csv`, or re-save it as 'CSV UTF-8'"
        ) from err
    return pd.read_csv(io.StringIO(text), keep_default_na=True)


def _check_ids(path: Path, frame: pd.DataFrame) -> None:
    """Report repeated ids (a warning: some datasets repeat an image per reader, e.g. REFLACX)."""
    if "id" not in frame.columns:
        return
    ids = frame["id"].astype(str)
    repeated = ids[ids.duplicated(keep=False)]
    if len(repeated):
        groups = repeated.groupby(repeated).groups
        examples = "; ".join(f"id {k!r} at rows {list(v)[:4]}" for k, v in list(groups.items())[:3])
        log.warning(
            "%s: %d id(s) occur more than once (%d rows): %s. Rows are told apart by their position, but results "
            "listed by id will merge them; make ids unique if they are different pairs",
            path, len(groups), len(repeated), examples,
        )


from medalign.data.outside_paths import OUTSIDE_PATHS_HINT, add_outside_paths_flag  # noqa: E402,F401 - re-exported


PREPARE_REPORT = "prepare_report.json"  # written by `medalign prepare` beside its manifest


def trusted_roots(manifest: str | Path) -> list[str]:
    """The raw-data folders `medalign prepare` wrote this manifest's in-place image paths into.

    Read from ``source_roots`` in the ``prepare_report.json`` beside the manifest (absolute
    folders as prepare saw them). A manifest folder moved elsewhere keeps its relative ``../``
    paths, which then lead outside these folders and are refused again.
    """
    report = Path(manifest).parent / PREPARE_REPORT
    if not report.is_file():
        return []
    try:
        roots = json.loads(report.read_text()).get("source_roots") or []
    except (OSError, ValueError):
        return []
    roots = [os.path.normpath(r) for r in roots if isinstance(r, str) and os.path.isabs(r)]
    return [r for r in roots if os.path.dirname(r) != r]  # never the filesystem root


def confine_paths(path: str | Path, frame: pd.DataFrame, allow_outside_paths: bool = False) -> None:
    """The one rule for every command: image / heatmap paths stay inside the manifest's folder.

    Absolute paths and ``..`` that lead out of the folder are refused (lexically: symlinks
    inside the folder are fine) unless `allow_outside_paths`, or unless they lead into a raw-data
    folder that `medalign prepare` recorded for this manifest (`trusted_roots`): the manifests it
    writes reference images in place and train as written.

    Raises:
        ManifestError: naming the manifest, the row, the column, the path and the flag.
    """
    if allow_outside_paths:
        return
    path = Path(path)
    root = os.path.abspath(path.parent)
    allowed = [root, *trusted_roots(path)]
    for column in ("image", "heatmap"):
        if column not in frame.columns:
            continue
        for i, rel in enumerate(frame[column]):
            if not rel:
                continue
            target = os.path.normpath(os.path.join(root, str(rel)))
            if not any(os.path.commonpath([r, target]) == r for r in allowed):
                raise ManifestError(
                    f"{path}: {_row(i)}, {column} path {rel!r} is outside the manifest's folder {root}. "
                    f"Use paths relative to the manifest, or {OUTSIDE_PATHS_HINT}"
                )


def _check_files(path: Path, frame: pd.DataFrame, show: int = 5) -> None:
    """One error for all missing files: their count and the first few."""
    root = path.parent
    missing: list[str] = []
    for column in ("image", "heatmap"):
        for i, rel in enumerate(frame[column]):
            if rel and not (root / rel).is_file():
                missing.append(f"{_row(i)}, {column} {root / rel}")
    if missing:
        listed = "\n  ".join(missing[:show])
        more = f"\n  ... and {len(missing) - show} more" if len(missing) > show else ""
        raise ManifestError(
            f"{path}: {len(missing)} referenced file(s) not found:\n  {listed}{more}\n"
            "Fix the paths, remove the rows, or use --data.on_error skip with --data.check_files false to skip them"
        )
