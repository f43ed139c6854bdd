"""RSNA Pneumonia and NIH ChestX-ray14 (+ the 14x100 builder) on fixtures in the published layouts."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from medalign.commands.prepare import run
from medalign.data.manifest import read_manifest
from tests.prepare import fixtures

NIH_LABELS = ["Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia", "Pneumothorax",
              "Consolidation", "Edema", "Emphysema", "Fibrosis", "Pleural_Thickening", "Hernia", "No Finding"]  # fmt: skip


def test_rsna_label_per_patient(tmp_path):
    root = fixtures.rsna(tmp_path / "rsna")
    path = run(["rsna-pneumonia", "--root", str(root), "--out", str(tmp_path / "o"), "--val-fraction", "0.25", "--test-fraction", "0.25"])
    frame = read_manifest(path, ["Pneumonia"]).frame.set_index("id")
    assert frame["Pneumonia"].to_dict() == {"a1": 1, "b2": 0, "c3": 0, "d4": 1}  # any Target 1; boxes ignored
    assert frame.loc["a1", "image"] == "../rsna/stage_2_train_images/a1.dcm"
    assert sorted(frame["split"].value_counts().to_dict().items()) == [("test", 1), ("train", 2), ("val", 1)]
    report = json.loads((path.parent / "prepare_report.json").read_text())
    assert report["rows_in"] == 5 and report["dropped"] == {"extra box rows of the same patient (merged)": 1}


def test_rsna_missing_column(tmp_path):
    root = fixtures.rsna(tmp_path / "rsna")
    pd.read_csv(root / "stage_2_train_labels.csv").drop(columns="Target").to_csv(root / "stage_2_train_labels.csv", index=False)
    with pytest.raises(SystemExit, match=r"lacks column\(s\) \['Target'\].*stage 2"):
        run(["rsna-pneumonia", "--root", str(root), "--out", str(tmp_path / "o")])


def test_nih_manifest(tmp_path):
    root = fixtures.nih(tmp_path / "nih")
    path = run(["nih-cxr14", "--root", str(root), "--out", str(tmp_path / "o"), "--val-fraction", "0.5"])
    frame = read_manifest(path, NIH_LABELS).frame.set_index("id")
    assert "00000007_000.png" not in frame.index  # unknown finding name
    two = frame.loc["00000001_001.png"]
    assert two[NIH_LABELS].to_dict() == {c: float(c in ("Cardiomegaly", "Emphysema")) for c in NIH_LABELS}
    assert frame.loc["00000002_000.png", "No Finding"] == 1
    assert two["image"] == "../nih/images_002/images/00000001_001.png"
    assert two["text"] == "PA chest radiograph of a 51-year-old female patient."
    assert set(frame.loc[["00000003_000.png", "00000004_000.png", "00000005_000.png"], "split"]) == {"test"}
    train_val = frame[frame["split"] != "test"]
    assert train_val.groupby("subject_id")["split"].nunique().max() == 1 and set(train_val["split"]) == {"train", "val"}
    assert json.loads((path.parent / "prepare_report.json").read_text())["dropped"] == {"unknown finding label": 1}


def test_nih_14x100_builder(tmp_path):
    root = fixtures.nih(tmp_path / "nih")
    with pytest.raises(SystemExit, match=r"fewer than 1 single-label images for \{'Atelectasis': 0"):
        run(["nih-14x100", "--root", str(root), "--out", str(tmp_path / "o"), "--per-class", "1"])
    from medalign.prepare.subsets import single_label_subset

    frame = pd.read_csv(run(["nih-cxr14", "--root", str(root), "--out", str(tmp_path / "full")]))
    classes = ["Cardiomegaly", "Hernia", "Effusion", "Emphysema"]
    with pytest.raises(ValueError, match=r"\{'Emphysema': 0\} \(eligible per class: \{'Cardiomegaly': 1, 'Hernia': 1"):
        single_label_subset(frame, classes, 1, seed=0)  # the Cardiomegaly|Emphysema image is not single-label
    subset = single_label_subset(frame, classes[:3], 1, seed=0)
    assert list(subset["id"][1:]) == ["00000003_000.png", "00000004_000.png"]
    np.testing.assert_array_equal(subset[classes[:3]].to_numpy(), np.eye(3))


def test_nih_missing_split_list(tmp_path):
    root = fixtures.nih(tmp_path / "nih")
    (root / "test_list.txt").unlink()
    with pytest.raises(SystemExit, match=r"test_list.txt\[.gz\|.zip\] found.*ChestX-ray14"):
        run(["nih-cxr14", "--root", str(root), "--out", str(tmp_path / "o")])
