"""Join eye-gaze readings onto a MIMIC-CXR manifest as heatmaps (``heatmap`` column, by dicom_id).

The eye-gaze adapters (`egd_cxr`, `reflacx`) read their fixations into one table with columns
``dicom_id, reader, x, y, duration, source_width, source_height`` (source size NaN when the
dataset does not give it); this module renders one heatmap per reading with
`medalign.prepare.gaze.fixations_to_heatmap`, combines readers (mean) or keeps them as separate
rows, and returns the manifest's rows with the ``heatmap`` column filled.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from medalign.prepare.base import AdapterError, Prepared
from medalign.prepare.gaze import DEFAULT_SIGMA_FRACTION, combine_readers, fixations_to_heatmap
from medalign.data.manifest import read_manifest

FIXATION_COLUMNS = ("dicom_id", "reader", "x", "y", "duration", "source_width", "source_height")
_STANDARD = ("image", "text", "split", "heatmap", "id", "study_id", "subject_id", "view", "orig_width", "orig_height", "reader")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--manifest", required=True, help="MIMIC-CXR manifest written by `medalign prepare mimic-cxr`")
    parser.add_argument("--readers", choices=["mean", "separate"], default="mean",
                        help="several readings of one image: mean heatmap, or one row per reading")  # fmt: skip
    parser.add_argument("--sigma-fraction", type=float, default=DEFAULT_SIGMA_FRACTION, help="σ as a fraction of the longer side")
    parser.add_argument("--sigma-px", type=float, default=None, help="σ in heatmap pixels (overrides --sigma-fraction)")
    parser.add_argument("--heatmap-size", type=int, nargs=2, metavar=("HEIGHT", "WIDTH"), default=None,
                        help="heatmap resolution (default: each image's own size, which the loader requires)")  # fmt: skip
    parser.add_argument("--only-annotated", action="store_true", help="keep only the rows that received a heatmap")


def join_gaze(name: str, fixations: pd.DataFrame, args: argparse.Namespace, notes: list[str]) -> Prepared:
    """Render heatmaps under ``args.out/heatmaps/`` and attach them to the manifest's rows."""
    manifest = read_manifest(args.manifest, check_files=False)
    frame = manifest.frame.copy()
    if "id" not in frame.columns:
        raise AdapterError(f"{name}: manifest {manifest.path} has no 'id' column (the dicom_id); write it with `medalign prepare mimic-cxr`")
    frame["id"] = frame["id"].astype(str)
    frame["image"] = [str(manifest.root / p) for p in frame["image"]]
    frame["heatmap"] = ""
    label_columns = _label_columns(manifest.path, frame)
    rows_of = {dicom: list(idx) for dicom, idx in frame.groupby("id").groups.items()}

    out_dir = Path(args.out) / "heatmaps"
    out_dir.mkdir(parents=True, exist_ok=True)
    unknown = sorted(set(fixations["dicom_id"]) - set(rows_of))
    if unknown:
        notes.append(f"{len(unknown)} gazed images are not in the manifest (e.g. lateral views or dropped rows), "
                     f"first {unknown[0]}; ignored")  # fmt: skip
    extra_rows = []
    for dicom, readings in fixations[fixations["dicom_id"].isin(rows_of)].groupby("dicom_id", sort=True):
        first = rows_of[dicom][0]
        shape = tuple(args.heatmap_size) if args.heatmap_size else _image_shape(frame.at[first, "image"])
        maps = {
            reader: fixations_to_heatmap(
                r["x"], r["y"], r["duration"], shape, _source_shape(r, frame.loc[first], shape), args.sigma_px, args.sigma_fraction
            )
            for reader, r in readings.groupby("reader", sort=True)
        }
        if args.readers == "mean":
            path = out_dir / f"{dicom}.npy"
            np.save(path, combine_readers(list(maps.values())))
            frame.loc[rows_of[dicom], "heatmap"] = str(path)
        else:
            for reader, heatmap in maps.items():
                path = out_dir / f"{dicom}_{reader}.npy"
                np.save(path, heatmap)
                for row in rows_of[dicom]:
                    extra_rows.append(frame.loc[row].to_dict() | {"heatmap": str(path), "reader": str(reader)})
    if args.readers == "separate":
        gazed = frame["id"].isin({r["id"] for r in extra_rows})
        frame = pd.concat([frame[~gazed], pd.DataFrame(extra_rows)], ignore_index=True)
    dropped: Counter = Counter()
    rows_in = len(manifest.frame)
    if args.only_annotated:
        n = int((frame["heatmap"] == "").sum())
        if n:
            dropped["no gaze reading (--only-annotated)"] = n
        frame = frame[frame["heatmap"] != ""]
    if args.heatmap_size:
        notes.append("heatmaps at --heatmap-size: the loader requires each heatmap to match its image's size")
    return Prepared(name, frame.reset_index(drop=True), label_columns, rows_in, dropped, notes)


def _label_columns(path: Path, frame: pd.DataFrame) -> list[str]:
    """Label columns from the manifest's prepare_report.json, else every non-standard column."""
    report = path.parent / "prepare_report.json"
    if report.is_file():
        return list(json.loads(report.read_text()).get("label_columns", []))
    return [c for c in frame.columns if c not in _STANDARD]


def _image_shape(path: str) -> tuple[int, int]:
    """(height, width) of an image from its header."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            return img.height, img.width
    except OSError as err:
        raise AdapterError(f"cannot read the size of {path} to render its heatmap: {err}; pass --heatmap-size") from err


def _source_shape(readings: pd.DataFrame, row: pd.Series, shape: tuple[int, int]) -> tuple[int, int]:
    """The pixel frame of the fixation coordinates: the reading's own, else the manifest's original size, else `shape`."""
    width, height = readings["source_width"].iloc[0], readings["source_height"].iloc[0]
    if pd.notna(width) and pd.notna(height):
        return int(height), int(width)
    if pd.notna(row.get("orig_width", np.nan)) and pd.notna(row.get("orig_height", np.nan)):
        return int(row["orig_height"]), int(row["orig_width"])
    return shape
