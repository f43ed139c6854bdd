"""BRSET, the Brazilian multilabel ophthalmological dataset of fundus photos (PhysioNet 1.0.0).

Published layout::

    labels.csv   image_id, patient_id, camera, patient_age, comorbidities, diabetes_time_y, insuline,
                 patient_sex (1 male, 2 female), exam_eye (1 right, 2 left), diabetes, nationality, ...,
                 diabetic_retinopathy (0/1), macular_edema, ..., DR_ICDR, DR_SDRG
    fundus_photos/<image_id>.jpg

The task is binary diabetic retinopathy (``diabetic_retinopathy``). As in the cone-effect paper,
the text is the clinical/demographic metadata as a sentence (never the DR grade): "Fundus photo of
the right eye of a 48-year-old female patient taken with a Canon CR; diabetes: yes, for 12
years, insulin: no." No official split: patients are split with a seed.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import pandas as pd

from medalign.prepare.base import Prepared, drop, find_file, read_table, split_by_group

NAME = "brset"
VERSION = "BRSET 1.0.0 (labels.csv, fundus_photos/)"
LABEL = "diabetic_retinopathy"
COLUMNS = ["image_id", "patient_id", "camera", "patient_age", "patient_sex", "exam_eye", "diabetes", LABEL]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--val-fraction", type=float, default=0.1, help="fraction of patients in val")
    parser.add_argument("--test-fraction", type=float, default=0.2, help="fraction of patients in test")


def _known(value: object) -> bool:
    return pd.notna(value) and str(value).strip() not in ("", "nan")


def metadata_text(row: pd.Series) -> str:
    """The photo's metadata as one sentence; unknown fields are left out."""
    eye = {"1": "right", "2": "left"}.get(str(row["exam_eye"]).split(".")[0], "")
    sex = {"1": "male", "2": "female"}.get(str(row["patient_sex"]).split(".")[0], "")
    age = f"{int(float(row['patient_age']))}-year-old" if _known(row["patient_age"]) else ""
    who = " ".join(w for w in (age, sex) if w)
    text = "Fundus photo" + (f" of the {eye} eye" if eye else "") + (f" of a {who} patient" if who else "")
    text += f" taken with a {row['camera']}" if _known(row["camera"]) else ""
    clinical = []
    if _known(row["diabetes"]):
        diabetes = f"diabetes: {str(row['diabetes']).lower()}"
        if _known(row.get("diabetes_time_y")):
            diabetes += f", for {row['diabetes_time_y']} years"
        clinical.append(diabetes)
    if _known(row.get("insuline")):
        clinical.append(f"insulin: {str(row['insuline']).lower()}")
    return text + ("; " + ", ".join(clinical) if clinical else "") + "."


def build(root: Path, args: argparse.Namespace) -> Prepared:
    table = read_table(find_file(root, ["labels.csv"], NAME, VERSION), NAME, VERSION, COLUMNS)
    dropped: Counter = Counter()
    rows_in = len(table)
    label = pd.to_numeric(table[LABEL], errors="coerce")
    table = drop(table, ~label.isin([0, 1]), f"{LABEL} not 0/1", dropped)
    frame = pd.DataFrame(
        {
            "image": [str(root / "fundus_photos" / f"{i}.jpg") for i in table["image_id"]],
            "text": [metadata_text(r) for _, r in table.iterrows()],
            "split": split_by_group(table["patient_id"], args.val_fraction, args.test_fraction, args.seed),
            "id": table["image_id"].astype(str).to_numpy(),
            "study_id": table["image_id"].astype(str).to_numpy(),
            "subject_id": table["patient_id"].astype(str).to_numpy(),
            LABEL: pd.to_numeric(table[LABEL]).astype(float).to_numpy(),
        }
    )
    return Prepared(NAME, frame, [LABEL], rows_in, dropped)
