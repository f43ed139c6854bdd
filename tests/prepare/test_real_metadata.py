"""Adapters' parsing on the real published metadata that torchxrayvision ships (no images).

torchxrayvision (PyPI, Apache-2.0; in the ``dev`` extra) bundles under ``torchxrayvision/data/``
the CheXpert train.csv, NIH Data_Entry_2017_v2020.csv, the RSNA stage 2 labels and the Open-I
report XMLs. The package is located without importing it (its import pulls in scikit-image).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from medalign.prepare import chexpert, nih, openi, rsna
from medalign.prepare.subsets import COMPETITION_5, eligible_counts, single_label_subset


def _data_dir() -> Path | None:
    spec = importlib.util.find_spec("torchxrayvision")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "data"


DATA = _data_dir()
pytestmark = pytest.mark.skipif(
    DATA is None, reason="torchxrayvision is not installed (pip install -e '.[dev]'): its bundled real metadata is absent"
)


def _file(name: str) -> Path:
    path = DATA / name
    if not path.is_file():
        pytest.skip(f"{path} is not in this torchxrayvision version")
    return path


@pytest.fixture(scope="module")
def chexpert_train():
    """The real train.csv (223,414 rows) and the adapter's rows from it, read once for this module."""
    raw = pd.read_csv(_file("chexpert_train.csv.gz"))
    prepared = chexpert.from_tables(Path("/data/CheXpert-v1.0-small"), raw.assign(split="train"))  # keyword defaults
    return raw, prepared


def test_chexpert_train_csv(chexpert_train):
    raw, prepared = chexpert_train
    assert len(raw) == 223_414
    # the keyword defaults are frontal views, no val split and the metadata text (checked below)
    assert (chexpert.from_tables.__kwdefaults__["views"], chexpert.from_tables.__kwdefaults__["val_fraction"],
            chexpert.from_tables.__kwdefaults__["text"]) == ("frontal", 0.0, "metadata")
    frame = prepared.frame
    assert len(frame) == int((raw["Frontal/Lateral"] == "Frontal").sum()) == 223_414 - prepared.dropped["lateral view"]
    assert frame["image"].iloc[0] == "/data/CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg"
    values = frame[chexpert.LABELS].to_numpy()
    assert set(np.unique(values[~np.isnan(values)])) == {-1.0, 0.0, 1.0}
    assert (values == -1).sum() == (raw.loc[raw["Frontal/Lateral"] == "Frontal", chexpert.LABELS] == -1).to_numpy().sum()
    assert frame["text"].iloc[0] == "Frontal AP chest radiograph of a 68-year-old female patient."
    subset = single_label_subset(frame, COMPETITION_5, 200, seed=0)
    assert len(subset) == 1000 and subset["id"].is_unique
    np.testing.assert_array_equal(subset[COMPETITION_5].to_numpy(), np.repeat(np.eye(5), 200, axis=0))
    original = frame.set_index("id").loc[subset["id"], COMPETITION_5].to_numpy()
    assert ((original == 1).sum(1) == 1).all() and not (original == -1).any()


# Single-positive frontal images of the real CheXpert train.csv, per competition class.
CHEXPERT_5X200_POOLS = {"Atelectasis": 7_239, "Cardiomegaly": 3_749, "Consolidation": 3_107, "Edema": 11_324,
                        "Pleural Effusion": 23_100}  # fmt: skip


def test_chexpert_5x200_pools_on_the_real_train_csv(tmp_path, chexpert_train):
    frame = chexpert_train[1].frame  # frontal views, val_fraction 0, metadata text (the defaults)
    assert eligible_counts(frame, COMPETITION_5) == CHEXPERT_5X200_POOLS
    # Blanks are most of the table: were a blank "unknown" (row dropped), almost nothing would be left.
    values = frame[COMPETITION_5].to_numpy()
    known_everywhere = ~np.isnan(values).any(1) & ((values == 1).sum(1) == 1) & ~(values == -1).any(1)
    assert known_everywhere.sum() == 33 and np.isnan(values).mean() > 0.5
    # The suite's path (a written manifest → balanced_single_label) draws from the same pools.
    from tests.oracles.builders import balanced_single_label

    path = tmp_path / "manifest.csv"
    frame[["image", "text", "split", "id", *COMPETITION_5]].to_csv(path, index=False)
    built = balanced_single_label(path, COMPETITION_5, 200, seed=0, split="train", out=tmp_path / "5x200.csv")
    assert len(built) == 1000 and built.frame["id"].is_unique
    drawn = frame.set_index("id").loc[built.frame["id"], COMPETITION_5].to_numpy()
    np.testing.assert_array_equal(drawn == 1, np.repeat(np.eye(5, dtype=bool), 200, axis=0))
    assert not (drawn == -1).any()


