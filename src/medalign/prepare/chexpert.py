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

from pathlib import Path
from typing import Literal

import pandas as pd

from medalign.prepare.base import Drops, Layout, Prepared, drop, labels_text, source_of, split_by_group, strict_labels
from medalign.prepare.options import adapter, arguments_adder

NAME = "chexpert"
VERSION = "CheXpert-v1.0 / CheXpert-v1.0-small (train.csv, valid.csv)"
LAYOUT = Layout(NAME, VERSION)
LABELS = [
    "No Finding", "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity", "Lung Lesion", "Edema",
    "Consolidation", "Pneumonia", "Atelectasis", "Pneumothorax", "Pleural Effusion", "Pleural Other",
    "Fracture", "Support Devices",
]  # fmt: skip
COLUMNS = ["Path", "Sex", "Age", "Frontal/Lateral", "AP/PA", *LABELS]


@adapter
def build(
    root: Path,
    *,
    views: Literal["frontal", "all"] = "frontal",
    valid_split: Literal["val", "test"] = "val",
    val_fraction: float = 0.0,
    text: Literal["metadata", "labels"] = "metadata",
    seed: int = 0,
) -> Prepared:
    """Read train.csv and valid.csv; one row per kept image.

    Args:
        root: the CheXpert-v1.0[-small] folder.
        views: keep frontal images only, or all.
        valid_split: the split valid.csv becomes.
        val_fraction: carve this fraction of train patients into val.
        text: what the text column says: the image's metadata, or its labels (evaluation only: leaks the label).
        seed: seed of the train/val patient split.
    """
    tables = []
    for name, split in (("train.csv", "train"), ("valid.csv", valid_split)):
        tables.append(LAYOUT.read(root, name, required=COLUMNS).assign(split=split))
    return from_tables(root, pd.concat(tables, ignore_index=True), views=views, val_fraction=val_fraction, text=text, seed=seed)


add_arguments = arguments_adder(build)


def from_tables(
    root: Path,
    frame: pd.DataFrame,
    *,
    views: Literal["frontal", "all"] = "frontal",
    val_fraction: float = 0.0,
    text: Literal["metadata", "labels"] = "metadata",
    seed: int = 0,
) -> Prepared:
    """The CheXpert rows of `frame` (train.csv/valid.csv rows plus a ``split`` column) as a `Prepared`."""
    root = Path(root)
    dropped = Drops()
    rows_in = len(frame)
    if views == "frontal":
        frame = drop(frame, frame["Frontal/Lateral"] != "Frontal", "lateral view", dropped)
    labels = strict_labels(frame, LABELS, NAME)  # before anything else: errors name the raw row
    parts = frame["Path"].str.split("/")
    prefix = root.name + "/"
    # Paths start with the dataset folder's name; resolve them from its parent.
    base = [root.parent if p.startswith(prefix) else root for p in frame["Path"]]
    patient = parts.str[-3]
    if val_fraction > 0:
        frame = frame.copy()
        train = frame["split"] == "train"
        frame.loc[train, "split"] = split_by_group(patient[train], val_fraction, 0.0, seed)
    texts = (
        [labels_text(row, LABELS) for _, row in labels.iterrows()]
        if text == "labels"
        else [metadata_text(v, p, a, s) for v, p, a, s in zip(frame["Frontal/Lateral"], frame["AP/PA"], frame["Age"], frame["Sex"])]
    )
    out = pd.DataFrame(
        {
            "image": [str(b / p) for b, p in zip(base, frame["Path"])],
            "text": texts,
            "split": frame["split"].to_numpy(),
            "id": frame["Path"].to_numpy(),
            "study_id": (patient + "/" + parts.str[-2]).to_numpy(),
            "subject_id": patient.to_numpy(),
            **{c: labels[c].to_numpy() for c in LABELS},
            **source_of(frame),
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
