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
from medalign.progress import Progress
from medalign.run_folder import file_sha256

log = logging.getLogger(__name__)

ITEM_KEYS = ("row", "image", "heatmap", "text", "labels")
RESUME_FILE = "medalign_resume.json"  # in a staging folder: the settings a rerun must match to resume
DONE_FILE = ".medalign_split_done"  # in a staged split: finished, rows table written


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
    allow_outside_paths: bool = False,
) -> dict[str, Any]:
    """Write the shards of every split of `manifest` into the folder `out`, atomically.

    Everything is written into a staging sibling ``.<out>.partial-<pid>`` that replaces `out`
    only when all splits are done, so an interrupted run leaves no half-written shards behind.
    litdata checkpoints the staging after every chunk: a rerun of the same command after a
    kill adopts the staging of the dead process and resumes from its last finished chunk
    (finished splits are kept whole); stagings of dead runs with other settings are removed.

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
        label_columns = label_columns_of(read_manifest(manifest, check_files=False, allow_outside_paths=allow_outside_paths).frame)
    data = read_manifest(manifest, list(label_columns), check_files=True, allow_outside_paths=allow_outside_paths)
    if not len(data):
        raise ManifestError(f"{manifest} has no rows")
    out.parent.mkdir(parents=True, exist_ok=True)
    key = {"manifest_sha256": file_sha256(manifest), "label_columns": list(label_columns), "chunk_bytes": str(chunk_bytes),
           "num_workers": num_workers, "litdata": litdata_version, "version": VERSION}
    tmp = _staging(out, key)
    splits: dict[str, dict[str, int]] = {}
    bar = Progress(len(data), f"sharding {manifest.name}", unit="row")  # litdata's own bar shows each split's chunks
    try:
        for split in SPLITS:
            rows = data.split(split)
            if not len(rows):
                continue
            if (tmp / split / DONE_FILE).is_file():
                log.info("%s split already sharded in %s (resumed)", split, tmp)
                table = pd.read_json(tmp / split / ROWS_FILE, orient="records", lines=True, dtype=False)
            else:
                log.info("sharding %d %s rows of %s", len(rows), split, manifest)
                optimize(
                    fn=shard_item,
                    inputs=_tasks(rows),
                    output_dir=str(tmp / split),
                    chunk_bytes=chunk_bytes,
                    num_workers=min(num_workers, len(rows)),
                    use_checkpoint=True,  # a checkpoint after every chunk: a rerun resumes from it
                    start_method="fork",  # workers inherit the imports (spawn re-imports torch: seconds per split)
                )
                table = _row_table(rows, tmp / split)
                table.to_json(tmp / split / ROWS_FILE, orient="records", lines=True, force_ascii=False)
                (tmp / split / DONE_FILE).write_text("done\n")
            splits[split] = {"rows": len(rows), "heatmaps": int(rows.frame["heatmap"].astype(bool).sum())}
            bar.update(len(rows))
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
        for split in splits:
            (tmp / split / DONE_FILE).unlink()
            shutil.rmtree(tmp / split / ".checkpoints", ignore_errors=True)
        (tmp / RESUME_FILE).unlink()
        (tmp / INDEX_FILE).write_text(json.dumps(index, indent=2) + "\n")
        _replace(tmp, out)
    except BaseException:
        log.warning("sharding %s stopped; the finished chunks are kept in %s: run the same command again to resume "
                    "(or delete that folder)", manifest, tmp)
        raise
    finally:
        bar.close()
    return index


def _alive(pid: int) -> bool:
    """Whether process `pid` exists (a zombie or another user's process counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _staging(out: Path, key: dict[str, Any]) -> Path:
    """This run's staging folder: a dead run's with the same `key` (to resume), else a new one.

    Stagings ``.<out>.partial-<pid>`` of dead processes with another key are removed; one of a
    live process means another `medalign shard` writes `out` now.

    Raises:
        FileExistsError: another live process is writing `out`.
    """
    mine = out.parent / f".{out.name}.partial-{os.getpid()}"
    adopted = mine if mine.is_dir() and _resume_key(mine) == key else None
    for folder in sorted(out.parent.glob(f".{out.name}.partial-*")):
        pid = folder.name.rsplit("-", 1)[-1]
        if folder == mine or not pid.isdigit():
            continue
        if _alive(int(pid)):
            raise FileExistsError(f"another `medalign shard` (pid {pid}) is writing {out} (staging {folder}); wait for it "
                                  "to finish or stop it")
        if adopted is None and _resume_key(folder) == key:
            folder.rename(mine)
            adopted = mine
            log.info("resuming the shards of a stopped run (pid %s) from %s", pid, mine)
        else:
            log.info("removing %s: the staging of a stopped run with other settings", folder)
            shutil.rmtree(folder, ignore_errors=True)
    if adopted is None:
        shutil.rmtree(mine, ignore_errors=True)
        mine.mkdir()
        (mine / RESUME_FILE).write_text(json.dumps(key, indent=2) + "\n")
    return mine


def _resume_key(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / RESUME_FILE).read_text())
    except (OSError, ValueError):
        return None


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
