"""EGD-CXR eye-gaze dataset (PhysioNet "eye-gaze" 1.0.0) → heatmaps joined onto a MIMIC manifest.

Published layout::

    master_sheet.csv   dicom_id, path, study_id, patient_id, ..., per-image condition labels
    fixations.csv      DICOM_ID, CASE_ID, Time (in secs), FPOGX, FPOGY, FPOGS, FPOGD, FPOGID, FPOGV, ...,
                       X_ORIGINAL, Y_ORIGINAL, ...

One radiologist read every image: one reading per DICOM_ID. ``X_ORIGINAL`` / ``Y_ORIGINAL`` are
positions in the original image's pixels and ``FPOGD`` the fixation duration in seconds; rows
with ``FPOGV`` = 0 (invalid fixation, where the column exists) are ignored. Gaze off the screen
is recorded with negative coordinates: those, and positions past the image's size (the MIMIC
``Rows``/``Columns`` kept in the manifest), are dropped before rendering and counted in the report.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from medalign.prepare import gaze_join
from medalign.prepare.options import arguments_adder
from medalign.prepare.base import Layout

NAME = "egd-cxr"
VERSION = "EGD-CXR (PhysioNet eye-gaze 1.0.0: master_sheet.csv, fixations.csv)"
FIXATION_COLUMNS = ["DICOM_ID", "X_ORIGINAL", "Y_ORIGINAL", "FPOGD"]
LAYOUT = Layout(NAME, VERSION)

def read_fixations(root: Path) -> tuple[pd.DataFrame, list[str]]:
    """EGD-CXR fixations in the common gaze table (see `gaze_join.FIXATION_COLUMNS`) and notes."""
    LAYOUT.read(root, "master_sheet.csv", required=["dicom_id"], nrows=5)
    raw = LAYOUT.read(root, "fixations.csv", required=FIXATION_COLUMNS)
    notes = []
    if "FPOGV" in raw.columns:
        invalid = raw["FPOGV"] == 0
        if invalid.any():
            notes.append(f"{int(invalid.sum())} fixations with FPOGV = 0 ignored")
        raw = raw[~invalid]
    fixations = pd.DataFrame(
        {
            "dicom_id": raw["DICOM_ID"].astype(str),
            "reader": "egd",
            "x": raw["X_ORIGINAL"].astype(float),
            "y": raw["Y_ORIGINAL"].astype(float),
            "duration": raw["FPOGD"].astype(float),
            "source_width": np.nan,
            "source_height": np.nan,
        }
    )
    return fixations, notes


build = gaze_join.gaze_adapter(NAME, read_fixations)
add_arguments = arguments_adder(build)
