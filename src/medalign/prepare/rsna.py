"""RSNA Pneumonia Detection Challenge (Kaggle, stage 2).

Published layout::

    stage_2_train_labels.csv   patientId, x, y, width, height, Target  (one row per box, or one Target-0 row)
    stage_2_train_images/<patientId>.dcm

The label per image is 1 when any of its rows has Target 1 (boxes ignored). There is no
official labelled validation/test split: patients are split with a seed. Images stay DICOM
(reading them needs the ``dicom`` extra: ``pip install 'medalign[dicom]'``). There are no
reports: the text is "Frontal chest radiograph." or, with ``--text labels``, the label.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import pandas as pd

from medalign.prepare.base import Prepared, drop, find_file, read_table, split_by_group

NAME = "rsna-pneumonia"
VERSION = "RSNA Pneumonia Detection Challenge stage 2 (stage_2_train_labels.csv, stage_2_train_images/*.dcm)"
LABEL = "Pneumonia"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--val-fraction", type=float, default=0.15, help="fraction of patients in val")
    parser.add_argument("--test-fraction", type=float, default=0.15, help="fraction of patients in test")
    parser.add_argument("--text", choices=["metadata", "labels"], default="metadata", help="what the text column says")


def read_labels(path: Path) -> tuple[pd.DataFrame, Counter]:
    """One row per patientId with ``Pneumonia`` = any Target 1, and the rows dropped on the way."""
    table = read_table(path, NAME, VERSION, ["patientId", "Target"])
    dropped: Counter = Counter()
    table = drop(table, ~table["Target"].isin([0, 1]), "Target not 0/1", dropped)
    labels = table.groupby("patientId", sort=True)["Target"].max().astype(float).rename(LABEL).reset_index()
    dropped["extra box rows of the same patient (merged)"] += len(table) - len(labels)
    return labels, dropped


def build(root: Path, args: argparse.Namespace) -> Prepared:
    path = find_file(root, ["stage_2_train_labels.csv"], NAME, VERSION)
    rows_in = len(pd.read_csv(path, usecols=[0]))
    labels, dropped = read_labels(path)
    text = (
        ["Pneumonia." if v == 1 else "No pneumonia." for v in labels[LABEL]]
        if args.text == "labels"
        else ["Frontal chest radiograph."] * len(labels)
    )
    frame = pd.DataFrame(
        {
            "image": [str(root / "stage_2_train_images" / f"{p}.dcm") for p in labels["patientId"]],
            "text": text,
            "split": split_by_group(labels["patientId"], args.val_fraction, args.test_fraction, args.seed),
            "id": labels["patientId"],
            "study_id": labels["patientId"],
            "subject_id": labels["patientId"],
            LABEL: labels[LABEL],
        }
    )
    return Prepared(NAME, frame, [LABEL], rows_in, dropped, ["reading the DICOM images needs: pip install 'medalign[dicom]'"])
