"""Reading a dataset's published tables: locate, read, check columns, keep each row's origin.

Every table read here carries two hidden columns, ``_file`` (the raw file) and ``_row`` (the
1-based data row; the file's line is ``_row + 1``), through merges and drops to the writer, so an
error about a manifest row names the raw file, row and column it came from.
"""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from medalign.prepare.errors import AdapterError

SOURCE_COLUMNS = ("_file", "_row")
TABLE_SUFFIXES = ("", ".gz", ".zip")


def find_file(root: Path, names: Sequence[str], dataset: str, version: str) -> Path:
    """The first of `names` (relative to `root`) that exists, accepting a ``.gz`` or ``.zip`` twin of each.

    Raises:
        AdapterError: none exists; the message lists what was looked for and the expected version.
    """
    for name in names:
        for suffix in TABLE_SUFFIXES:
            if (root / f"{name}{suffix}").is_file():
                return root / f"{name}{suffix}"
    looked = ", ".join(f"{n}[.gz|.zip]" for n in names)
    raise AdapterError(f"{dataset}: none of {looked} found under {root}; expected the {version} layout")


def read_text(path: Path) -> str:
    """The text of a plain, ``.gz`` or one-member ``.zip`` file."""
    if path.suffix == ".gz":
        with gzip.open(path, "rt") as f:
            return f.read()
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as archive:
            return archive.read(archive.namelist()[0]).decode()
    return path.read_text()


def read_table(path: Path, dataset: str, version: str, required: Iterable[str], **kwargs) -> pd.DataFrame:
    """Read a CSV (plain, ``.gz`` or one-member ``.zip``), check `required` columns, add ``_file``/``_row``.

    Raises:
        AdapterError: the file is unreadable or lacks a required column (the message lists the
            file's real header).
    """
    try:
        frame = pd.read_csv(path, **kwargs)
    except Exception as err:  # pandas raises many types for malformed files
        raise AdapterError(f"{dataset}: cannot read {path}: {err}") from err
    require_columns(frame, required, path, dataset, version)
    frame["_file"] = str(path)
    frame["_row"] = np.arange(1, len(frame) + 1)
    return frame


def require_columns(frame: pd.DataFrame, required: Iterable[str], path: Path | str, dataset: str, version: str) -> None:
    """Raise `AdapterError` naming the missing columns, the file, its real header and the expected version."""
    missing = [c for c in required if c not in frame.columns]
    if missing:
        found = [c for c in frame.columns if c not in SOURCE_COLUMNS]
        raise AdapterError(f"{dataset}: {path} lacks column(s) {missing} (found {found}); expected the {version} layout")


def where(frame: pd.DataFrame, position: int) -> str:
    """"<file> row N (line N+1)" for the row at `position`; the file alone when it has no rows (XML); else "row N"."""
    if "_file" in frame.columns and pd.notna(frame["_file"].iloc[position]):
        row = frame["_row"].iloc[position] if "_row" in frame.columns else np.nan
        file = frame["_file"].iloc[position]
        return f"{file} row {int(row)} (line {int(row) + 1})" if pd.notna(row) else str(file)
    return f"row {position + 1}"


def source_of(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """The ``_file``/``_row`` columns of `frame` (to carry into an adapter's output), or {} if absent."""
    return {c: frame[c].to_numpy() for c in SOURCE_COLUMNS if c in frame.columns}


def strict_labels(
    frame: pd.DataFrame, columns: Sequence[str], dataset: str, allowed: Sequence[float] = (-1.0, 0.0, 1.0)
) -> pd.DataFrame:
    """`columns` of `frame` as floats, blank = NaN; any other non-number or a value outside `allowed` is an error.

    Raises:
        AdapterError: names the raw file, row, column and value, and the values allowed.
    """
    out = {}
    for column in columns:
        raw = frame[column]
        if pd.api.types.is_numeric_dtype(raw):  # parsed as numbers: only the range can be wrong
            blank, values = raw.isna(), raw.astype(float)
        else:
            blank = raw.isna() | raw.astype(str).str.strip().eq("")
            values = pd.to_numeric(raw.where(~blank), errors="coerce")
        bad = (values.isna() & ~blank).to_numpy()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise AdapterError(
                f"{dataset}: {where(frame, i)}, column {column!r}: label {str(raw.iloc[i])!r} is not a number "
                f"({int(bad.sum())} such cells); expected one of {list(allowed)} or blank"
            )
        out_of_range = (values.notna() & ~values.isin(list(allowed))).to_numpy()
        if out_of_range.any():
            i = int(np.flatnonzero(out_of_range)[0])
            raise AdapterError(
                f"{dataset}: {where(frame, i)}, column {column!r}: label {str(raw.iloc[i])!r} is out of range "
                f"({int(out_of_range.sum())} such cells); expected one of {list(allowed)} or blank"
            )
        out[column] = values.astype(float).to_numpy()
    return pd.DataFrame(out, index=frame.index)


class Layout:
    """One dataset's published layout: its name and version, for finding and reading its tables.

    Example:
        >>> LAYOUT = Layout("chexpert", "CheXpert-v1.0 (train.csv, valid.csv)")
        >>> train = LAYOUT.read(root, "train.csv", required=["Path"])
    """

    def __init__(self, dataset: str, version: str) -> None:
        self.dataset, self.version = dataset, version

    def find(self, root: Path, *names: str) -> Path:
        """The first of `names` under `root` (or a ``.gz``/``.zip`` twin); `AdapterError` if none."""
        return find_file(root, names, self.dataset, self.version)

    def read(self, root: Path, *names: str, required: Iterable[str] = (), **kwargs) -> pd.DataFrame:
        """Find the first of `names` under `root` and read it (see `read_table`)."""
        return self.read_path(self.find(root, *names), required, **kwargs)

    def read_path(self, path: Path, required: Iterable[str] = (), **kwargs) -> pd.DataFrame:
        """Read the table at `path` (see `read_table`)."""
        return read_table(path, self.dataset, self.version, required, **kwargs)

    def error(self, message: str) -> AdapterError:
        """An `AdapterError` "<dataset>: <message>; expected the <version> layout"."""
        return AdapterError(f"{self.dataset}: {message}; expected the {self.version} layout")

    def find_or_none(self, root: Path, *names: str) -> Path | None:
        """Like `find`, but None when none exists."""
        try:
            return self.find(root, *names)
        except AdapterError:
            return None
