"""EGD-CXR eye-gaze dataset (PhysioNet "eye-gaze" 1.0.0) → heatmaps joined onto a MIMIC manifest.

Published layout::

    master_sheet.csv   dicom_id, path, study_id, patient_id, ..., per-image condition labels
    fixations.csv      DICOM_ID, CASE_ID, Time (in secs), FPOGX, FPOGY, FPOGS, FPOGD, FPOGID, FPOGV, ...,
                       X_ORIGINAL, Y_ORIGINAL, ...

One radiologist read every image: one reading per DICOM_ID. ``X_ORIGINAL`` / ``Y_ORIGINAL`` are
positions in the original image's pixels and ``FPOGD`` the fixation duration in seconds; rows
with ``FPOGV`` = 0 (invalid fixation, where the column exists) are ignored.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from medalign.prepare import gaze_join
from medalign.prepare.base import Prepared, find_file, read_table

NAME = "egd-cxr"
VERSION = "EGD-CXR (PhysioNet eye-gaze 1.0.0: master_sheet.csv, fixations.csv)"
FIXATION_COLUMNS = ["DICOM_ID", "X_ORIGINAL", "Y_ORIGINAL", "FPOGD"]

add_arguments = gaze_join.add_arguments


def read_fixations(root: Path) -> tuple[pd.DataFrame, list[str]]:
    """EGD-CXR fixations in the common gaze table (see `gaze_join.FIXATION_COLUMNS`) and notes."""
    read_table(find_file(root, ["master_sheet.csv"], NAME, VERSION), NAME, VERSION, ["dicom_id"], nrows=5)
    raw = read_table(find_file(root, ["fixations.csv"], NAME, VERSION), NAME, VERSION, FIXATION_COLUMNS)
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


def build(root: Path, args: argparse.Namespace) -> Prepared:
    fixations, notes = read_fixations(root)
    return gaze_join.join_gaze(NAME, fixations, args, notes)