def test_nih_data_entry():
    path = _file("Data_Entry_2017_v2020.csv.gz")
    table, dropped = nih.read_entries(path)
    assert len(table) == 112_120 and not dropped
    raw = pd.read_csv(path, usecols=["Finding Labels"])["Finding Labels"]
    names = [set(labels.split("|")) for labels in raw]  # independent count: the pipe-separated names
    for label in nih.LABELS:
        assert table[label].sum() == sum(label in n for n in names)
    assert table["No Finding"].sum() == 60_361 and table["Cardiomegaly"].sum() == 2_776
    # The v2020 header "OriginalImage[Width,Height]" splits in two under a CSV reader; the size survives.
    header = pd.read_csv(path, nrows=2)
    assert "OriginalImage[Width" in header.columns and "Height]" in header.columns
    assert table.loc[0, ["orig_width", "orig_height"]].tolist() == [2682, 2749]
    np.testing.assert_array_equal(table["orig_width"].to_numpy(float), pd.read_csv(path)["OriginalImage[Width"].to_numpy(float))


def test_rsna_labels():
    path = _file("kaggle_stage_2_train_labels.csv.zip")
    labels, dropped = rsna.read_labels(path)
    raw = pd.read_csv(path)
    assert len(labels) == raw["patientId"].nunique() == 26_684
    assert labels["Pneumonia"].sum() == raw.loc[raw["Target"] == 1, "patientId"].nunique() == 6_012
    assert dropped["extra box rows of the same patient (merged)"] == len(raw) - 26_684


def test_rsna_zip_label_table_metadata_only(tmp_path):
    """The label table as released in a .zip, found by its plain name; no images: metadata-only manifest."""
    import shutil

    from medalign.prepare.writer import write_manifest

    shutil.copy(_file("kaggle_stage_2_train_labels.csv.zip"), tmp_path / "stage_2_train_labels.csv.zip")
    prepared = rsna.build(tmp_path, val_fraction=0.1, test_fraction=0.1)
    path = write_manifest(prepared, tmp_path / "o", check_images=False)
    frame = pd.read_csv(path)
    assert len(frame) == 26_684 and frame["Pneumonia"].sum() == 6_012
    assert frame["image"].iloc[0] == f"../stage_2_train_images/{frame['id'].iloc[0]}.dcm"
    report = (tmp_path / "o" / "prepare_report.json").read_text()
    assert '"metadata_only": true' in report and "METADATA ONLY" in report


def test_openi_report_xmls():
    _file("NLMCXR_reports.tgz")
    reports = openi.read_xml_reports(DATA)
    assert len(reports) == 3_955
    findings = reports.loc[reports["findings"] != "", "findings"]
    assert len(findings) == 3_425
    # 2,633 distinct strings exactly; 2,632 ignoring case (the project design quotes 2,632). Retrieval must de-duplicate.
    assert findings.nunique() == 2_633 and findings.str.lower().nunique() == 2_632
    assert reports["images"].map(len).sum() == 7_470
    first = reports.set_index("uid").loc["CXR1"]
    assert first["impression"] == "Normal chest x-XXXX."
    assert first["images"] == ["CXR1_1_IM-0001-3001", "CXR1_1_IM-0001-4001"]
    # Every image id form in the release maps to a key; distinct ids stay distinct; the key's uid is the report's.
    ids = reports.explode("images").dropna(subset=["images"])
    keys = ids["images"].map(openi.image_key)
    assert keys.notna().all() and keys.nunique() == ids["images"].nunique() == 7_470
    assert (keys.str.split("_").str[0] == ids["uid"]).all()
    forms = ids["images"].str.replace(r"\d+", "N", regex=True).value_counts().to_dict()
    assert forms == {"CXRN_IM-N-N": 7_064, "CXRN_IM-N-N-N": 404, "CXRN_N_IM-N-N": 2}


def test_openi_xml_build_metadata_only(tmp_path):
    """The whole NLM XML release through the adapter and the writer without images (metadata-only mode)."""
    from medalign.prepare.writer import write_manifest

    _file("NLMCXR_reports.tgz")
    prepared = openi.build(DATA, views="all")
    path = write_manifest(prepared, tmp_path / "o", check_images=False)
    frame = pd.read_csv(path)
    assert len(frame) + sum(prepared.dropped.values()) == prepared.rows_in == 7_470
    assert frame["id"].is_unique and frame["id"].str.match(r"^CXR\d+_IM-[\d-]+$").all()
