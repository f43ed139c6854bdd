"""RSNA Pneumonia Detection Challenge (Kaggle, stage 2), in its DICOM or PNG/JPG release.

Published layout::

    stage_2_train_labels.csv[.gz|.zip]   patientId, x, y, width, height, Target
                                         (one row per box, or one Target-0 row)
    stage_2_train_images/<patientId>.dcm   (the Kaggle DICOM release)
    or <any folder>/<patientId>.png|.jpg   (PNG/JPG re-releases, e.g. stage_2_train_images_png/)

The label per image is 1 when any of its rows has Target 1 (boxes ignored). There is no
official labelled validation/test split: patients are split with a seed. DICOM images need the
``dicom`` extra (``pip install 'medalign[dicom]'``); a PNG/JPG release is used when no DICOM
file is there. There are no reports: the text is "Frontal chest radiograph." or, with
``text="labels"``, the label.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pandas as pd

from medalign.prepare.base import Drops, Layout, Prepared, drop, index_files, split_by_group, strict_labels
from medalign.prepare.options import adapter, arguments_adder

NAME = "rsna-pneumonia"
VERSION = "RSNA Pneumonia Detection Challenge stage 2 (stage_2_train_labels.csv[.gz|.zip], stage_2_train_images/*.dcm|png|jpg)"
LAYOUT = Layout(NAME, VERSION)
LABEL = "Pneumonia"
IMAGE_PATTERNS = ("stage_2_train_images*/*.{}", "*/*.{}", "*.{}")
SUFFIXES = ("dcm", "png", "jpg", "jpeg")


def read_labels(path: Path) -> tuple[pd.DataFrame, Drops]:
    """One row per patientId with ``Pneumonia`` = any Target 1 (first raw row kept as the origin)."""
    table = LAYOUT.read_path(path, ["patientId", "Target"])
    dropped = Drops()
    table["Target"] = strict_labels(table, ["Target"], NAME, allowed=(0.0, 1.0))["Target"]
    table = drop(table, table["Target"].isna(), "Target blank", dropped, value="patientId")
    grouped = table.groupby("patientId", sort=True)
    labels = grouped.agg(Pneumonia=("Target", "max"), _file=("_file", "first"), _row=("_row", "first")).reset_index()
    dropped["extra box rows of the same patient (merged)"] += len(table) - len(labels)
    return labels, dropped


def find_images(root: Path) -> tuple[dict[str, Path], str]:
    """patientId → image file of the first release found (DICOM, then PNG, JPG), and its suffix."""
    for suffix in SUFFIXES:
        files = index_files(root, [p.format(suffix) for p in IMAGE_PATTERNS])
        if files:
            return {Path(name).stem: path for name, path in files.items()}, suffix
    return {}, "dcm"


@adapter
def build(
    root: Path,
    *,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    text: Literal["metadata", "labels"] = "metadata",
    seed: int = 0,
) -> Prepared:
    """Read the label table and locate the images (DICOM or PNG/JPG release).

    Args:
        root: the folder holding stage_2_train_labels.csv and the image folder.
        val_fraction: fraction of patients in val.
        test_fraction: fraction of patients in test.
        text: what the text column says: a fixed metadata sentence, or the label (evaluation only).
        seed: seed of the patient split.
    """
    path = LAYOUT.find(root, "stage_2_train_labels.csv")
    labels, dropped = read_labels(path)
    rows_in = len(labels) + sum(dropped.values())
    files, suffix = find_images(root)
    notes = [f"images: the {suffix.upper()} release ({len(files)} files found)"]
    if suffix == "dcm":
        notes.append("reading the DICOM images needs: pip install 'medalign[dicom]'")
    texts = (
        ["Pneumonia." if v == 1 else "No pneumonia." for v in labels[LABEL]]
        if text == "labels"
        else ["Frontal chest radiograph."] * len(labels)
    )
    default = root / "stage_2_train_images"
    frame = pd.DataFrame(
        {
            "image": [str(files.get(p, default / f"{p}.{suffix}")) for p in labels["patientId"]],
            "text": texts,
            "split": split_by_group(labels["patientId"], val_fraction, test_fraction, seed),
            "id": labels["patientId"],
            "study_id": labels["patientId"],
            "subject_id": labels["patientId"],
            LABEL: labels[LABEL].astype(float),
            "_file": labels["_file"],
            "_row": labels["_row"],
        }
    )
    return Prepared(NAME, frame, [LABEL], rows_in, dropped, notes)


add_arguments = arguments_adder(build)
