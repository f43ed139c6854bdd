"""NIH ChestX-ray14 (NIH Clinical Center, 2017; Kaggle mirror has the same files).

Published layout::

    Data_Entry_2017.csv (or Data_Entry_2017_v2020.csv)
        Image Index, Finding Labels ("Cardiomegaly|Emphysema" or "No Finding"), Follow-up #,
        Patient ID, Patient Age, Patient Gender, View Position, OriginalImage[Width,Height], ...
    train_val_list.txt, test_list.txt   one image name per line (official split)
    images_001/images/*.png ... images_012/images/*.png   (Kaggle)  or  images/*.png  (NIH box)

Validation is carved from train_val by patient with a seed. Labels are 1 / 0 (the text-mined
labels have no uncertain value); ``No Finding`` is a column too. No reports: the text is the
image's metadata ("PA chest radiograph of a 58-year-old male patient.") or, with
``--text labels``, its labels.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from medalign.prepare.base import AdapterError, Prepared, drop, find_file, index_files, labels_text, read_table, split_by_group

NAME = "nih-cxr14"
VERSION = "NIH ChestX-ray14 (Data_Entry_2017[_v2020].csv, train_val_list.txt, test_list.txt, images*/)"
FINDINGS = [
    "Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia", "Pneumothorax",
    "Consolidation", "Edema", "Emphysema", "Fibrosis", "Pleural_Thickening", "Hernia",
]  # fmt: skip
LABELS = [*FINDINGS, "No Finding"]
COLUMNS = ["Image Index", "Finding Labels", "Patient ID", "Patient Age", "Patient Gender", "View Position"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--val-fraction", type=float, default=0.1, help="fraction of train_val patients carved into val")
    parser.add_argument("--text", choices=["metadata", "labels"], default="metadata", help="what the text column says")


def read_entries(path: Path) -> tuple[pd.DataFrame, Counter]:
    """Data_Entry rows with one 1/0 column per label; rows with an unknown finding are dropped."""
    table = read_table(path, NAME, VERSION, COLUMNS, usecols=lambda c: c in COLUMNS)
    dropped: Counter = Counter()
    names = table["Finding Labels"].fillna("").str.split("|")
    known = set(LABELS)
    bad = names.map(lambda ns: not ns or not set(ns) <= known)
    table = drop(table, bad, "unknown finding label", dropped)
    table = table.reset_index(drop=True)
    one_hot = table["Finding Labels"].str.get_dummies(sep="|").reindex(columns=LABELS, fill_value=0)
    table[LABELS] = one_hot.astype(float).to_numpy()
    return table, dropped


def build(root: Path, args: argparse.Namespace) -> Prepared:
    entries_path = find_file(root, ["Data_Entry_2017.csv", "Data_Entry_2017_v2020.csv"], NAME, VERSION)
    table, dropped = read_entries(entries_path)
    rows_in = len(table) + sum(dropped.values())
    split_lists = {}
    for name in ("train_val_list.txt", "test_list.txt"):
        path = find_file(root, [name], NAME, VERSION)
        split_lists[name] = set(path.read_text().split())
    split = np.where(table["Image Index"].isin(split_lists["test_list.txt"]), "test",
                     np.where(table["Image Index"].isin(split_lists["train_val_list.txt"]), "train", ""))  # fmt: skip
    table = table.assign(split=split)
    table = drop(table, table["split"] == "", "image in neither train_val_list.txt nor test_list.txt", dropped)
    train = (table["split"] == "train").to_numpy()
    table.loc[train, "split"] = split_by_group(table.loc[train, "Patient ID"], args.val_fraction, 0.0, args.seed)

    files = index_files(root, ["images*/images/*.png", "images/*.png", "images_*/*.png"])
    if not files:
        raise AdapterError(f"{NAME}: no images under {root} (looked in images_*/images/, images/); expected the {VERSION} layout")
    text = (
        [labels_text(row, LABELS) for _, row in table[LABELS].iterrows()]
        if args.text == "labels"
        else [metadata_text(v, a, g) for v, a, g in zip(table["View Position"], table["Patient Age"], table["Patient Gender"])]
    )
    frame = pd.DataFrame(
        {
            "image": [str(files.get(name, root / "images" / name)) for name in table["Image Index"]],
            "text": text,
            "split": table["split"].to_numpy(),
            "id": table["Image Index"].to_numpy(),
            "study_id": table["Image Index"].to_numpy(),
            "subject_id": table["Patient ID"].astype(str).to_numpy(),
            **{c: table[c].to_numpy() for c in LABELS},
        }
    )
    return Prepared(NAME, frame, LABELS, rows_in, dropped)


def metadata_text(view: object, age: object, gender: object) -> str:
    """E.g. "PA chest radiograph of a 58-year-old male patient."."""
    sex = {"M": "male", "F": "female"}.get(str(gender), "")
    who = " ".join(w for w in (f"{int(age)}-year-old" if pd.notna(age) else "", sex) if w)
    return f"{view} chest radiograph" + (f" of a {who} patient." if who else ".")
