"""MIMIC-CXR-JPG (images, split, CheXpert labels, metadata) + MIMIC-CXR reports.

Published layout (PhysioNet, MIMIC-CXR-JPG 2.0.0 / 2.1.0; the CSVs keep the 2.0.0 names)::

    mimic-cxr-2.0.0-split.csv.gz      dicom_id, study_id, subject_id, split ∈ train/validate/test
    mimic-cxr-2.0.0-chexpert.csv.gz   subject_id, study_id, 14 CheXpert labels ∈ {1.0, 0.0, -1.0, blank}
    mimic-cxr-2.0.0-metadata.csv.gz   dicom_id, subject_id, study_id, ..., ViewPosition, Rows, Columns, ...
    files/p10/p10000032/s50414267/<dicom_id>.jpg
    files/p10/p10000032/s50414267.txt (MIMIC-CXR reports, from mimic-cxr-reports.zip)

One manifest row per image; ``validate`` becomes ``val``; frontal views (PA, AP) by default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from medalign.prepare.base import Drops, Layout, Prepared, drop, source_of, strict_labels
from medalign.prepare.options import adapter, arguments_adder
from medalign.prepare.reports import report_text

NAME = "mimic-cxr"
VERSION = "MIMIC-CXR-JPG 2.0.0/2.1.0 (mimic-cxr-2.0.0-*.csv[.gz]) with MIMIC-CXR reports (files/pXX/pN/sM.txt)"
CHEXPERT_LABELS = [
    "Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Enlarged Cardiomediastinum", "Fracture",
    "Lung Lesion", "Lung Opacity", "No Finding", "Pleural Effusion", "Pleural Other", "Pneumonia",
    "Pneumothorax", "Support Devices",
]  # fmt: skip
SPLITS = {"train": "train", "validate": "val", "test": "test"}
LAYOUT = Layout(NAME, VERSION)


@adapter
def build(
    root: Path,
    *,
    reports_root: str | None = None,
    views: list[str] = ("PA", "AP"),
    sections: list[str] = ("findings", "impression"),
) -> Prepared:
    """Read the split, label and metadata tables and the reports; one row per kept image.

    Args:
        root: the MIMIC-CXR-JPG folder (the CSVs and files/).
        reports_root: folder holding files/pXX/pN/sM.txt (default: root).
        views: ViewPosition values to keep; 'all' keeps every view.
        sections: report sections, in order.
    """
    views, sections = ([v] if isinstance(v, str) else list(v) for v in (views, sections))  # "all" or ["PA", "AP"]
    split = LAYOUT.read(root, "mimic-cxr-2.0.0-split.csv", required=["dicom_id", "study_id", "subject_id", "split"])
    labels = LAYOUT.read(root, "mimic-cxr-2.0.0-chexpert.csv", required=["subject_id", "study_id", *CHEXPERT_LABELS])
    meta = LAYOUT.read(root, "mimic-cxr-2.0.0-metadata.csv", required=["dicom_id", "ViewPosition"])
    labels[CHEXPERT_LABELS] = strict_labels(labels, CHEXPERT_LABELS, NAME)  # errors name the raw chexpert.csv row
    dropped = Drops()
    frame = split.copy()
    rows_in = len(frame)
    bad = ~frame["split"].isin(list(SPLITS))
    frame = drop(frame, bad, "split value not train/validate/test", dropped, value="split")
    frame["split"] = frame["split"].map(SPLITS)

    meta_columns = ["dicom_id", "ViewPosition", *[c for c in ("Rows", "Columns") if c in meta.columns]]
    frame = frame.merge(meta[meta_columns], on="dicom_id", how="left")
    frame["ViewPosition"] = frame["ViewPosition"].fillna("").astype(str)
    if [v.upper() for v in views] != ["ALL"]:
        keep = {v.upper() for v in views}
        frame = drop(frame, ~frame["ViewPosition"].str.upper().isin(keep), f"view not in {sorted(keep)}", dropped)

    frame = frame.merge(labels[["subject_id", "study_id", *CHEXPERT_LABELS]], on=["subject_id", "study_id"], how="left")

    study_dirs = [
        f"files/p{str(s)[:2]}/p{s}/s{t}" for s, t in zip(frame["subject_id"].astype(str), frame["study_id"].astype(str))
    ]
    frame["image"] = [str(root / d / f"{dicom}.jpg") for d, dicom in zip(study_dirs, frame["dicom_id"])]
    frame["text"] = _read_reports(Path(reports_root) if reports_root else root, study_dirs, sections)
    frame["report"] = [f"{d}.txt" for d in study_dirs]
    frame = drop(frame, frame["text"].isna(), "report file missing", dropped, value="report")
    frame = drop(frame, frame["text"] == "", f"report has no {'/'.join(sections)} section", dropped, value="report")

    notes = []
    unlabelled = int(frame[CHEXPERT_LABELS].isna().all(axis=1).sum())
    if unlabelled:
        notes.append(f"{unlabelled} images have no CheXpert label (no row, or all blank): labels left empty")
    out = pd.DataFrame(
        {
            "image": frame["image"],
            "text": frame["text"],
            "split": frame["split"],
            "id": frame["dicom_id"].astype(str),
            "study_id": frame["study_id"].astype(str),
            "subject_id": frame["subject_id"].astype(str),
            **{c: frame[c] for c in CHEXPERT_LABELS},
            "view": frame["ViewPosition"],
            **source_of(frame),
        }
    )
    if "Rows" in frame.columns:  # the original pixel frame; gaze coordinates live in it
        out["orig_height"] = frame["Rows"].astype("Int64")
        out["orig_width"] = frame["Columns"].astype("Int64")
    return Prepared(NAME, out.reset_index(drop=True), CHEXPERT_LABELS, rows_in, dropped, notes)


add_arguments = arguments_adder(build)


def _read_reports(reports_root: Path, study_dirs: list[str], sections: Sequence[str]) -> list[float | str]:
    """The parsed text of each study's report (read once per study); NaN where the file is missing."""
    cache: dict[str, float | str] = {}
    for d in dict.fromkeys(study_dirs):
        path = reports_root / f"{d}.txt"
        cache[d] = report_text(path.read_text(errors="replace"), sections) if path.is_file() else np.nan
    return [cache[d] for d in study_dirs]
