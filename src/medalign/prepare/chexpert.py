"""CheXpert (Stanford ML Group, CheXpert-v1.0 and CheXpert-v1.0-small).

Published layout::

    CheXpert-v1.0-small/train.csv, valid.csv
        Path, Sex, Age, Frontal/Lateral, AP/PA, No Finding, Enlarged Cardiomediastinum, Cardiomegaly,
        Lung Opacity, Lung Lesion, Edema, Consolidation, Pneumonia, Atelectasis, Pneumothorax,
        Pleural Effusion, Pleural Other, Fracture, Support Devices
        (Path = CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg)

Labels keep CheXpert's values: 1 positive, 0 negative, -1 uncertain, blank unmentioned. CheXpert
has no reports: the text is the image's metadata ("Frontal AP chest radiograph of a 68-year-old
female patient.") or, with ``--text labels``, its labels — for evaluation sets only (it leaks the label).
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import pandas as pd

from medalign.prepare.base import Prepared, drop, find_file, labels_text, read_table, split_by_group

NAME = "chexpert"
VERSION = "CheXpert-v1.0 / CheXpert-v1.0-small (train.csv, valid.csv)"
LABELS = [
    "No Finding", "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity", "Lung Lesion", "Edema",
    "Consolidation", "Pneumonia", "Atelectasis", "Pneumothorax", "Pleural Effusion", "Pleural Other",
    "Fracture", "Support Devices",
]  # fmt: skip
COLUMNS = ["Path", "Sex", "Age", "Frontal/Lateral", "AP/PA", *LABELS]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--views", choices=["frontal", "all"], default="frontal", help="keep frontal images only (default)")
    parser.add_argument("--valid-split", choices=["val", "test"], default="val", help="split that valid.csv becomes")
    parser.add_argument("--val-fraction", type=float, default=0.0, help="carve this fraction of train patients into val")
    parser.add_argument("--text", choices=["metadata", "labels"], default="metadata", help="what the text column says")


def build(root: Path, args: argparse.Namespace) -> Prepared:
    tables = []
    for name, split in (("train.csv", "train"), ("valid.csv", args.valid_split)):
        table = read_table(find_file(root, [name], NAME, VERSION), NAME, VERSION, COLUMNS)
        tables.append(table.assign(split=split))
    return from_tables(root, pd.concat(tables, ignore_index=True), args)


def from_tables(root: Path, frame: pd.DataFrame, args: argparse.Namespace) -> Prepared:
    """The CheXpert rows of `frame` (train.csv/valid.csv rows plus a ``split`` column) as a `Prepared`."""
    dropped: Counter = Counter()
    rows_in = len(frame)
    if args.views == "frontal":
        frame = drop(frame, frame["Frontal/Lateral"] != "Frontal", "lateral view", dropped)
    parts = frame["Path"].str.split("/")
    prefix = root.name + "/"
    # Paths start with the dataset folder's name; resolve them from its parent.
    base = [root.parent if p.startswith(prefix) else root for p in frame["Path"]]
    patient = parts.str[-3]
    if args.val_fraction > 0:
        train = frame["split"] == "train"
        frame.loc[train, "split"] = split_by_group(patient[train], args.val_fraction, 0.0, args.seed)
    labels = frame[LABELS].apply(pd.to_numeric, errors="coerce")
    text = (
        [labels_text(row, LABELS) for _, row in labels.iterrows()]
        if args.text == "labels"
        else [metadata_text(v, p, a, s) for v, p, a, s in zip(frame["Frontal/Lateral"], frame["AP/PA"], frame["Age"], frame["Sex"])]
    )
    out = pd.DataFrame(
        {
            "image": [str(b / p) for b, p in zip(base, frame["Path"])],
            "text": text,
            "split": frame["split"].to_numpy(),
            "id": frame["Path"].to_numpy(),
            "study_id": (patient + "/" + parts.str[-2]).to_numpy(),
            "subject_id": patient.to_numpy(),
            **{c: labels[c].to_numpy() for c in LABELS},
        }
    )
    return Prepared(NAME, out, LABELS, rows_in, dropped)


def metadata_text(view: object, projection: object, age: object, sex: object) -> str:
    """E.g. "Frontal AP chest radiograph of a 68-year-old female patient." (unknown parts left out)."""
    words = [str(view)] if isinstance(view, str) else []
    if isinstance(projection, str) and projection.strip():
        words.append(projection.strip())
    words.append("chest radiograph")
    who = []
    if pd.notna(age) and str(age).strip():
        who.append(f"{int(float(age))}-year-old")
    if isinstance(sex, str) and sex.lower() in ("female", "male"):
        who.append(sex.lower())
    sentence = " ".join(words) + (f" of a {' '.join(who)} patient" if who else "")
    return sentence[0].upper() + sentence[1:] + "."
