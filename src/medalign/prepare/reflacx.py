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
``eye_tracking_data_discarded`` are skipped. Fixations outside the image (negative, or past
``image_size_x`` × ``image_size_y``) are dropped before rendering and counted in the report.
``x_position`` / ``y_position`` are accepted for the position columns too.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from medalign.prepare import gaze_join
from medalign.prepare.options import arguments_adder
from medalign.prepare.base import Layout

NAME = "reflacx"
VERSION = "REFLACX 1.0.0 (main_data/metadata_phase_*.csv, main_data/<id>/fixations.csv)"
METADATA_COLUMNS = ["id", "dicom_id", "image_size_x", "image_size_y"]
TIME_COLUMNS = ["timestamp_start_fixation", "timestamp_end_fixation"]
LAYOUT = Layout(NAME, VERSION)
POSITION_COLUMNS = (["average_x_position", "average_y_position"], ["x_position", "y_position"])

def read_fixations(root: Path) -> tuple[pd.DataFrame, list[str]]:
    """REFLACX fixations of every kept reading in the common gaze table, and notes."""
    phases = sorted((root / "main_data").glob("metadata_phase_*.csv"))
    if not phases:
        raise LAYOUT.error(f"no main_data/metadata_phase_*.csv under {root}")
    metadata = pd.concat([LAYOUT.read_path(p, METADATA_COLUMNS) for p in phases], ignore_index=True)
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
        raise LAYOUT.error(f"no fixations.csv found for any reading under {root / 'main_data'}")
    return pd.concat(tables, ignore_index=True), notes


def _position_columns(raw: pd.DataFrame, path: Path) -> tuple[str, str]:
    """The (x, y) position columns of a fixations.csv; `AdapterError` naming exactly the missing columns."""
    missing_time = [c for c in TIME_COLUMNS if c not in raw.columns]
    for x_col, y_col in POSITION_COLUMNS:
        if not missing_time and x_col in raw.columns and y_col in raw.columns:
            return x_col, y_col
    closest = max(POSITION_COLUMNS, key=lambda pair: sum(c in raw.columns for c in pair))
    missing = [*missing_time, *(c for c in closest if c not in raw.columns)]
    raise LAYOUT.error(f"{path} lacks column(s) {missing} (found {list(raw.columns)})")


build = gaze_join.gaze_adapter(NAME, read_fixations)
add_arguments = arguments_adder(build)
