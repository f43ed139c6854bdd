"""Writing medalign shards with litdata's `optimize`: manifest → one litdata dataset per split.

Layout and reading: `medalign.data.shards`. Each item holds what rebuilds the manifest's sample:
the image file's bytes as stored (PNG / JPEG / DICOM, 8 or 16 bit), the heatmap file's bytes
(empty without one), the report, the raw label values (1 / 0 / -1 / NaN, policies apply at
read time) and the manifest row number.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from medalign.data.manifest import MANIFEST_COLUMNS, SPLITS, Manifest, ManifestError, read_manifest
from medalign.data.shards import FORMAT, INDEX_FILE, ROWS_FILE, VERSION
from medalign.run_folder import file_sha256

log = logging.getLogger(__name__)

ITEM_KEYS = ("row", "image", "heatmap", "text", "labels")


def label_columns_of(frame: pd.DataFrame) -> list[str]:
    """Non-standard columns whose every value is 1, 0, -1 or empty: the manifest's label columns."""
    found = []
    for column in frame.columns:
        if column in MANIFEST_COLUMNS:
            continue
        values = pd.to_numeric(frame[column], errors="coerce")
        if (values.notna() | frame[column].isna()).all() and values.dropna().isin([1, 0, -1]).all():
            found.append(column)
    return found


def shard_item(task: dict[str, Any]) -> dict[str, Any]:
    """One litdata item from one manifest row (runs in litdata's worker processes)."""
    where = f"{task['manifest']} row {task['row']}"
    try:
        image = Path(task["image"]).read_bytes()
        heatmap = Path(task["heatmap"]).read_bytes() if task["heatmap"] else b""
    except OSError as err:
        raise OSError(f"{where}: cannot read {err.filename}: {err.strerror}") from err
    labels = np.asarray(task["labels"], dtype=np.float32)  # (C,) raw values, NaN = empty
    return {"row": int(task["row"]), "image": image, "heatmap": heatmap, "text": task["text"], "labels": labels}


def write_shards(
    manifest: str | Path,
    out: str | Path,
    label_columns: Sequence[str] | None = None,
    num_workers: int = 1,
    chunk_bytes: str = "64MB",
    overwrite: bool = False,
    allow_outside_paths: bool = True,
) -> dict[str, Any]:
    """Write the shards of every split of `manifest` into the folder `out`, atomically.

    Everything is written into a temporary sibling folder that replaces `out` only when all
    splits are done, so an interrupted run leaves no half-written shards behind.

    Args:
        manifest: the manifest (CSV or Parquet).
        out: the shard folder to create.
        label_columns: label columns to keep; default every column with only 1 / 0 / -1 / empty.
        num_workers: litdata worker processes.
        chunk_bytes: target chunk size (litdata's ``chunk_bytes``).
        overwrite: replace an existing `out`.
        allow_outside_paths: accept absolute image paths and ``../`` out of the manifest's folder.

    Returns:
        The index written to ``out/medalign_shards.json``.

    Raises:
        FileExistsError: `out` exists and `overwrite` is off.
        ManifestError: a bad manifest or a missing file (names the row).
    """
    from litdata import __version__ as litdata_version
    from litdata import optimize

    manifest, out = Path(manifest), Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} already exists; pass --overwrite to replace it, or choose another --out")
    if num_workers < 1:
        raise ValueError(f"--num-workers must be ≥ 1, got {num_workers}")
    if label_columns is None:
        label_columns = label_columns_of(read_manifest(manifest, check_files=False).frame)
    data = read_manifest(manifest, list(label_columns), check_files=True, allow_outside_paths=allow_outside_paths)
    if not len(data):
        raise ManifestError(f"{manifest} has no rows")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    splits: dict[str, dict[str, int]] = {}
    try:
        for split in SPLITS:
            rows = data.split(split)
            if not len(rows):
                continue
            log.info("sharding %d %s rows of %s", len(rows), split, manifest)
            optimize(
                fn=shard_item,
                inputs=_tasks(rows),
                output_dir=str(tmp / split),
                chunk_bytes=chunk_bytes,
                num_workers=min(num_workers, len(rows)),
                mode="overwrite",
                start_method="fork",  # workers inherit the imports (spawn re-imports torch: seconds per split)
            )
            table = _row_table(rows, tmp / split)
            table.to_json(tmp / split / ROWS_FILE, orient="records", lines=True, force_ascii=False)
            splits[split] = {"rows": len(rows), "heatmaps": int(rows.frame["heatmap"].astype(bool).sum())}
        tokenizer = manifest.parent / "tokenizer"
        if tokenizer.is_dir():
            shutil.copytree(tokenizer, tmp / "tokenizer")
        index = {
            "format": FORMAT,
            "version": VERSION,
            "manifest": str(manifest.resolve()),
            "manifest_sha256": file_sha256(manifest),
            "label_columns": list(label_columns),
            "item_keys": list(ITEM_KEYS),
            "row_columns": list(table.columns),
            "splits": splits,
            "litdata": litdata_version,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        (tmp / INDEX_FILE).write_text(json.dumps(index, indent=2) + "\n")
        _replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return index


def _tasks(rows: Manifest) -> list[dict[str, Any]]:
    frame, root = rows.frame, rows.root
    labels = rows.frame[rows.label_columns].to_numpy(dtype=np.float32, na_value=np.nan) if rows.label_columns else None
    return [
        {
            "manifest": str(rows.path),
            "row": int(row),
            "image": str(root / frame["image"].iat[i]),
            "heatmap": str(root / frame["heatmap"].iat[i]) if frame["heatmap"].iat[i] else "",
            "text": str(frame["text"].iat[i]),
            "labels": [] if labels is None else labels[i].tolist(),
        }
        for i, row in enumerate(frame.index)
    ]


def _row_table(rows: Manifest, written: Path) -> pd.DataFrame:
    """The split's manifest columns with each row's item index, read back from what litdata wrote."""
    from litdata import StreamingDataset

    stream = StreamingDataset(str(written))
    if len(stream) != len(rows):
        raise RuntimeError(f"litdata wrote {len(stream)} items to {written} for {len(rows)} rows")
    where = {int(stream[i]["row"]): i for i in range(len(stream))}  # worker processes may reorder items
    keep = [c for c in (*MANIFEST_COLUMNS, *rows.label_columns) if c in rows.frame.columns]
    table = rows.frame[keep].copy()
    for column in ("id", "study_id", "subject_id"):
        if column in table.columns:
            table[column] = table[column].astype(str)
    table.insert(0, "row", table.index.astype(np.int64))
    table["shard_index"] = [where[int(r)] for r in table.index]
    return table.reset_index(drop=True)


def _replace(tmp: Path, out: Path) -> None:
    """Move the finished `tmp` onto `out` (the old `out`, if any, is removed only afterwards)."""
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)
