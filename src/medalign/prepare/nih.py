"""NIH ChestX-ray14 (NIH Clinical Center, 2017; Kaggle mirror has the same files).

Published layout::

    Data_Entry_2017.csv (or Data_Entry_2017_v2020.csv)
        Image Index, Finding Labels ("Cardiomegaly|Emphysema" or "No Finding"), Follow-up #,
        Patient ID, Patient Age, Patient Gender, View Position, OriginalImage[Width,Height],
        OriginalImagePixelSpacing[x,y]  (the bracketed headers contain a comma, so a CSV reader
        sees ``OriginalImage[Width`` and ``Height]``; later copies rename them
        ``OriginalImageWidth`` / ``OriginalImageHeight`` and add columns: all accepted, and the
        size is kept as ``orig_width`` / ``orig_height``)
    train_val_list.txt, test_list.txt   one image name per line (official split)
    images_001/images/*.png ... images_012/images/*.png   (Kaggle)  or  images/*.png  (NIH box)

Validation is carved from train_val by patient with a seed. Labels are 1 / 0 (the text-mined
labels have no uncertain value); ``No Finding`` is a column too. No reports: the text is the
image's metadata ("PA chest radiograph of a 58-year-old male patient.") or, with
``text="labels"``, its labels. Ages written as ``058Y`` (some copies) are read as 58.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from medalign.prepare.base import Drops, Layout, Prepared, drop, index_files, labels_text, source_of, split_by_group
from medalign.prepare.options import adapter, arguments_adder
from medalign.prepare.tables import read_text

NAME = "nih-cxr14"
VERSION = "NIH ChestX-ray14 (Data_Entry_2017[_v2020].csv, train_val_list.txt, test_list.txt, images*/)"
FINDINGS = [
    "Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia", "Pneumothorax",
    "Consolidation", "Edema", "Emphysema", "Fibrosis", "Pleural_Thickening", "Hernia",
]  # fmt: skip
LABELS = [*FINDINGS, "No Finding"]
COLUMNS = ["Image Index", "Finding Labels", "Patient ID", "Patient Age", "Patient Gender", "View Position"]
LAYOUT = Layout(NAME, VERSION)
# Original image size under the names the releases use (a comma inside the 2017 header splits it in two).
SIZE_COLUMNS = {
    "orig_width": ("OriginalImage[Width", "OriginalImageWidth", "OriginalImage_Width", "Width"),
    "orig_height": ("Height]", "OriginalImageHeight", "OriginalImage_Height", "Height"),
}


def read_entries(path: Path) -> tuple[pd.DataFrame, Drops]:
    """Data_Entry rows with one 1/0 column per label; rows with an unknown finding are dropped (and listed)."""
    table = LAYOUT.read_path(path, COLUMNS)
    dropped = Drops()
    names = table["Finding Labels"].fillna("").str.split("|")
    known = set(LABELS)
    bad = names.map(lambda ns: not ns or not set(ns) <= known)
    table = drop(table, bad, "unknown finding label", dropped, value="Finding Labels").reset_index(drop=True)
    one_hot = table["Finding Labels"].str.get_dummies(sep="|").reindex(columns=LABELS, fill_value=0)
    table[LABELS] = one_hot.astype(float).to_numpy()
    for canonical, names in SIZE_COLUMNS.items():
        found = next((n for n in names if n in table.columns), None)
        table[canonical] = pd.to_numeric(table[found], errors="coerce").astype("Int64") if found else pd.NA
    table["Patient Age"] = [_age(a) for a in table["Patient Age"]]
    return table, dropped


def _age(value: object) -> float:
    """58, "58", "058Y" → 58.0; anything else NaN."""
    match = re.fullmatch(r"\s*0*(\d+)\s*[Yy]?\s*", str(value)) if pd.notna(value) else None
    return float(match.group(1)) if match else np.nan


@adapter
def build(
    root: Path,
    *,
    val_fraction: float = 0.1,
    text: Literal["metadata", "labels"] = "metadata",
    seed: int = 0,
) -> Prepared:
    """Read Data_Entry and the official split lists; locate the images.

    Args:
        root: the ChestX-ray14 folder.
        val_fraction: fraction of train_val patients carved into val.
        text: what the text column says: the image's metadata, or its labels (evaluation only).
        seed: seed of the train/val patient split.
    """
    table, dropped = read_entries(LAYOUT.find(root, "Data_Entry_2017.csv", "Data_Entry_2017_v2020.csv"))
    rows_in = len(table) + sum(dropped.values())
    split_lists = {name: set(read_text(LAYOUT.find(root, name)).split()) for name in ("train_val_list.txt", "test_list.txt")}
    split = np.where(table["Image Index"].isin(split_lists["test_list.txt"]), "test",
                     np.where(table["Image Index"].isin(split_lists["train_val_list.txt"]), "train", ""))  # fmt: skip
    table = table.assign(split=split)
    reason = "image in neither train_val_list.txt nor test_list.txt"
    table = drop(table, table["split"] == "", reason, dropped, value="Image Index")
    train = (table["split"] == "train").to_numpy()
    table.loc[train, "split"] = split_by_group(table.loc[train, "Patient ID"], val_fraction, 0.0, seed)

    files = index_files(root, ["images*/images/*.png", "images/*.png", "images_*/*.png"])
    texts = (
        [labels_text(row, LABELS) for _, row in table[LABELS].iterrows()]
        if text == "labels"
        else [metadata_text(v, a, g) for v, a, g in zip(table["View Position"], table["Patient Age"], table["Patient Gender"])]
    )
    frame = pd.DataFrame(
        {
            "image": [str(files.get(name, root / "images" / name)) for name in table["Image Index"]],
            "text": texts,
            "split": table["split"].to_numpy(),
            "id": table["Image Index"].to_numpy(),
            "study_id": table["Image Index"].to_numpy(),
            "subject_id": table["Patient ID"].astype(str).to_numpy(),
            **{c: table[c].to_numpy() for c in LABELS},
            "orig_width": table["orig_width"].to_numpy(),
            "orig_height": table["orig_height"].to_numpy(),
            **source_of(table),
        }
    )
    notes = [] if files else [f"no images found under {root} (looked in images_*/images/, images/)"]
    return Prepared(NAME, frame, LABELS, rows_in, dropped, notes)


add_arguments = arguments_adder(build)


def metadata_text(view: object, age: object, gender: object) -> str:
    """E.g. "PA chest radiograph of a 58-year-old male patient."."""
    sex = {"M": "male", "F": "female"}.get(str(gender), "")
    who = " ".join(w for w in (f"{int(age)}-year-old" if pd.notna(age) else "", sex) if w)
    return f"{view} chest radiograph" + (f" of a {who} patient." if who else ".")
