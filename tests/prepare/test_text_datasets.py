"""Open-I (both layouts), HAM10000 and BRSET on fixtures in the published layouts."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from medalign.commands.prepare import run
from medalign.data.manifest import read_manifest
from tests.prepare import fixtures

HAM = ["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc"]


def test_openi_kaggle_layout(tmp_path):
    root = fixtures.openi_kaggle(tmp_path / "openi")
    path = run(["openi", "--root", str(root), "--out", str(tmp_path / "o")])
    frame = read_manifest(path).frame
    assert list(frame["id"]) == ["1_IM-0001-4001.dcm.png", "2_IM-0652-1001.dcm.png"]  # frontal, non-empty report
    assert list(frame["text"]) == [
        "The cardiac silhouette and mediastinum size are within normal limits. Normal chest x-XXXX.",
        "No acute disease.",
    ]
    assert list(frame["image"]) == [f"../openi/images/images_normalized/{i}" for i in frame["id"]]
    assert set(frame["split"]) == {"test"} and list(frame["study_id"]) == [1, 2]
    report = json.loads((path.parent / "prepare_report.json").read_text())
    assert report["dropped"] == {"not a frontal view": 1, "report has no findings/impression": 1}


def test_openi_xml_layout_and_sections(tmp_path):
    root = fixtures.openi_xml(tmp_path / "nlm")
    path = run(["openi", "--root", str(root), "--out", str(tmp_path / "o"), "--sections", "findings"])
    frame = read_manifest(path).frame
    # No --projections: views unknown, both images of report 1 kept; report 2 has no findings.
    assert list(frame["id"]) == ["CXR1_IM-0001-4001", "CXR1_IM-0001-3001"]
    assert set(frame["text"]) == {"The cardiac silhouette and mediastinum size are within normal limits."}
    assert frame["image"].iloc[0] == "../nlm/NLMCXR_png/CXR1_IM-0001-4001.png" and frame["study_id"].iloc[0] == "CXR1"
    notes = json.loads((path.parent / "prepare_report.json").read_text())["notes"]
    assert "views unknown" in notes[0]
    kaggle = fixtures.openi_kaggle(tmp_path / "kaggle")
    path = run(["openi", "--root", str(root), "--out", str(tmp_path / "o2"), "--projections", str(kaggle / "indiana_projections.csv")])
    assert list(read_manifest(path).frame["id"]) == ["CXR1_IM-0001-4001", "CXR2_IM-0652-1001"]


def test_openi_missing_inputs(tmp_path):
    with pytest.raises(SystemExit, match="neither .*ecgen-radiology nor .*NLMCXR_reports.tgz"):
        run(["openi", "--root", str(tmp_path), "--out", str(tmp_path / "o")])
    root = fixtures.openi_kaggle(tmp_path / "k")
    pd.read_csv(root / "indiana_projections.csv").drop(columns="projection").to_csv(root / "indiana_projections.csv", index=False)
    with pytest.raises(SystemExit, match=r"indiana_projections.csv lacks column\(s\) \['projection'\]"):
        run(["openi", "--root", str(root), "--out", str(tmp_path / "o")])


def test_ham10000(tmp_path):
    root = fixtures.ham10000(tmp_path / "ham")
    path = run(["ham10000", "--root", str(root), "--out", str(tmp_path / "o"), "--val-fraction", "0.25", "--test-fraction", "0.25"])
    frame = read_manifest(path, HAM).frame.set_index("id")
    np.testing.assert_array_equal(frame.loc["ISIC_0026769", HAM].to_numpy(float), np.eye(7)[HAM.index("mel")])
    assert frame.loc["ISIC_0027419", "text"] == (
        "Dermatoscopic image of a lesion on the scalp of a 80-year-old male patient, diagnosis confirmed by histopathology."
    )
    assert frame.loc["ISIC_0031633", "text"] == "Dermatoscopic image of a lesion of a 75-year-old patient, diagnosis confirmed by follow-up examination."
    assert frame.loc["ISIC_0025030", "image"] == "../ham/HAM10000_images_part_2/ISIC_0025030.jpg"
    assert frame.loc["ISIC_0027419", "split"] == frame.loc["ISIC_0025030", "split"]  # same lesion, same split
    assert not any(dx in t for t in frame["text"] for dx in ("melanoma", " mel", " nv", "nevus"))  # no label leak


def test_brset(tmp_path):
    root = fixtures.brset(tmp_path / "brset")
    path = run(["brset", "--root", str(root), "--out", str(tmp_path / "o")])
    frame = read_manifest(path, ["diabetic_retinopathy"]).frame.set_index("id")
    assert frame["diabetic_retinopathy"].to_dict() == {"img00001": 0, "img00002": 1, "img00003": 0}
    assert frame.loc["img00002", "text"] == (
        "Fundus photo of the left eye of a 48-year-old female patient taken with a Canon CR; diabetes: yes, for 12.0 years, insulin: yes."
    )
    assert frame.loc["img00003", "text"] == "Fundus photo of the right eye of a male patient taken with a NIKON NF5050; diabetes: no, insulin: no."
    assert frame.loc["img00001", "split"] == frame.loc["img00002", "split"]  # one patient
    (root / "labels.csv").unlink()
    with pytest.raises(SystemExit, match=r"labels.csv\[.gz\|.zip\], labels_brset.csv\[.gz\|.zip\] found.*BRSET"):
        run(["brset", "--root", str(root), "--out", str(tmp_path / "o")])
