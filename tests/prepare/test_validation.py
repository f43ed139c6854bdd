"""Validated, then written atomically; no silent coercion; errors and drops name the raw file, row and column."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from medalign.commands.prepare import run
from medalign.prepare.base import Prepared
from medalign.prepare.writer import write_manifest
from tests.prepare import fixtures


def _leftovers(parent):
    """Staging or backup folders the writer left next to its output."""
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def _set_cell(path, row, column, value):
    """Write `value` into data row `row` (1-based) of a CSV, keeping every other cell's text."""
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    table.loc[row - 1, column] = value
    table.to_csv(path, index=False)


def test_out_of_range_label_names_raw_row_and_nothing_is_written(tmp_path):
    root = fixtures.chexpert(tmp_path)
    _set_cell(root / "train.csv", 3, "Edema", "2.0")
    out = tmp_path / "o"
    with pytest.raises(SystemExit) as err:
        run(["chexpert", "--root", str(root), "--out", str(out)])
    message = str(err.value)
    assert f"{root / 'train.csv'} row 3 (line 4), column 'Edema': label '2.0' is out of range" in message
    assert not out.exists() and _leftovers(tmp_path) == []


def test_non_numeric_label_is_an_error_not_a_blank(tmp_path):
    root = fixtures.mimic(tmp_path / "raw")
    labels = pd.read_csv(root / "mimic-cxr-2.0.0-chexpert.csv.gz").astype(object)
    labels.loc[1, "Pleural Effusion"] = "yes"
    fixtures.csv_gz(labels, root / "mimic-cxr-2.0.0-chexpert.csv.gz")
    with pytest.raises(SystemExit) as err:
        run(["mimic-cxr", "--root", str(root), "--out", str(tmp_path / "o")])
    assert re.search(r"mimic-cxr-2.0.0-chexpert.csv.gz row 2 \(line 3\), column 'Pleural Effusion': label 'yes' is not a number",
                     str(err.value))  # fmt: skip


def test_failed_rerun_leaves_the_earlier_output_untouched(tmp_path):
    root = fixtures.chexpert(tmp_path)
    out = tmp_path / "o"
    path = run(["chexpert", "--root", str(root), "--out", str(out)])
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    _set_cell(root / "valid.csv", 1, "Cardiomegaly", "maybe")
    with pytest.raises(SystemExit, match=r"valid.csv row 1 \(line 2\), column 'Cardiomegaly': label 'maybe'") as err:
        run(["chexpert", "--root", str(root), "--out", str(out), "--views", "all"])
    # the earlier files are untouched, but the folder says the last run failed: the manifest is not current
    assert "was NOT replaced" in str(err.value)
    after = {p.name: p.read_bytes() for p in out.iterdir()}
    assert set(after) == set(before) | {"PREPARE_FAILED.txt"} and all(after[k] == v for k, v in before.items())
    assert "FAILED" in (out / "PREPARE_FAILED.txt").read_text() and path.is_file()
    assert _leftovers(tmp_path) == []
    _set_cell(root / "valid.csv", 1, "Cardiomegaly", "1.0")
    run(["chexpert", "--root", str(root), "--out", str(out)])  # a successful rerun is current again
    assert not (out / "PREPARE_FAILED.txt").exists()


def test_writer_validates_in_memory_with_raw_rows(tmp_path):
    frame = pd.DataFrame({
        "image": [str(fixtures.image(tmp_path / f"{i}.png")) for i in range(3)], "text": ["a", "b", "c"],
        "split": ["train", "validation", "test"], "L": [1.0, 0.0, np.nan],
        "_file": "/raw/table.csv", "_row": [4, 7, 9],
    })  # fmt: skip
    with pytest.raises(ValueError, match=r"/raw/table.csv row 7 \(line 8\), column 'split': 'validation' is not one of"):
        write_manifest(Prepared("toy", frame, ["L"], 3), tmp_path / "o")
    assert not (tmp_path / "o").exists()
    frame.loc[1, "split"] = "val"
    frame.loc[2, "L"] = 3.0
    with pytest.raises(ValueError, match=r"row 9 \(line 10\), column 'L': '3.0' is not a label"):
        write_manifest(Prepared("toy", frame, ["L"], 3), tmp_path / "o")
    frame.loc[2, "L"] = -1.0
    path = write_manifest(Prepared("toy", frame, ["L"], 3), tmp_path / "o")
    assert list(pd.read_csv(path).columns) == ["image", "text", "split", "heatmap", "id", "study_id", "subject_id", "L"]


