"""HAM10000 dermatoscopic images (Tschandl et al. 2018; Harvard Dataverse / ISIC 2018 task 3).

Published layout::

    HAM10000_metadata.csv   lesion_id, image_id, dx, dx_type, age, sex, localization (newer copies add dataset)
    HAM10000_images_part_1/<image_id>.jpg, HAM10000_images_part_2/<image_id>.jpg

Seven classes (``dx``): akiec, bcc, bkl, df, mel, nv, vasc, one-hot in the manifest. As in the
cone-effect paper (Restrepo et al. 2026), the text is the metadata rendered as a sentence
(never the diagnosis): "Dermatoscopic image of a lesion on the back of a 45-year-old male
patient, diagnosis confirmed by histopathology." The paper gives no template ("metadata
represented as text"); ``--text-style restrepo`` renders the cone-effect authors' one instead:
"Patient diagnosed via histo. Age: 45 years. Sex: male. Localization: back." (docs/datasets.md).
No official split: lesions (a lesion can have several images) are split with a seed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pandas as pd

from medalign.prepare.base import Drops, Layout, Prepared, drop, index_files, source_of, split_by_group
from medalign.prepare.options import adapter, arguments_adder

NAME = "ham10000"
VERSION = "HAM10000 (HAM10000_metadata.csv, HAM10000_images_part_1/2/)"
LAYOUT = Layout(NAME, VERSION)
CLASSES = ["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"]
COLUMNS = ["lesion_id", "image_id", "dx", "dx_type", "age", "sex", "localization"]
DX_TYPE = {"histo": "histopathology", "follow_up": "follow-up examination", "consensus": "expert consensus",
           "confocal": "confocal microscopy"}  # fmt: skip


def metadata_text(row: pd.Series) -> str:
    """The image's metadata as one sentence; unknown fields are left out."""
    where = str(row["localization"]) if pd.notna(row["localization"]) and row["localization"] != "unknown" else ""
    sex = str(row["sex"]) if row["sex"] in ("male", "female") else ""
    age = f"{int(row['age'])}-year-old" if pd.notna(row["age"]) else ""
    text = "Dermatoscopic image of a lesion" + (f" on the {where}" if where else "")
    who = " ".join(w for w in (age, sex) if w)
    text += f" of a {who} patient" if who else ""
    how = DX_TYPE.get(str(row["dx_type"]))
    return text + (f", diagnosis confirmed by {how}." if how else ".")


def restrepo_text(row: pd.Series) -> str:
    """The cone-effect authors' rendering: diagnosis method, age, sex and site as raw values ("No data reported" if blank)."""
    def value(v: object) -> str:
        return "No data reported" if pd.isna(v) else str(v)

    age = "No data reported" if pd.isna(row["age"]) else str(int(row["age"]))
    return (f"Patient diagnosed via {row['dx_type']}. Age: {age} years. Sex: {value(row['sex'])}. "
            f"Localization: {value(row['localization'])}.")


@adapter
def build(root: Path, *, text_style: Literal["sentence", "restrepo"] = "sentence", val_fraction: float = 0.1,
          test_fraction: float = 0.2, seed: int = 0) -> Prepared:
    """Read the metadata table; one row per image, one-hot ``dx``.

    Args:
        root: the HAM10000 folder (metadata and image parts).
        text_style: ``sentence`` (ours) or ``restrepo`` (the cone-effect authors' rendering).
        val_fraction: fraction of lesions in val.
        test_fraction: fraction of lesions in test.
        seed: seed of the lesion split.
    """
    table = LAYOUT.read(root, "HAM10000_metadata.csv", "HAM10000_metadata", required=COLUMNS)
    dropped = Drops()
    rows_in = len(table)
    table = drop(table, ~table["dx"].isin(CLASSES), f"dx not one of {CLASSES}", dropped, value="dx")
    files = index_files(root, ["HAM10000_images*/*.jpg", "*/*.jpg", "*.jpg"])
    frame = pd.DataFrame(
        {
            "image": [str(files.get(f"{i}.jpg", root / "HAM10000_images_part_1" / f"{i}.jpg")) for i in table["image_id"]],
            "text": [(restrepo_text if text_style == "restrepo" else metadata_text)(r) for _, r in table.iterrows()],
            "split": split_by_group(table["lesion_id"], val_fraction, test_fraction, seed),
            "id": table["image_id"].to_numpy(),
            "study_id": table["lesion_id"].to_numpy(),
            "subject_id": table["lesion_id"].to_numpy(),
            **{c: (table["dx"] == c).astype(float).to_numpy() for c in CLASSES},
            **source_of(table),
        }
    )
    return Prepared(NAME, frame, CLASSES, rows_in, dropped)


add_arguments = arguments_adder(build)
