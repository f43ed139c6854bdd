"""REFLACX eye-gaze dataset (PhysioNet REFLACX 1.0.0) → heatmaps joined onto a MIMIC manifest.

Published layout::

    main_data/metadata_phase_1.csv, _2.csv, _3.csv
        id, split, eye_tracking_data_discarded, image, dicom_id, subject_id,
        image_size_x, image_size_y, <anomaly labels> ...
    main_data/<id>/fixations.csv
        timestamp_start_fixation, timestamp_end_fixation, average_x_position, average_y_position, ...

Each ``id`` is one reading of one image (several radiologists read some images). Positions are
in the original image's pixels (``image_size_x`` × ``image_size_y``); the duration is
``timestamp_end_fixation − timestamp_start_fixation``. Readings marked
``eye_tracking_data_discarded`` are skipped. ``x_position`` / ``y_position`` are accepted for
the position columns too.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from medalign.prepare import gaze_join
from medalign.prepare.base import AdapterError, Prepared, read_table

NAME = "reflacx"
VERSION = "REFLACX 1.0.0 (main_data/metadata_phase_*.csv, main_data/<id>/fixations.csv)"
METADATA_COLUMNS = ["id", "dicom_id", "image_size_x", "image_size_y"]
TIME_COLUMNS = ["timestamp_start_fixation", "timestamp_end_fixation"]
POSITION_COLUMNS = (["average_x_position", "average_y_position"], ["x_position", "y_position"])

add_arguments = gaze_join.add_arguments


def read_fixations(root: Path) -> tuple[pd.DataFrame, list[str]]:
    """REFLACX fixations of every kept reading in the common gaze table, and notes."""
    phases = sorted((root / "main_data").glob("metadata_phase_*.csv"))
    if not phases:
        raise AdapterError(f"{NAME}: no main_data/metadata_phase_*.csv under {root}; expected the {VERSION} layout")
    metadata = pd.concat([read_table(p, NAME, VERSION, METADATA_COLUMNS) for p in phases], ignore_index=True)
    notes = []
    if "eye_tracking_data_discarded" in metadata.columns:
        discarded = metadata["eye_tracking_data_discarded"].astype(str).str.lower().isin(["true", "1"])
        if discarded.any():
            notes.append(f"{int(discarded.sum())} readings with eye_tracking_data_discarded skipped")
        metadata = metadata[~discarded]
    tables, missing = [], 0
    for reading in metadata.itertuples(index=False):
        path = root / "main_data" / str(reading.id) / "fixations.csv"
        if not path.is_file():
            missing += 1
            continue
        raw = pd.read_csv(path)
        x_col, y_col = _position_columns(raw, path)
        tables.append(
            pd.DataFrame(
                {
                    "dicom_id": str(reading.dicom_id),
                    "reader": str(reading.id),
                    "x": raw[x_col].astype(float),
                    "y": raw[y_col].astype(float),
                    "duration": (raw[TIME_COLUMNS[1]] - raw[TIME_COLUMNS[0]]).astype(float),
                    "source_width": float(reading.image_size_x),
                    "source_height": float(reading.image_size_y),
                }
            )
        )
    if missing:
        notes.append(f"{missing} readings without main_data/<id>/fixations.csv skipped")
    if not tables:
        raise AdapterError(f"{NAME}: no fixations.csv found for any reading under {root / 'main_data'}")
    return pd.concat(tables, ignore_index=True), notes


def _position_columns(raw: pd.DataFrame, path: Path) -> tuple[str, str]:
    for x_col, y_col in POSITION_COLUMNS:
        if x_col in raw.columns and y_col in raw.columns and all(c in raw.columns for c in TIME_COLUMNS):
            return x_col, y_col
    raise AdapterError(
        f"{NAME}: {path} lacks {TIME_COLUMNS} and average_x_position/average_y_position "
        f"(found {list(raw.columns)}); expected the {VERSION} layout"
    )


def build(root: Path, args: argparse.Namespace) -> Prepared:
    fixations, notes = read_fixations(root)
    return gaze_join.join_gaze(NAME, fixations, args, notes)