def test_successful_rerun_replaces_manifest_report_and_stale_heatmaps(tmp_path):
    root = fixtures.mimic(tmp_path / "mimic")
    manifest = run(["mimic-cxr", "--root", str(root), "--out", str(tmp_path / "m")])
    egd = fixtures.egd_cxr(tmp_path / "egd", [("d1", 10, 20, 0.5, 1), ("d6", 5, 5, 1.0, 1)])
    out = tmp_path / "o"
    run(["egd-cxr", "--root", str(egd), "--manifest", str(manifest), "--out", str(out)])
    assert sorted(p.name for p in (out / "heatmaps").iterdir()) == ["d1.npy", "d6.npy"]
    egd = fixtures.egd_cxr(tmp_path / "egd2", [("d1", 10, 20, 0.5, 1)])
    run(["egd-cxr", "--root", str(egd), "--manifest", str(manifest), "--out", str(out)])
    assert sorted(p.name for p in (out / "heatmaps").iterdir()) == ["d1.npy"]  # d6's heatmap is gone with its manifest
    frame = pd.read_csv(out / "manifest.csv").set_index("id")
    assert frame["heatmap"].fillna("").to_dict() == {"d1": "heatmaps/d1.npy", "d3": "", "d6": ""}
    assert json.loads((out / "prepare_report.json").read_text())["with_heatmap"] == 1
    assert _leftovers(tmp_path) == []


def test_dropped_rows_are_listed_with_raw_row_and_value(tmp_path):
    root = fixtures.nih(tmp_path / "nih")
    path = run(["nih-cxr14", "--root", str(root), "--out", str(tmp_path / "o")])
    report = json.loads((path.parent / "prepare_report.json").read_text())
    assert report["dropped_examples"] == {
        "unknown finding label": [{"where": f"{root / 'Data_Entry_2017.csv'} row 8 (line 9)", "Finding Labels": "Not A Label"}]
    }
    root = fixtures.mimic(tmp_path / "mimic")
    path = run(["mimic-cxr", "--root", str(root), "--out", str(tmp_path / "m")])
    report = json.loads((path.parent / "prepare_report.json").read_text())
    split_csv = root / "mimic-cxr-2.0.0-split.csv.gz"
    assert report["dropped_examples"]["report has no findings/impression section"] == [
        {"where": f"{split_csv} row 4 (line 5)", "report": "files/p11/p11000011/s51000001.txt"}
    ]
    assert report["dropped_examples"]["report file missing"][0]["where"] == f"{split_csv} row 5 (line 6)"


def test_found_columns_show_the_real_header(tmp_path):
    root = fixtures.nih(tmp_path / "nih")
    table = pd.read_csv(root / "Data_Entry_2017.csv")
    table.drop(columns="View Position").to_csv(root / "Data_Entry_2017.csv", index=False)
    with pytest.raises(SystemExit) as err:
        run(["nih-cxr14", "--root", str(root), "--out", str(tmp_path / "o")])
    found = re.search(r"\(found (\[.*?\])\)", str(err.value)).group(1)
    assert found == str([c for c in table.columns if c != "View Position"])  # every column, none of ours
    assert "'Follow-up #'" in found and "_row" not in found


def test_metadata_only_mode(tmp_path):
    root = fixtures.chexpert(tmp_path)
    for image in root.rglob("*.jpg"):
        image.unlink()
    with pytest.raises(SystemExit, match="not found.*--check-images false"):
        run(["chexpert", "--root", str(root), "--out", str(tmp_path / "o")])
    path = run(["chexpert", "--root", str(root), "--out", str(tmp_path / "o"), "--check-images", "false"])
    frame = pd.read_csv(path)
    assert len(frame) == 8 and frame["split"].value_counts().to_dict() == {"train": 6, "val": 2}
    assert frame["image"].iloc[0] == "../CheXpert-v1.0-small/train/patient00000/study1/view1_frontal.jpg"
    report = json.loads((path.parent / "prepare_report.json").read_text())
    assert report["metadata_only"] is True and report["notes"][0].startswith("METADATA ONLY")
    assert report["options"]["check_images"] is False
