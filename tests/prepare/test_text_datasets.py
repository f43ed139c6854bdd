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
    # frontal, non-empty report; ids in the NLM form, the same as the XML layout gives
    assert list(frame["id"]) == ["CXR1_IM-0001-4001", "CXR2_IM-0652-1001", "CXR4_IM-2050-1001-0001"]
    assert list(frame["text"]) == [
        "The cardiac silhouette and mediastinum size are within normal limits. Normal chest x-XXXX.",
        "No acute disease.",
        "Heart size normal.",
    ]
    assert list(frame["image"]) == [
        "../openi/images/images_normalized/1_IM-0001-4001.dcm.png",
        "../openi/images/images_normalized/2_IM-0652-1001.dcm.png",
        "../openi/images/images_normalized/4_IM-2050-1001-0001.dcm.png",
    ]
    assert set(frame["split"]) == {"test"} and list(frame["study_id"]) == ["CXR1", "CXR2", "CXR4"]
    report = json.loads((path.parent / "prepare_report.json").read_text())
    assert report["dropped"] == {"not a frontal view": 2, "report has no findings/impression": 1}
    assert report["dropped_examples"]["report has no findings/impression"] == [
        {"where": f"{root / 'indiana_projections.csv'} row 4 (line 5)", "study_id": "CXR3"}
    ]


def test_openi_same_ids_in_both_layouts(tmp_path):
    kaggle = read_manifest(run(["openi", "--root", str(fixtures.openi_kaggle(tmp_path / "k")), "--out", str(tmp_path / "a")])).frame
    nlm = fixtures.openi_xml(tmp_path / "nlm")
    xml = read_manifest(run(["openi", "--root", str(nlm), "--out", str(tmp_path / "b"),
                             "--projections", str(tmp_path / "k" / "indiana_projections.csv")])).frame  # fmt: skip
    columns = ["id", "study_id", "subject_id", "text"]
    pd.testing.assert_frame_equal(kaggle[columns].astype(str), xml[columns].astype(str))
    # report 1's XML ids repeat the uid (CXR1_1_IM-...), as in the real NLMCXR_reports.tgz; the file keeps that name
    assert xml["image"].iloc[0] == "../nlm/NLMCXR_png/CXR1_1_IM-0001-4001.png"


def test_openi_image_id_forms():
    from medalign.prepare.openi import image_key

    forms = ["CXR1_1_IM-0001-3001", "CXR1_IM-0001-3001", "1_IM-0001-3001.dcm.png", "CXR1_1_IM-0001-3001.png",
             "NLMCXR_png/CXR1_1_IM-0001-3001.png", "images\\1_IM-0001-3001.dcm", "CXR1_IM-0001-3001.dcm"]  # fmt: skip
    assert {image_key(f) for f in forms} == {"CXR1_IM-0001-3001"}
    assert image_key("CXR1021_IM-0017-1001-0001") == "CXR1021_IM-0017-1001-0001"
    assert image_key("CXR10_IM-0002-1001.png") == "CXR10_IM-0002-1001"
    assert image_key("scan_0001.png") is None


def test_openi_missing_projection_is_its_own_reason(tmp_path):
    root = fixtures.openi_xml(tmp_path / "nlm")
    kaggle = fixtures.openi_kaggle(tmp_path / "k")
    table = pd.read_csv(kaggle / "indiana_projections.csv")
    table[table["filename"] != "2_IM-0652-1001.dcm.png"].to_csv(kaggle / "indiana_projections.csv", index=False)
    path = run(["openi", "--root", str(root), "--out", str(tmp_path / "o"), "--projections", str(kaggle / "indiana_projections.csv")])
    report = json.loads((path.parent / "prepare_report.json").read_text())
    assert report["dropped"] == {"no projection in indiana_projections.csv": 1, "not a frontal view": 2,
                                 "report has no findings/impression": 1}  # fmt: skip
    assert report["dropped_examples"]["no projection in indiana_projections.csv"][0]["id"] == "CXR2_IM-0652-1001"
    assert list(read_manifest(path).frame["id"]) == ["CXR1_IM-0001-4001", "CXR4_IM-2050-1001-0001"]


def test_openi_xml_layout_and_sections(tmp_path):
    root = fixtures.openi_xml(tmp_path / "nlm")
    path = run(["openi", "--root", str(root), "--out", str(tmp_path / "o"), "--sections", "findings"])
    frame = read_manifest(path).frame
    # No --projections: views unknown, both images of reports 1 and 4 kept; reports 2 and 3 have no findings.
    assert list(frame["id"]) == ["CXR1_IM-0001-4001", "CXR1_IM-0001-3001", "CXR4_IM-2050-1001-0001", "CXR4_IM-2050-1001-0002"]
    assert frame["text"].iloc[0] == "The cardiac silhouette and mediastinum size are within normal limits."
    assert frame["image"].iloc[0] == "../nlm/NLMCXR_png/CXR1_1_IM-0001-4001.png" and frame["study_id"].iloc[0] == "CXR1"
    notes = json.loads((path.parent / "prepare_report.json").read_text())["notes"]
    assert "views unknown" in notes[0]
    kaggle = fixtures.openi_kaggle(tmp_path / "kaggle")
    path = run(["openi", "--root", str(root), "--out", str(tmp_path / "o2"), "--projections", str(kaggle / "indiana_projections.csv")])
    assert list(read_manifest(path).frame["id"]) == ["CXR1_IM-0001-4001", "CXR2_IM-0652-1001", "CXR4_IM-2050-1001-0001"]


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
