"""Published variants: RSNA PNG/JPG releases and compressed label tables, BRSET's two label-table names,
NIH's renamed and extra columns of later releases."""

from __future__ import annotations

import gzip
import json
import shutil
import zipfile

import pandas as pd
import pytest

from medalign.commands.prepare import run
from medalign.data.manifest import read_manifest
from tests.prepare import fixtures


def _rsna_png(root, folder="stage_2_train_images_png", suffix="png"):
    """The RSNA fixture with its DICOMs replaced by a PNG/JPG release folder."""
    fixtures.rsna(root)
    shutil.rmtree(root / "stage_2_train_images")
    for pid in ("a1", "b2", "c3", "d4"):
        fixtures.image(root / folder / f"{pid}.{suffix}")
    return root


@pytest.mark.parametrize("compress", ["csv", "gz", "zip"])
def test_rsna_label_table_compressed(tmp_path, compress):
    root = fixtures.rsna(tmp_path / "rsna")
    plain = root / "stage_2_train_labels.csv"
    if compress == "gz":
        with open(plain, "rb") as src, gzip.open(f"{plain}.gz", "wb") as dst:
            dst.write(src.read())
        plain.unlink()
    elif compress == "zip":
        with zipfile.ZipFile(f"{plain}.zip", "w") as archive:
            archive.write(plain, plain.name)
        plain.unlink()
    path = run(["rsna-pneumonia", "--root", str(root), "--out", str(tmp_path / "o")])
    frame = read_manifest(path, ["Pneumonia"]).frame.set_index("id")
    assert frame["Pneumonia"].to_dict() == {"a1": 1, "b2": 0, "c3": 0, "d4": 1}
    assert json.loads((path.parent / "prepare_report.json").read_text())["rows_in"] == 5


@pytest.mark.parametrize(("folder", "suffix"), [("stage_2_train_images_png", "png"), ("stage_2_train_images", "jpg")])
def test_rsna_png_jpg_release(tmp_path, folder, suffix):
    root = _rsna_png(tmp_path / "rsna", folder, suffix)
    path = run(["rsna-pneumonia", "--root", str(root), "--out", str(tmp_path / "o")])
    frame = read_manifest(path, ["Pneumonia"]).frame.set_index("id")
    assert frame.loc["a1", "image"] == f"../rsna/{folder}/a1.{suffix}"
    notes = json.loads((path.parent / "prepare_report.json").read_text())["notes"]
    assert notes[0] == f"images: the {suffix.upper()} release (4 files found)" and not any("dicom" in n for n in notes)


def test_rsna_target_not_binary_names_raw_row(tmp_path):
    root = fixtures.rsna(tmp_path / "rsna")
    table = pd.read_csv(root / "stage_2_train_labels.csv")
    table.loc[3, "Target"] = 2
    table.to_csv(root / "stage_2_train_labels.csv", index=False)
    with pytest.raises(SystemExit, match=r"stage_2_train_labels.csv row 4 \(line 5\), column 'Target': label '2' is out of range"):
        run(["rsna-pneumonia", "--root", str(root), "--out", str(tmp_path / "o")])


def test_brset_labels_brset_csv_and_image_ids_with_extension(tmp_path):
    root = fixtures.brset(tmp_path / "brset")
    table = pd.read_csv(root / "labels.csv")
    table["image_id"] = table["image_id"] + ".jpg"
    table.to_csv(root / "labels_brset.csv", index=False)
    (root / "labels.csv").unlink()
    path = run(["brset", "--root", str(root), "--out", str(tmp_path / "o")])
    frame = read_manifest(path, ["diabetic_retinopathy"]).frame.set_index("id")
    assert frame["diabetic_retinopathy"].to_dict() == {"img00001": 0, "img00002": 1, "img00003": 0}
    assert frame.loc["img00002", "image"] == "../brset/fundus_photos/img00002.jpg"


def test_brset_label_outside_0_1_is_an_error(tmp_path):
    root = fixtures.brset(tmp_path / "brset")
    table = pd.read_csv(root / "labels.csv")
    table.loc[2, "diabetic_retinopathy"] = 3
    table.to_csv(root / "labels.csv", index=False)
    with pytest.raises(SystemExit, match=r"labels.csv row 3 \(line 4\), column 'diabetic_retinopathy': label '3' is out of range"):
        run(["brset", "--root", str(root), "--out", str(tmp_path / "o")])


def test_nih_renamed_and_extra_columns(tmp_path):
    """A later copy: the bracketed size headers renamed, an extra column, ages written as 058Y."""
    root = fixtures.nih(tmp_path / "nih")
    lines = (root / "Data_Entry_2017.csv").read_text().splitlines()
    header = ("Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
              "OriginalImageWidth,OriginalImageHeight,OriginalImagePixelSpacing_x,OriginalImagePixelSpacing_y,Extra")  # fmt: skip
    rows = []
    for line in lines[1:]:
        cells = line.rstrip(",").split(",")
        cells[4] = f"{int(cells[4]):03d}Y"
        rows.append(",".join([*cells, "x"]))
    (root / "Data_Entry_2017.csv").unlink()
    (root / "Data_Entry_2017_v2020.csv").write_text("\n".join([header, *rows]) + "\n")
    with gzip.open(root / "test_list.txt.gz", "wt") as f:  # a compressed split list
        f.write((root / "test_list.txt").read_text())
    (root / "test_list.txt").unlink()
    path = run(["nih-cxr14", "--root", str(root), "--out", str(tmp_path / "o")])
    frame = read_manifest(path).frame.set_index("id")
    row = frame.loc["00000001_001.png"]
    assert row["text"] == "PA chest radiograph of a 51-year-old female patient."
    assert (row["orig_width"], row["orig_height"]) == (2682, 2749)
    assert "Extra" not in frame.columns and len(frame) == 7
    assert set(frame.loc[["00000003_000.png", "00000004_000.png", "00000005_000.png"], "split"]) == {"test"}


def test_nih_original_header_keeps_image_size(tmp_path):
    root = fixtures.nih(tmp_path / "nih")
    frame = read_manifest(run(["nih-cxr14", "--root", str(root), "--out", str(tmp_path / "o")])).frame
    assert set(frame["orig_width"]) == {2682} and set(frame["orig_height"]) == {2749}
