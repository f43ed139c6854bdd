"""mBRSET, fundus photos from handheld cameras in Brazil (Wu et al. 2024; PhysioNet ``mbrset`` 1.0).

Published layout::

    labels_mbrset.csv   file (e.g. 1.1.jpg), patient, age, sex (1 male, 0 female), dm_time, insulin,
                        insulin_time, oraltreatment_dm, systemic_hypertension, insurance, educational_level,
                        alcohol_consumption, smoking, obesity, vascular_disease, acute_myocardial_infarction,
                        nephropathy, neuropathy, diabetic_foot, laterality (right/left), final_artifacts,
                        final_quality, final_icdr (0-4 ICDR grade), final_edema
    images/<file>

The task is binary diabetic retinopathy, ``diabetic_retinopathy`` = ``final_icdr > 0`` (a blank
grade is left blank). The text is the clinical/demographic metadata, never the grade
(``--text-style``: ``sentence``, ours, or ``restrepo``, the cone-effect authors' mBRSET rendering;
docs/datasets.md). No official split: patients are split with a seed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from medalign.prepare.base import Drops, Layout, Prepared, source_of, split_by_group
from medalign.prepare.options import adapter, arguments_adder

NAME = "mbrset"
VERSION = "mBRSET 1.0 (labels_mbrset.csv, images/)"
LAYOUT = Layout(NAME, VERSION)
LABEL = "diabetic_retinopathy"
COLUMNS = ["file", "patient", "age", "sex", "dm_time", "insulin", "laterality", "final_icdr"]
COMORBIDITIES = {"systemic_hypertension": "systemic hypertension", "vascular_disease": "vascular disease",
                 "acute_myocardial_infarction": "acute myocardial infarction", "nephropathy": "nephropathy",
                 "neuropathy": "neuropathy", "diabetic_foot": "diabetic foot"}  # fmt: skip


def _yes(value: object) -> bool:
    return str(value).strip().lower() in ("yes", "1", "1.0", "true")


def _known(value: object) -> bool:
    return pd.notna(value) and str(value).strip() not in ("", "nan")


def _comorbidities(row: pd.Series) -> list[str]:
    return [name for column, name in COMORBIDITIES.items() if column in row.index and _yes(row[column])]


def metadata_text(row: pd.Series) -> str:
    """Our sentence: "Fundus photo of the left eye of a 61-year-old female patient; diabetes for 10 years, insulin: yes; ..."."""
    eye = str(row["laterality"]).strip().lower() if str(row["laterality"]).strip().lower() in ("right", "left") else ""
    sex = {"1": "male", "0": "female"}.get(str(row["sex"]).split(".")[0], "")
    age = f"{int(float(row['age']))}-year-old" if _known(row["age"]) else ""
    who = " ".join(w for w in (age, sex) if w)
    text = "Fundus photo" + (f" of the {eye} eye" if eye else "") + (f" of a {who} patient" if who else "")
    clinical = [f"diabetes for {row['dm_time']} years"] if _known(row["dm_time"]) else []
    if _known(row["insulin"]):
        clinical.append(f"insulin: {'yes' if _yes(row['insulin']) else 'no'}")
    if _comorbidities(row):
        clinical.append("comorbidities: " + ", ".join(_comorbidities(row)))
    return text + ("; " + ", ".join(clinical) if clinical else "") + "."


def restrepo_text(row: pd.Series) -> str:
    """The cone-effect authors' mBRSET rendering: eye, sex, age, comorbidities, diabetes duration, insulin."""
    eye = str(row["laterality"]).strip().lower()
    eye = eye if eye in ("right", "left") else "unknown"
    sex = {"1": "male", "0": "female"}.get(str(row["sex"]).split(".")[0], "unknown sex")
    age = f"aged {row['age']} years" if _known(row["age"]) else "aged no age reported years"
    names = [n.title() for n in _comorbidities(row)]
    comorbid = "with comorbidities: " + ", ".join(names) if names else "with no comorbidities reported"
    duration = f"diabetes diagnosed for {row['dm_time']} years" if _known(row["dm_time"]) else "with no diabetes duration reported"
    insulin = "not using insulin" if str(row["insulin"]).strip().lower() == "no" else "using insulin"
    return f"An image from the {eye} eye of a {sex} patient, {age}, {comorbid}, {duration}, {insulin}."


@adapter
def build(root: Path, *, text_style: Literal["sentence", "restrepo"] = "sentence", val_fraction: float = 0.1,
          test_fraction: float = 0.2, seed: int = 0) -> Prepared:
    """Read labels_mbrset.csv; one row per photo.

    Args:
        root: the mBRSET folder (labels_mbrset.csv and images/).
        text_style: ``sentence`` (ours) or ``restrepo`` (the cone-effect authors' rendering).
        val_fraction: fraction of patients in val.
        test_fraction: fraction of patients in test.
        seed: seed of the patient split.
    """
    table = LAYOUT.read(root, "labels_mbrset.csv", required=COLUMNS)
    grade = pd.to_numeric(table["final_icdr"], errors="coerce")
    bad = table["final_icdr"].notna() & (grade.isna() | ~grade.isin([0, 1, 2, 3, 4]))
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise LAYOUT.error(f"{table['_file'].iloc[i]} row {i + 1}: final_icdr {table['final_icdr'].iloc[i]!r} is not an ICDR grade 0-4")
    notes = [f"{int(grade.isna().sum())} photos with a blank final_icdr: label left blank"] if grade.isna().any() else []
    render = restrepo_text if text_style == "restrepo" else metadata_text
    files = [str(f).strip() for f in table["file"]]
    files = [f if f.endswith(".jpg") else f"{f}.jpg" for f in files]  # id: the file name ("1.10" would read back as 1.1)
    frame = pd.DataFrame({
        "image": [str(root / "images" / f) for f in files], "text": [render(r) for _, r in table.iterrows()],
        "split": split_by_group(table["patient"], val_fraction, test_fraction, seed), "id": files, "study_id": files,
        "subject_id": table["patient"].astype(str).to_numpy(), LABEL: np.where(grade.isna(), np.nan, (grade > 0).astype(float)),
        "final_icdr": grade.to_numpy(), **source_of(table),
    })  # fmt: skip
    return Prepared(NAME, frame, [LABEL], len(table), Drops(), notes)


add_arguments = arguments_adder(build)
