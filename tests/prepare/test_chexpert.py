"""CheXpert adapter and the CheXpert 5x200 builder on a fixture in the published layout."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from medalign.commands.prepare import run
from medalign.data.manifest import read_manifest
from tests.prepare import fixtures

FIVE = ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion"]


def test_manifest(tmp_path):
    root = fixtures.chexpert(tmp_path, n_train=6)
    path = run(["chexpert", "--root", str(root), "--out", str(tmp_path / "out")])
    manifest = read_manifest(path, fixtures.CHEXPERT_LABELS)
    frame = manifest.frame.set_index("id")
    assert len(frame) == 8 and (frame["split"] == "train").sum() == 6 and (frame["split"] == "val").sum() == 2
    first = "CheXpert-v1.0-small/train/patient00000/study1/view1_frontal.jpg"
    assert frame.loc[first, "image"] == "../" + first  # resolved from the dataset folder's parent
    assert frame.loc[first, "text"] == "Frontal AP chest radiograph of a 60-year-old female patient."
    assert frame.loc[first, "subject_id"] == "patient00000" and frame.loc[first, "study_id"] == "patient00000/study1"
    third = "CheXpert-v1.0-small/train/patient00002/study1/view1_frontal.jpg"
    assert frame.loc[third, "Consolidation"] == 1 and frame.loc[third, "Edema"] == -1  # uncertain kept as -1
    assert np.isnan(frame.loc[third, "Pneumonia"]) and frame.loc[third, "Support Devices"] == 0
    report = json.loads((path.parent / "prepare_report.json").read_text())
    assert report["dropped"] == {"lateral view": 4}  # patients 0, 2, 4 (train) and 0 (valid)


def test_options(tmp_path):
    root = fixtures.chexpert(tmp_path, n_train=6)
    path = run(["chexpert", "--root", str(root), "--out", str(tmp_path / "o"), "--views", "all", "--valid-split", "test",
                "--text", "labels", "--val-fraction", "0.5"])  # fmt: skip
    frame = pd.read_csv(path)
    assert len(frame) == 12 and (frame["split"] == "test").sum() == 3
    train_val = frame[frame["split"] != "test"]
    assert train_val.groupby("subject_id")["split"].nunique().max() == 1  # carved by patient
    assert set(train_val["split"]) == {"train", "val"}
    row = frame[frame["id"] == "CheXpert-v1.0-small/train/patient00002/study1/view1_frontal.jpg"].iloc[0]
    assert row["text"] == "Consolidation. Possible edema."


def test_5x200_builder(tmp_path):
    root = fixtures.chexpert(tmp_path, n_train=10)
    path = run(["chexpert-5x200", "--root", str(root), "--out", str(tmp_path / "o"), "--per-class", "1"])
    manifest = read_manifest(path, FIVE)
    frame = manifest.frame
    assert len(frame) == 5 and set(frame["split"]) == {"test"}
    np.testing.assert_array_equal(frame[FIVE].to_numpy(), np.eye(5))  # one class each, in class order
    # Only images positive for one class and uncertain for none are eligible.
    subject = dict(zip(FIVE, frame["subject_id"]))
    assert (subject["Atelectasis"], subject["Consolidation"], subject["Edema"]) == ("patient00000", "patient00007", "patient00003")
    with pytest.raises(SystemExit, match=r"fewer than 2 single-label images for \{'Atelectasis': 1"):
        run(["chexpert-5x200", "--root", str(root), "--out", str(tmp_path / "o2"), "--per-class", "2"])


def test_5x200_is_seeded(tmp_path):
    root = fixtures.chexpert(tmp_path, n_train=20)
    a = pd.read_csv(run(["chexpert-5x200", "--root", str(root), "--out", str(tmp_path / "a"), "--per-class", "2"]))
    b = pd.read_csv(run(["chexpert-5x200", "--root", str(root), "--out", str(tmp_path / "b"), "--per-class", "2"]))
    c = pd.read_csv(run(["chexpert-5x200", "--root", str(root), "--out", str(tmp_path / "c"), "--per-class", "2", "--seed", "3"]))
    assert list(a["id"]) == list(b["id"]) and list(a["id"]) != list(c["id"])


def test_missing_file_and_column(tmp_path):
    root = fixtures.chexpert(tmp_path)
    pd.read_csv(root / "valid.csv").drop(columns="Frontal/Lateral").to_csv(root / "valid.csv", index=False)
    with pytest.raises(SystemExit, match=r"valid.csv lacks column\(s\) \['Frontal/Lateral'\].*CheXpert-v1.0"):
        run(["chexpert", "--root", str(root), "--out", str(tmp_path / "o")])
    (root / "train.csv").unlink()
    with pytest.raises(SystemExit, match=r"train.csv\[.gz\|.zip\] found"):
        run(["chexpert", "--root", str(root), "--out", str(tmp_path / "o")])
