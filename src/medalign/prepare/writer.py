"""Write a `Prepared` table as the standard manifest plus ``prepare_report.json``, atomically.

Order: clean and check the rows in memory (text, images, splits, labels — errors name the raw
file, row and column), then render heatmaps and write manifest and report into a temporary
sibling folder, re-read the manifest as training will, and only then move the files into the
output folder. A failed run leaves the output folder exactly as it was; a successful rerun
replaces the previous manifest, report and heatmaps.

Images stay where they are (paths relative to the manifest's folder) unless ``copy`` is set;
``resize`` writes a cache of PNGs whose short side is ``resize`` pixels (kept across runs).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from medalign.data.manifest import PREPARE_REPORT, read_manifest
from medalign.prepare.base import MANIFEST_COLUMNS, SOURCE_COLUMNS, AdapterError, Drops, Prepared, clean_text, drop, where
from medalign.prepare.resize import image_size, resize_heatmap, resize_image
from medalign.prepare.validate import validate_frame
from medalign.run_folder import atomic_path

MissingPolicy = Literal["error", "drop"]
REPORT = PREPARE_REPORT
HEATMAPS = "heatmaps"


def write_manifest(
    prepared: Prepared,
    out: str | Path,
    root: str | Path | None = None,
    copy: bool = False,
    resize: int | None = None,
    missing: MissingPolicy = "error",
    check_images: bool = True,
    options: dict[str, Any] | None = None,
    name: str = "manifest.csv",
) -> Path:
    """Validate, then write ``out/<name>``, ``out/prepare_report.json`` and heatmaps; return the manifest path.

    Args:
        prepared: an adapter's output (absolute image paths).
        out: output folder (created; an earlier manifest, report and heatmaps in it are replaced).
        root: the raw dataset folder; copies and resized images keep their path below it.
        copy: copy images under ``out/images/`` instead of referencing them in place.
        resize: write PNGs with this short side under ``out/images_<resize>/`` and use those.
        missing: ``error`` on the first missing image (naming it), or ``drop`` (counted).
        check_images: check that images exist; ``False`` is the metadata-only mode (counts and
            splits before a download finishes), marked in the report.
        options: the options used, recorded in the report.
        name: manifest file name.

    Raises:
        AdapterError: a missing image under ``missing="error"``, a bad split or label (naming the
            raw file, row and column), or no row left. Nothing is written to `out` then.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise AdapterError(f"{prepared.dataset}: --out {out} exists and is not a folder")
    frame = prepared.frame.copy().reset_index(drop=True)
    dropped = prepared.dropped
    frame["text"] = [clean_text(t) for t in frame["text"]]
    frame = drop(frame, frame["text"] == "", "empty report text", dropped, value="text")
    if check_images:
        exists = np.array([os.path.isfile(p) for p in frame["image"]], dtype=bool)
        if not exists.all() and missing == "error":
            i = int(np.flatnonzero(~exists)[0])
            raise AdapterError(
                f"{prepared.dataset}: image {frame['image'].iloc[i]} not found ({where(frame, i)}; "
                f"{int((~exists).sum())} of {len(frame)} missing); check --root, pass --missing drop to drop "
                "and count them, or --check-images false for a metadata-only manifest"
            )
        frame = drop(frame, ~exists, "image file missing", dropped, value="image")
    if frame.empty:
        raise AdapterError(f"{prepared.dataset}: no rows left after dropping {dict(dropped)}")
    validate_frame(frame, prepared.label_columns, prepared.dataset)

    if copy or resize:
        if root is None:
            raise ValueError("copy/resize needs the raw dataset root")
        frame["image"] = _materialise(list(frame["image"]), Path(root), out, resize)
    sources = [] if copy or resize else _source_roots(frame, out, root, set(prepared.heatmaps))
    frame = _standard_columns(frame, prepared, out)
    report = _report(prepared, frame, dropped, check_images, options)
    report["source_roots"] = sources  # in-place images: the folders training may read (`trusted_roots`)

    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.partial-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        _render_heatmaps(prepared, frame, staging, out if resize else None)
        frame.to_csv(staging / name, index=False)
        (staging / REPORT).write_text(json.dumps(report, indent=2, default=str))
        read_manifest(staging / name, prepared.label_columns, check_files=False, allow_outside_paths=True)  # what training will read
        _commit(staging, out, name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out / name


def _standard_columns(frame: pd.DataFrame, prepared: Prepared, out: Path) -> pd.DataFrame:
    """Relative paths, the standard columns first, provenance columns removed."""
    frame["image"] = [_relative(p, out) for p in frame["image"]]
    if "heatmap" not in frame.columns:
        frame["heatmap"] = ""
    frame["heatmap"] = [
        (p if p in prepared.heatmaps else _relative(p, out)) if isinstance(p, str) and p else "" for p in frame["heatmap"]
    ]
    for column in ("id", "study_id", "subject_id"):
        if column not in frame.columns:
            frame[column] = ""
    hidden = {*MANIFEST_COLUMNS, *prepared.label_columns, *SOURCE_COLUMNS}
    extras = [c for c in frame.columns if c not in hidden]
    return frame[[*MANIFEST_COLUMNS, *prepared.label_columns, *extras]]


def _report(prepared: Prepared, frame: pd.DataFrame, dropped, check_images: bool, options: dict | None) -> dict:
    notes = list(prepared.notes)
    if not check_images:
        notes.insert(0, "METADATA ONLY (--check-images false): image files were not checked; train only once they exist")
    report = {
        "dataset": prepared.dataset,
        "metadata_only": not check_images,
        "rows_in": prepared.rows_in,
        "rows_out": len(frame),
        "dropped": dict(sorted(dropped.items())),
        "dropped_examples": dict(sorted(dropped.examples.items())) if isinstance(dropped, Drops) else {},
        "splits": {k: int(v) for k, v in frame["split"].value_counts().sort_index().items()},
        "label_columns": prepared.label_columns,
        "positives": {c: int((frame[c] == 1).sum()) for c in prepared.label_columns},
        "with_heatmap": int((frame["heatmap"] != "").sum()),
        "notes": notes,
        **prepared.report,
        "options": options or {},
    }
    return report


def _render_heatmaps(prepared: Prepared, frame: pd.DataFrame, staging: Path, resized_in: Path | None = None) -> None:
    """Render the heatmaps the manifest references into ``staging`` (paths relative to the output folder).

    With `resized_in` (the output folder of a ``--resize`` run) a heatmap rendered in the original
    image's frame is resampled onto its resized image (`medalign.prepare.resize.resize_heatmap`).
    """
    used = set(frame["heatmap"]) & set(prepared.heatmaps)
    images = dict(zip(frame["heatmap"], frame["image"]))
    for rel in sorted(used):
        path = staging / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        heatmap = prepared.heatmaps[rel]()
        if resized_in is not None:
            shape = image_size(resized_in / images[rel])
            if heatmap.shape[-2:] != shape:
                heatmap = resize_heatmap(heatmap, shape)
        np.save(path, heatmap)


def _commit(staging: Path, out: Path, name: str) -> None:
    """Move the staged files into `out`: heatmaps, then the report, the manifest last (each an atomic rename)."""
    if not out.exists():
        os.rename(staging, out)
        return
    old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
    old.mkdir()
    try:
        if (out / HEATMAPS).exists():  # an earlier run's heatmaps must not outlive its manifest
            os.replace(out / HEATMAPS, old / HEATMAPS)
        staged = sorted(p.name for p in staging.iterdir())
        for entry in sorted(staged, key=lambda n: (n == name, n == REPORT)):
            os.replace(staging / entry, out / entry)
    finally:
        shutil.rmtree(old, ignore_errors=True)


def summary(report_path: str | Path) -> str:
    """A few human-readable lines from a ``prepare_report.json``."""
    report = json.loads(Path(report_path).read_text())
    lines = [f"{report['dataset']}: {report['rows_out']} rows written of {report['rows_in']} read; splits {report['splits']}"]
    if report.get("metadata_only"):
        lines.append("  METADATA ONLY: image files were not checked (--check-images false)")
    examples = report.get("dropped_examples", {})
    for reason, count in report["dropped"].items():
        first = "; ".join(", ".join(f"{v}" for v in e.values()) for e in examples.get(reason, [])[:2])
        lines.append(f"  dropped {count}: {reason}" + (f" (e.g. {first})" if first else ""))
    lines += [f"  note: {n}" for n in report["notes"]]
    return "\n".join(lines)


def _source_roots(frame: pd.DataFrame, out: Path, root: str | Path | None, rendered: set[str]) -> list[str]:
    """Absolute folders outside `out` that hold the manifest's in-place images and heatmaps.

    The raw dataset root when every such file is under it, else the deepest folder they share
    (never ``/``: a manifest spread over the whole disk needs ``allow_outside_paths``).
    """
    out_abs = os.path.abspath(out)
    paths = [os.path.abspath(p) for column in ("image", "heatmap") if column in frame.columns
             for p in frame[column] if isinstance(p, str) and p and p not in rendered]  # rendered: inside `out`
    outside = [p for p in paths if os.path.commonpath([out_abs, p]) != out_abs]
    if not outside:
        return []
    base = os.path.abspath(root) if root is not None else None
    if base is None or any(os.path.commonpath([base, p]) != base for p in outside):
        base = os.path.commonpath(outside) if len(outside) > 1 else os.path.dirname(outside[0])
    return [] if base == os.path.dirname(base) else [base]  # the filesystem root is never trusted


def _relative(path: str, out: Path) -> str:
    return Path(os.path.relpath(path, out)).as_posix()


def _materialise(paths: list[str], root: Path, out: Path, resize: int | None) -> list[str]:
    """Copy or resize each image under `out`, keeping its path below `root`; skip existing targets."""
    folder = out / (f"images_{resize}" if resize else "images")

    def target(path: str) -> Path:
        try:
            rel = Path(path).resolve().relative_to(root.resolve())
        except ValueError:
            rel = Path(Path(path).name)
        return folder / (rel.with_suffix(".png") if resize else rel)

    def one(path: str) -> str:
        dest = target(path)
        if resize and not dest.is_file():
            resize_image(path, dest, resize)  # medalign.prepare.resize: 16-bit and sBIT kept, atomic
        elif not dest.is_file():
            with atomic_path(dest) as tmp:
                shutil.copyfile(path, tmp)
        return str(dest)

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return list(pool.map(one, paths))
