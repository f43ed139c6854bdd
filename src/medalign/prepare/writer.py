"""Write a `Prepared` table as the standard manifest plus ``prepare_report.json``.

Images stay where they are (paths relative to the manifest's folder) unless ``copy`` is set;
``resize`` writes a cache of PNGs whose short side is ``resize`` pixels.
"""

from __future__ import annotations

import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import numpy as np

from medalign.prepare.base import MANIFEST_COLUMNS, AdapterError, Prepared, clean_text, drop
from medalign.data.manifest import read_manifest

MissingPolicy = Literal["error", "drop"]


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
    """Write ``out/<name>`` and ``out/prepare_report.json``; return the manifest path.

    Args:
        prepared: an adapter's output (absolute image paths).
        out: output folder (created).
        root: the raw dataset folder; copies and resized images keep their path below it.
        copy: copy images under ``out/images/`` instead of referencing them in place.
        resize: write PNGs with this short side under ``out/images_<resize>/`` and use those.
        missing: ``error`` on the first missing image (naming it), or ``drop`` (counted).
        check_images: check that images exist (off only for metadata-only dry runs).
        options: the options used, recorded in the report.
        name: manifest file name.

    Raises:
        AdapterError: a missing image under ``missing="error"``, or no row left.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    frame = prepared.frame.copy()
    dropped = prepared.dropped
    frame["text"] = [clean_text(t) for t in frame["text"]]
    frame = drop(frame, frame["text"] == "", "empty report text", dropped)
    if check_images:
        exists = np.array([os.path.isfile(p) for p in frame["image"]], dtype=bool)
        if not exists.all() and missing == "error":
            first = frame["image"].iloc[int(np.flatnonzero(~exists)[0])]
            raise AdapterError(
                f"{prepared.dataset}: image {first} not found ({int((~exists).sum())} of {len(frame)} missing); "
                "check --root, or pass --missing drop to drop and count them"
            )
        frame = drop(frame, ~exists, "image file missing", dropped)
    if frame.empty:
        raise AdapterError(f"{prepared.dataset}: no rows left after dropping {dict(dropped)}")

    if copy or resize:
        if root is None:
            raise ValueError("copy/resize needs the raw dataset root")
        frame["image"] = _materialise(list(frame["image"]), Path(root), out, resize)
    frame["image"] = [_relative(p, out) for p in frame["image"]]
    if "heatmap" not in frame.columns:
        frame["heatmap"] = ""
    frame["heatmap"] = [_relative(p, out) if isinstance(p, str) and p else "" for p in frame["heatmap"]]
    for column in ("id", "study_id", "subject_id"):
        if column not in frame.columns:
            frame[column] = ""
    extras = [c for c in frame.columns if c not in (*MANIFEST_COLUMNS, *prepared.label_columns)]
    frame = frame[[*MANIFEST_COLUMNS, *prepared.label_columns, *extras]]

    path = out / name
    frame.to_csv(path, index=False)
    report = {
        "dataset": prepared.dataset,
        "rows_in": prepared.rows_in,
        "rows_out": len(frame),
        "dropped": dict(sorted(dropped.items())),
        "splits": {k: int(v) for k, v in frame["split"].value_counts().sort_index().items()},
        "label_columns": prepared.label_columns,
        "positives": {c: int((frame[c] == 1).sum()) for c in prepared.label_columns},
        "with_heatmap": int((frame["heatmap"] != "").sum()),
        "notes": prepared.notes,
        "options": options or {},
    }
    (out / "prepare_report.json").write_text(json.dumps(report, indent=2, default=str))
    read_manifest(path, prepared.label_columns, check_files=check_images)  # what training will read
    return path


def summary(report_path: str | Path) -> str:
    """A few human-readable lines from a ``prepare_report.json``."""
    report = json.loads(Path(report_path).read_text())
    lines = [f"{report['dataset']}: {report['rows_out']} rows written of {report['rows_in']} read; splits {report['splits']}"]
    for reason, count in report["dropped"].items():
        lines.append(f"  dropped {count}: {reason}")
    lines += [f"  note: {n}" for n in report["notes"]]
    return "\n".join(lines)


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
        if not dest.is_file():
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(dest.name + ".tmp")
            if resize:
                _resized(Path(path), resize).save(tmp, format="PNG")
            else:
                shutil.copyfile(path, tmp)
            os.replace(tmp, dest)
        return str(dest)

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return list(pool.map(one, paths))


def _resized(path: Path, short_side: int):
    """The image at `path` with its short side scaled to `short_side` (never upscaled)."""
    from PIL import Image

    if path.suffix.lower() == ".dcm":
        from medalign.data.transforms import load_image

        img = Image.fromarray((load_image(path)[0].numpy() * 255).round().astype(np.uint8))
    else:
        img = Image.open(path)
        img.load()
        if img.mode not in ("L", "RGB", "I;16"):
            img = img.convert("RGB")
    scale = short_side / min(img.size)
    if scale < 1:
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.BICUBIC)
    return img
