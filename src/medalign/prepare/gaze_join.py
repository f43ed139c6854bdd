"""Join eye-gaze readings onto a MIMIC-CXR manifest as heatmaps (``heatmap`` column, by dicom_id).

The eye-gaze adapters (`egd_cxr`, `reflacx`) read their fixations into one table with columns
``dicom_id, reader, x, y, duration, source_width, source_height`` (source size NaN when the
dataset does not give it). This module drops fixations outside the image — off-screen
sentinels (negative coordinates) and positions past the image's width or height, in the frame
the coordinates are in — counts them in the report, and registers one heatmap per image (readers
averaged) or per reading (``readers="separate"``), rendered with
`medalign.prepare.gaze.fixations_to_heatmap` by the writer once the manifest has validated.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Callable, Literal

import numpy as np
import pandas as pd

from medalign.data.manifest import read_manifest
from medalign.prepare.base import AdapterError, Drops, Prepared
from medalign.prepare.gaze import DEFAULT_SIGMA_FRACTION, combine_readers, fixations_to_heatmap
from medalign.prepare.options import adapter

FIXATION_COLUMNS = ("dicom_id", "reader", "x", "y", "duration", "source_width", "source_height")
_STANDARD = ("image", "text", "split", "heatmap", "id", "study_id", "subject_id", "view", "orig_width", "orig_height", "reader")
Fixations = tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, int]]  # x (K,), y (K,), duration (K,), source (H, W)


def gaze_adapter(name: str, read_fixations: Callable[[Path], tuple[pd.DataFrame, list[str]]]) -> Callable[..., Prepared]:
    """The typed ``build`` of an eye-gaze adapter whose raw fixations `read_fixations(root)` reads."""

    @adapter
    def build(
        root: Path,
        *,
        manifest: str,
        readers: Literal["mean", "separate"] = "mean",
        sigma_fraction: float = DEFAULT_SIGMA_FRACTION,
        sigma_px: float | None = None,
        heatmap_size: tuple[int, int] | None = None,
        only_annotated: bool = False,
    ) -> Prepared:
        """Read the fixations under `root` and attach heatmaps to the rows of a MIMIC-CXR manifest.

        Args:
            root: the eye-gaze dataset's folder.
            manifest: MIMIC-CXR manifest written by `medalign prepare mimic-cxr`.
            readers: several readings of one image: mean heatmap, or one row per reading.
            sigma_fraction: Gaussian σ as a fraction of the heatmap's longer side.
            sigma_px: σ in heatmap pixels (overrides sigma_fraction).
            heatmap_size: heatmap (HEIGHT, WIDTH) (default: each image's own size, which the loader requires).
            only_annotated: keep only the rows that received a heatmap.
        """
        fixations, notes = read_fixations(root)
        return join_gaze(name, fixations, notes, manifest=manifest, readers=readers, sigma_fraction=sigma_fraction,
                         sigma_px=sigma_px, heatmap_size=heatmap_size, only_annotated=only_annotated)  # fmt: skip

    build.__module__ = f"medalign.prepare.{name.replace('-', '_')}"
    return build


def inside_image(x: np.ndarray, y: np.ndarray, source: tuple[int, int]) -> np.ndarray:
    """Fixations on the image: 0 ≤ x < width and 0 ≤ y < height of `source` = (height, width); (K,) bool."""
    return (x >= 0) & (y >= 0) & (x < source[1]) & (y < source[0])


def join_gaze(
    name: str,
    fixations: pd.DataFrame,
    notes: list[str],
    *,
    manifest: str | Path,
    readers: Literal["mean", "separate"] = "mean",
    sigma_fraction: float = DEFAULT_SIGMA_FRACTION,
    sigma_px: float | None = None,
    heatmap_size: tuple[int, int] | None = None,
    only_annotated: bool = False,
) -> Prepared:
    """The manifest's rows with ``heatmap`` = ``heatmaps/<dicom_id>[_<reader>].npy`` where gaze exists."""
    loaded = read_manifest(manifest, check_files=False, allow_outside_paths=True)
    frame = loaded.frame.copy()
    if "id" not in frame.columns:
        raise AdapterError(
            f"{name}: manifest {loaded.path} has no 'id' column (the dicom_id); write it with `medalign prepare mimic-cxr`"
        )
    frame["id"] = frame["id"].astype(str)
    frame["image"] = [str(loaded.root / p) for p in frame["image"]]
    frame["heatmap"] = ""
    label_columns = _label_columns(loaded.path, frame)
    rows_of = {dicom: list(idx) for dicom, idx in frame.groupby("id").groups.items()}
    unknown = sorted(set(fixations["dicom_id"]) - set(rows_of))
    if unknown:
        notes.append(f"{len(unknown)} gazed images are not in the manifest (e.g. lateral views or dropped rows), "
                     f"first {unknown[0]}; ignored")  # fmt: skip

    heatmaps: dict[str, Callable[[], np.ndarray]] = {}
    render = partial(_render, sigma_px=sigma_px, sigma_fraction=sigma_fraction)
    stats = {"fixations": 0, "fixations_outside_image": 0, "readings": 0, "readings_without_fixation_on_image": 0}
    extra_rows = []
    for dicom, readings in fixations[fixations["dicom_id"].isin(rows_of)].groupby("dicom_id", sort=True):
        first = rows_of[dicom][0]
        shape = tuple(heatmap_size) if heatmap_size else _image_shape(frame.at[first, "image"])
        kept: dict[str, Fixations] = {}
        for reader, r in readings.groupby("reader", sort=True):
            x, y, duration = (r[c].to_numpy(dtype=float) for c in ("x", "y", "duration"))
            source = _source_shape(r, frame.loc[first], shape)
            inside = inside_image(x, y, source)
            stats["fixations"] += len(x)
            stats["fixations_outside_image"] += int((~inside).sum())
            stats["readings"] += 1
            if not (inside & (duration > 0)).any():
                stats["readings_without_fixation_on_image"] += 1
                continue
            kept[str(reader)] = (x[inside], y[inside], duration[inside], source)
        if not kept:
            continue
        if readers == "mean":
            rel = f"heatmaps/{dicom}.npy"
            heatmaps[rel] = partial(_render_mean, list(kept.values()), shape, render)
            frame.loc[rows_of[dicom], "heatmap"] = rel
        else:
            for reader, fix in kept.items():
                rel = f"heatmaps/{dicom}_{reader}.npy"
                heatmaps[rel] = partial(render, fix, shape)
                extra_rows += [frame.loc[row].to_dict() | {"heatmap": rel, "reader": reader} for row in rows_of[dicom]]
    if readers == "separate":
        gazed = frame["id"].isin({r["id"] for r in extra_rows})
        frame = pd.concat([frame[~gazed], pd.DataFrame(extra_rows)], ignore_index=True)
    if stats["fixations_outside_image"]:
        notes.append(f"{stats['fixations_outside_image']} of {stats['fixations']} fixations outside the image "
                     "(off-screen or past its bounds) dropped before rendering")  # fmt: skip
    dropped = Drops()
    rows_in = len(loaded.frame)
    if only_annotated:
        n = int((frame["heatmap"] == "").sum())
        if n:
            dropped["no gaze reading (--only-annotated)"] = n
        frame = frame[frame["heatmap"] != ""]
    if heatmap_size:
        notes.append("heatmaps at --heatmap-size: the loader requires each heatmap to match its image's size")
    return Prepared(name, frame.reset_index(drop=True), label_columns, rows_in, dropped, notes, {"gaze": stats}, heatmaps)


def _render(fix: Fixations, shape: tuple[int, int], sigma_px: float | None, sigma_fraction: float) -> np.ndarray:
    x, y, duration, source = fix
    return fixations_to_heatmap(x, y, duration, shape, source, sigma_px, sigma_fraction)


def _render_mean(fixes: list[Fixations], shape: tuple[int, int], render: Callable) -> np.ndarray:
    return combine_readers([render(f, shape) for f in fixes])


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
