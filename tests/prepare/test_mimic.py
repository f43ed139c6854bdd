"""MIMIC-CXR-JPG + reports adapter on a fixture in the published layout."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pandas as pd
import pytest

from medalign.commands.prepare import run
from medalign.prepare.reports import parse_sections, report_text
from medalign.data.manifest import read_manifest
from tests.prepare import fixtures


def test_sections_of_a_mimic_report():
    sections = parse_sections(fixtures.REPORT)
    assert sections["FINDINGS"] == "There is no focal consolidation. Heart size is normal."
    assert sections["IMPRESSION"] == "No acute cardiopulmonary process."
    assert sections["INDICATION"] == "___F with cough"
    assert report_text(fixtures.REPORT, ["impression"]) == "No acute cardiopulmonary process."
    assert report_text(fixtures.REPORT, ["impression", "findings"]).startswith("No acute")
    assert report_text("FINDINGS AND IMPRESSION: Clear lungs.") == "Clear lungs."  # one alias, not twice
    assert report_text(fixtures.REPORT_NO_SECTIONS) == ""


def test_manifest(tmp_path):
    root = fixtures.mimic(tmp_path / "mimic-cxr-jpg")
    path = run(["mimic-cxr", "--root", str(root), "--out", str(tmp_path / "out")])
    manifest = read_manifest(path, fixtures.MIMIC_LABELS)  # checks every image exists
    frame = manifest.frame.set_index("id")
    assert list(frame.index) == ["d1", "d3", "d6"]
    assert frame["split"].to_dict() == {"d1": "train", "d3": "val", "d6": "train"}
    assert frame.loc["d1", "text"] == "There is no focal consolidation. Heart size is normal. No acute cardiopulmonary process."
    assert frame.loc["d3", "text"] == "Small left effusion."
    assert frame.loc["d1", "image"] == "../mimic-cxr-jpg/files/p10/p10000032/s50414267/d1.jpg"
    assert frame.loc["d1", "study_id"] == 50414267 and frame.loc["d1", "subject_id"] == 10000032
    assert frame.loc["d1", "No Finding"] == 1 and frame.loc["d1", "Edema"] == -1  # uncertain kept
    assert np.isnan(frame.loc["d1", "Cardiomegaly"])
    assert frame.loc["d3", "Pleural Effusion"] == 1 and frame.loc["d3", "Cardiomegaly"] == 0
    assert frame.loc["d6", fixtures.MIMIC_LABELS].isna().all()  # study without a label row
    assert (frame.loc["d6", "orig_height"], frame.loc["d6", "orig_width"]) == (60, 80)
    report = json.loads((path.parent / "prepare_report.json").read_text())
    assert report["rows_in"] == 6 and report["rows_out"] == 3
    assert report["dropped"] == {
        "report file missing": 1,
        "report has no findings/impression section": 1,
        "view not in ['AP', 'PA']": 1,
    }
    assert "1 images have no CheXpert label" in report["notes"][0]


def test_options_views_and_sections(tmp_path):
    root = fixtures.mimic(tmp_path / "raw")
    path = run(["mimic-cxr", "--root", str(root), "--out", str(tmp_path / "o"), "--views", "all", "--sections", "impression"])
    frame = pd.read_csv(path).set_index("id")
    assert list(frame.index) == ["d1", "d2", "d3", "d6"]
    assert frame.loc["d2", "text"] == "No acute cardiopulmonary process."


def test_missing_file_and_column(tmp_path):
    root = fixtures.mimic(tmp_path / "raw")
    (root / "mimic-cxr-2.0.0-chexpert.csv.gz").unlink()
    with pytest.raises(SystemExit, match=r"mimic-cxr-2.0.0-chexpert.csv\[.gz\|.zip\].*MIMIC-CXR-JPG 2.0.0"):
        run(["mimic-cxr", "--root", str(root), "--out", str(tmp_path / "o")])
    root = fixtures.mimic(tmp_path / "raw2")
    meta = pd.read_csv(root / "mimic-cxr-2.0.0-metadata.csv.gz").drop(columns="ViewPosition")
    fixtures.csv_gz(meta, root / "mimic-cxr-2.0.0-metadata.csv.gz")
    with pytest.raises(SystemExit, match=r"metadata.csv.gz lacks column\(s\) \['ViewPosition'\]"):
        run(["mimic-cxr", "--root", str(root), "--out", str(tmp_path / "o")])


def test_missing_image_error_or_drop(tmp_path):
    root = fixtures.mimic(tmp_path / "raw")
    (root / "files/p10/p10000032/s50414267/d1.jpg").unlink()
    with pytest.raises(SystemExit, match="d1.jpg not found"):
        run(["mimic-cxr", "--root", str(root), "--out", str(tmp_path / "o")])
    path = run(["mimic-cxr", "--root", str(root), "--out", str(tmp_path / "o"), "--missing", "drop"])
    assert json.loads((path.parent / "prepare_report.json").read_text())["dropped"]["image file missing"] == 1


def test_uncompressed_csvs_are_read(tmp_path):
    root = fixtures.mimic(tmp_path / "raw")
    for name in ("split", "chexpert", "metadata"):
        gz = root / f"mimic-cxr-2.0.0-{name}.csv.gz"
        (root / f"mimic-cxr-2.0.0-{name}.csv").write_bytes(gzip.decompress(gz.read_bytes()))
        gz.unlink()
    assert len(pd.read_csv(run(["mimic-cxr", "--root", str(root), "--out", str(tmp_path / "o")]))) == 3


def test_copy_and_resize(tmp_path):
    root = fixtures.mimic(tmp_path / "raw")
    copied = run(["mimic-cxr", "--root", str(root), "--out", str(tmp_path / "c"), "--copy"])
    frame = pd.read_csv(copied).set_index("id")
    assert frame.loc["d1", "image"] == "images/files/p10/p10000032/s50414267/d1.jpg"
    assert (copied.parent / frame.loc["d1", "image"]).read_bytes() == (root / "files/p10/p10000032/s50414267/d1.jpg").read_bytes()
    resized = run(["mimic-cxr", "--root", str(root), "--out", str(tmp_path / "r"), "--resize", "20"])
    frame = pd.read_csv(resized).set_index("id")
    assert frame.loc["d6", "image"] == "images_20/files/p12/p12000012/s52000001/d6.png"
    from PIL import Image

    assert Image.open(resized.parent / frame.loc["d6", "image"]).size == (27, 20)  # 80 x 60 → short side 20
    assert Image.open(resized.parent / frame.loc["d1", "image"]).size == (27, 20)  # 40 x 30 → short side 20
