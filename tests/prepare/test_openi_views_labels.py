"""Open-I: DICOM View Position filter, HTML entity decoding and OpenI-5 labels from MeSH."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from medalign.commands.prepare import run
from medalign.data.manifest import read_manifest
from medalign.prepare import openi
from medalign.synthetic.findings import LABELS, NO_FINDING
from tests.prepare import fixtures


def _dicom_metadata(path, views: dict[str, str | None]) -> None:
    """nlmcxr_dicom_metadata.csv.gz as torchxrayvision ships it (imageid, ..., View Position, ...)."""
    rows = [{"imageid": i, "Accession Number": 1, "Modality": "CR", "View Position": v, "Path": f"./{i[3:]}.dcm"}
            for i, v in views.items()]  # fmt: skip
    fixtures.csv_gz(pd.DataFrame(rows), path)


def _escape_and_index(root):
    """Report 4 as in the real release: an entity escaped twice (``&amp;gt;``) and MeSH major terms."""
    path = root / "ecgen-radiology" / "4.xml"
    text = path.read_text().replace("Heart size normal.", "Heart size normal.&amp;gt;] No effusion.")
    text = text.replace("<major>normal</major>", "<major>Cardiomegaly/mild</major><major>Pleural Effusion/left</major>")
    path.write_text(text)


def test_dicom_laterals_dropped_entities_decoded_mesh_labels(tmp_path):
    root = fixtures.openi_xml(tmp_path / "nlm")
    _escape_and_index(root)
    projections = fixtures.openi_kaggle(tmp_path / "k") / "indiana_projections.csv"
    # report 1's frontal (by the projection table) is a lateral by its DICOM header, written in the XML id form
    _dicom_metadata(root / openi.DICOM_METADATA, {"CXR1_1_IM-0001-4001": "LL", "CXR1_IM-0001-3001": "LATERAL",
                                                  "CXR2_IM-0652-1001": "PA", "CXR4_IM-2050-1001-0001": None})
    path = run(["openi", "--root", str(root), "--out", str(tmp_path / "o"), "--projections", str(projections)])
    frame = read_manifest(path, allow_outside_paths=True).frame
    assert list(frame["id"]) == ["CXR2_IM-0652-1001", "CXR4_IM-2050-1001-0001"]
    report = json.loads((path.parent / "prepare_report.json").read_text())
    assert report["dropped"]["lateral by DICOM View Position"] == 1
    assert report["dropped_examples"]["lateral by DICOM View Position"][0]["id"] == "CXR1_IM-0001-4001"
    assert frame["text"].iloc[1] == "Heart size normal.>] No effusion."
    assert not frame["text"].str.contains("&").any()
    # OpenI-5 labels from the MeSH major terms
    assert openi.OPENI5 == [*LABELS, NO_FINDING]
    labels = frame.set_index("id")[openi.OPENI5]
    assert labels.loc["CXR2_IM-0652-1001"].tolist() == [0, 0, 0, 0, 0, 1]  # "normal"
    assert labels.loc["CXR4_IM-2050-1001-0001"].tolist() == [0, 1, 0, 0, 1, 0]


def test_without_the_metadata_a_note_and_a_missing_flag_is_an_error(tmp_path):
    root = fixtures.openi_xml(tmp_path / "nlm")
    prepared = openi.build(root)
    assert any(openi.DICOM_METADATA in n for n in prepared.notes)
    assert len(prepared.frame) == 5  # no view source at all: every image with a report kept
    with pytest.raises(openi.AdapterError, match="--dicom-metadata"):
        openi.build(root, dicom_metadata=str(tmp_path / "missing.csv.gz"))


def test_kaggle_layout_labels_from_the_mesh_column(tmp_path):
    root = fixtures.openi_kaggle(tmp_path / "k")
    reports = pd.read_csv(root / "indiana_reports.csv")
    reports.loc[reports["uid"] == 4, "MeSH"] = "Pulmonary Atelectasis/base/left;Opacity/lung"
    reports.loc[reports["uid"] == 2, "findings"] = "[&lt;No effusion.&gt;]"
    reports.to_csv(root / "indiana_reports.csv", index=False)
    _dicom_metadata(root / openi.DICOM_METADATA, {"CXR4_IM-2050-1001-0001": "RL"})
    frame = read_manifest(run(["openi", "--root", str(root), "--out", str(tmp_path / "o")]), allow_outside_paths=True).frame
    assert list(frame["id"]) == ["CXR1_IM-0001-4001", "CXR2_IM-0652-1001"]
    assert frame["text"].iloc[1] == "[<No effusion.>] No acute disease."
    assert frame["No Finding"].tolist() == [1, 1]
    prepared = openi.build(root, dicom_metadata=None, views="all")
    by_id = prepared.frame.set_index("id")
    assert by_id.loc["CXR4_IM-2050-1001-0001", "Atelectasis"] == 1 and by_id.loc["CXR4_IM-2050-1001-0001", "No Finding"] == 0
