"""BRSET, the Brazilian multilabel ophthalmological dataset of fundus photos (PhysioNet 1.0.0).

Published layout::

    labels.csv (or labels_brset.csv, the name in some copies; .gz/.zip accepted)
                 image_id (with or without .jpg), patient_id, camera, patient_age, comorbidities, diabetes_time_y, insuline,
                 patient_sex (1 male, 2 female), exam_eye (1 right, 2 left), diabetes, nationality, ...,
                 diabetic_retinopathy (0/1), macular_edema, ..., DR_ICDR, DR_SDRG
    fundus_photos/<image_id>.jpg

The task is binary diabetic retinopathy (``diabetic_retinopathy``). As in the cone-effect paper,
the text is the clinical/demographic metadata as a sentence (never the DR grade): "Fundus photo of
the right eye of a 48-year-old female patient taken with a Canon CR; diabetes: yes, for 12
years, insulin: no." The paper gives no template; ``--text-style restrepo`` renders the
cone-effect authors' one (demographics, comorbidities, diabetes duration, insulin, then the
anatomy flags and the *other* findings, e.g. "macular edema: present", which correlate with DR;
docs/datasets.md). No official split: patients are split with a seed. A label that is not 0, 1
or blank is an error naming the raw row; a blank label is kept blank (counted in the notes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pandas as pd

from medalign.prepare.base import Drops, Layout, Prepared, source_of, split_by_group, strict_labels
from medalign.prepare.options import adapter, arguments_adder

NAME = "brset"
VERSION = "BRSET 1.0.0 (labels.csv or labels_brset.csv, fundus_photos/)"
LABEL_FILES = ("labels.csv", "labels_brset.csv")
LABEL = "diabetic_retinopathy"
LAYOUT = Layout(NAME, VERSION)
COLUMNS = ["image_id", "patient_id", "camera", "patient_age", "patient_sex", "exam_eye", "diabetes", LABEL]


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


FINDINGS = {"macular_edema": "macular edema", "scar": "scar", "nevus": "nevus", "amd": "amd",
            "vascular_occlusion": "vascular occlusion", "drusens": "drusens", "hemorrhage": "hemorrhage",
            "retinal_detachment": "retinal detachment", "myopic_fundus": "myopic fundus",
            "increased_cup_disc": "increased cup disc ratio", "other": "other conditions"}  # fmt: skip


def _number(value: object) -> str:
    """A BRSET number as the authors print it: float, with 'O' typos and decimal commas repaired."""
    return str(float(str(value).replace("O", "0").replace(",", ".")))


def restrepo_text(row: pd.Series) -> str:
    """The cone-effect authors' BRSET rendering (demographics, history, anatomy, other findings)."""
    def present(column: str) -> str:
        return "present" if str(row.get(column, "")).split(".")[0] == "1" else "absent"

    eye = {"1": "right", "2": "left"}.get(str(row["exam_eye"]).split(".")[0], "no eye reported")
    sex = {"1": "male", "2": "female"}.get(str(row["patient_sex"]).split(".")[0], "no sex reported")
    age = _number(row["patient_age"]) if _known(row["patient_age"]) else "no age reported"
    comorbid = f"with comorbidities: {row['comorbidities']}" if _known(row.get("comorbidities")) else "with no comorbidities reported"
    years = row.get("diabetes_time_y")
    duration = (f"diabetes diagnosed for {_number(years)} years" if _known(years) and str(years) != "Não"
                else "with no diabetes duration reported")  # fmt: skip
    insulin = "not using insulin" if str(row.get("insuline")) == "no" else "using insulin"
    findings = ", ".join(f"{name}: {present(c)}" for c, name in list(FINDINGS.items())[:-1])
    return (f"An image from the {eye} eye of a {sex} patient, aged {age} years, {comorbid}, {duration}, {insulin}. "
            f"The optic disc is {present('optic_disc')}, vessels are {present('vessels')}, and the macula is "
            f"{present('macula')}. Conditions include {findings}, and other conditions: {present('other')}.")


@adapter
def build(root: Path, *, text_style: Literal["sentence", "restrepo"] = "sentence", val_fraction: float = 0.1,
          test_fraction: float = 0.2, seed: int = 0) -> Prepared:
    """Read the label table; one row per fundus photo.

    Args:
        root: the BRSET folder (label table and fundus_photos/).
        text_style: ``sentence`` (ours) or ``restrepo`` (the cone-effect authors' rendering).
        val_fraction: fraction of patients in val.
        test_fraction: fraction of patients in test.
        seed: seed of the patient split.
    """
    extra = [*FINDINGS, "optic_disc", "vessels", "macula", "comorbidities", "diabetes_time_y", "insuline"]
    table = LAYOUT.read(root, *LABEL_FILES, required=COLUMNS + (extra if text_style == "restrepo" else []))
    label = strict_labels(table, [LABEL], NAME, allowed=(0.0, 1.0))[LABEL]
    notes = [f"{int(label.isna().sum())} photos with a blank {LABEL}: label left blank"] if label.isna().any() else []
    stems = [str(i).strip().removesuffix(".jpg") for i in table["image_id"]]
    frame = pd.DataFrame(
        {
            "image": [str(root / "fundus_photos" / f"{i}.jpg") for i in stems],
            "text": [(restrepo_text if text_style == "restrepo" else metadata_text)(r) for _, r in table.iterrows()],
            "split": split_by_group(table["patient_id"], val_fraction, test_fraction, seed),
            "id": stems,
            "study_id": stems,
            "subject_id": table["patient_id"].astype(str).to_numpy(),
            LABEL: label.to_numpy(),
            **source_of(table),
        }
    )
    return Prepared(NAME, frame, [LABEL], len(table), Drops(), notes)


add_arguments = arguments_adder(build)
