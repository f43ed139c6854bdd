"""EGD-CXR and REFLACX: fixations → heatmaps joined onto a MIMIC manifest by dicom_id."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from medalign.commands.prepare import run
from medalign.prepare.gaze import fixations_to_heatmap
from medalign.data.manifest import read_manifest
from medalign.data.transforms import load_heatmap, load_image
from tests.prepare import fixtures


@pytest.fixture
def mimic_manifest(tmp_path):
    root = fixtures.mimic(tmp_path / "mimic")
    return run(["mimic-cxr", "--root", str(root), "--out", str(tmp_path / "mimic_manifest")])


def test_egd_heatmaps_join_by_dicom_id(tmp_path, mimic_manifest):
    # d1 is 40 x 30 px; d2 is a lateral view absent from the manifest; the FPOGV = 0 fixation is ignored.
    root = fixtures.egd_cxr(tmp_path / "egd", [("d1", 10, 20, 0.5, 1), ("d1", 35, 2, 5.0, 0), ("d2", 5, 5, 1.0, 1)])
    path = run(["egd-cxr", "--root", str(root), "--manifest", str(mimic_manifest), "--out", str(tmp_path / "out"), "--sigma-px", "3"])
    manifest = read_manifest(path, fixtures.MIMIC_LABELS)
    frame = manifest.frame.set_index("id")
    assert list(frame.index) == ["d1", "d3", "d6"]  # every manifest row kept
    assert frame.loc["d1", "heatmap"] == "heatmaps/d1.npy" and frame.loc["d3", "heatmap"] == ""
    heatmap = load_heatmap(manifest.root / frame.loc["d1", "heatmap"])[0].numpy()
    assert heatmap.shape == load_image(manifest.root / frame.loc["d1", "image"]).shape[-2:] == (30, 40)
    assert np.unravel_index(heatmap.argmax(), heatmap.shape) == (20, 10)
    np.testing.assert_allclose(heatmap, fixations_to_heatmap([10], [20], [0.5], (30, 40), sigma=3.0))
    assert frame.loc["d1", "Edema"] == -1  # labels carried over
    report = json.loads((path.parent / "prepare_report.json").read_text())
    assert report["with_heatmap"] == 1
    assert any("1 gazed images are not in the manifest" in n for n in report["notes"])
    assert any("FPOGV = 0" in n for n in report["notes"])
    only = run(["egd-cxr", "--root", str(root), "--manifest", str(mimic_manifest), "--out", str(tmp_path / "o2"), "--only-annotated"])
    assert list(pd.read_csv(only)["id"]) == ["d1"]


def test_heatmaps_follow_a_resized_manifest(tmp_path):
    root = fixtures.mimic(tmp_path / "mimic")
    small = run(["mimic-cxr", "--root", str(root), "--out", str(tmp_path / "m"), "--resize", "15"])
    egd = fixtures.egd_cxr(tmp_path / "egd", [("d1", 10, 20, 0.5, 1)])
    path = run(["egd-cxr", "--root", str(egd), "--manifest", str(small), "--out", str(tmp_path / "out")])
    row = pd.read_csv(path).set_index("id").loc["d1"]
    heatmap = np.load(path.parent / row["heatmap"])
    assert heatmap.shape == load_image(path.parent / row["image"]).shape[-2:] == (15, 20)
    # Coordinates are in the original 30 x 40 frame (metadata Rows/Columns carried in the manifest).
    np.testing.assert_allclose(heatmap, fixations_to_heatmap([10], [20], [0.5], (15, 20), source_shape=(30, 40)), rtol=1e-6)


def _reflacx(tmp_path):
    return fixtures.reflacx(
        tmp_path / "reflacx",
        {
            "P102R1": ("d1", 40, 30, False, [(0.0, 0.5, 10, 20)]),
            "P102R2": ("d1", 80, 60, False, [(1.0, 2.0, 60, 10)]),  # another reader; coordinates in an 80 x 60 frame
            "P102R3": ("d6", 80, 60, True, [(0.0, 1.0, 5, 5)]),  # eye tracking discarded
        },
    )


def test_reflacx_readers_mean(tmp_path, mimic_manifest):
    path = run(["reflacx", "--root", str(_reflacx(tmp_path)), "--manifest", str(mimic_manifest), "--out", str(tmp_path / "o"),
                "--sigma-px", "2"])  # fmt: skip
    frame = pd.read_csv(path).set_index("id")
    assert frame["heatmap"].fillna("").to_dict() == {"d1": "heatmaps/d1.npy", "d3": "", "d6": ""}
    a = fixations_to_heatmap([10], [20], [0.5], (30, 40), sigma=2.0)
    b = fixations_to_heatmap([60], [10], [1.0], (30, 40), source_shape=(60, 80), sigma=2.0)
    np.testing.assert_allclose(np.load(path.parent / "heatmaps/d1.npy"), (a + b) / (a + b).max(), rtol=1e-6)
    notes = json.loads((path.parent / "prepare_report.json").read_text())["notes"]
    assert any("1 readings with eye_tracking_data_discarded" in n for n in notes)


def test_reflacx_readers_separate(tmp_path, mimic_manifest):
    path = run(["reflacx", "--root", str(_reflacx(tmp_path)), "--manifest", str(mimic_manifest), "--out", str(tmp_path / "o"),
                "--readers", "separate"])  # fmt: skip
    frame = pd.read_csv(path)
    d1 = frame[frame["id"] == "d1"].sort_values("reader")
    assert list(d1["reader"]) == ["P102R1", "P102R2"]
    assert list(d1["heatmap"]) == ["heatmaps/d1_P102R1.npy", "heatmaps/d1_P102R2.npy"]
    assert len(frame) == 4 and read_manifest(path, fixtures.MIMIC_LABELS)


def test_missing_files_and_columns(tmp_path, mimic_manifest):
    root = fixtures.egd_cxr(tmp_path / "egd", [("d1", 10, 20, 0.5, 1)])
    raw = pd.read_csv(root / "fixations.csv").drop(columns="X_ORIGINAL")
    raw.to_csv(root / "fixations.csv", index=False)
    with pytest.raises(SystemExit, match=r"fixations.csv lacks column\(s\) \['X_ORIGINAL'\].*EGD-CXR"):
        run(["egd-cxr", "--root", str(root), "--manifest", str(mimic_manifest), "--out", str(tmp_path / "o")])
    (root / "master_sheet.csv").unlink()
    with pytest.raises(SystemExit, match=r"master_sheet.csv\[.gz\|.zip\] found"):
        run(["egd-cxr", "--root", str(root), "--manifest", str(mimic_manifest), "--out", str(tmp_path / "o")])
    root = _reflacx(tmp_path)
    fix = pd.read_csv(root / "main_data/P102R1/fixations.csv").drop(columns="timestamp_end_fixation")
    fix.to_csv(root / "main_data/P102R1/fixations.csv", index=False)
    with pytest.raises(SystemExit, match="P102R1/fixations.csv lacks.*REFLACX 1.0.0"):
        run(["reflacx", "--root", str(root), "--manifest", str(mimic_manifest), "--out", str(tmp_path / "o")])
    with pytest.raises(SystemExit, match="no main_data/metadata_phase_"):
        run(["reflacx", "--root", str(tmp_path), "--manifest", str(mimic_manifest), "--out", str(tmp_path / "o")])


def test_egd_fixations_outside_the_image_are_dropped(tmp_path, mimic_manifest):
    # d1 is 40 x 30 px (MIMIC Rows/Columns). Off-screen sentinels (-1) and positions past the width
    # or height are dropped; x = 39.5 is on the image.
    fixations = [("d1", 10, 20, 0.5, 1), ("d1", -1, -1, 3.0, 1), ("d1", 45, 5, 3.0, 1), ("d1", 5, 30, 3.0, 1),
                 ("d1", 39.5, 29, 0.25, 1), ("d6", -1, -1, 1.0, 1)]  # fmt: skip
    root = fixtures.egd_cxr(tmp_path / "egd", fixations)
    path = run(["egd-cxr", "--root", str(root), "--manifest", str(mimic_manifest), "--out", str(tmp_path / "o"), "--sigma-px", "3"])
    frame = pd.read_csv(path).set_index("id")
    expected = fixations_to_heatmap([10, 39.5], [20, 29], [0.5, 0.25], (30, 40), sigma=3.0)
    np.testing.assert_allclose(np.load(path.parent / frame.loc["d1", "heatmap"]), expected, rtol=1e-6)
    assert pd.isna(frame.loc["d6", "heatmap"])  # its only fixation was off-screen: no heatmap
    report = json.loads((path.parent / "prepare_report.json").read_text())
    assert report["gaze"] == {"fixations": 6, "fixations_outside_image": 4, "readings": 2, "readings_without_fixation_on_image": 1}
    assert any("4 of 6 fixations outside the image" in n for n in report["notes"])


def test_reflacx_fixations_outside_the_reading_frame_are_dropped(tmp_path, mimic_manifest):
    # Coordinates of P102R2 are in an 80 x 60 frame: (85, 10) is past its width, (60, 10) is on it.
    root = fixtures.reflacx(tmp_path / "reflacx", {
        "P102R1": ("d1", 40, 30, False, [(0.0, 0.5, 10, 20), (0.5, 1.0, -5, 12)]),
        "P102R2": ("d1", 80, 60, False, [(1.0, 2.0, 60, 10), (2.0, 4.0, 85, 10)]),
    })  # fmt: skip
    path = run(["reflacx", "--root", str(root), "--manifest", str(mimic_manifest), "--out", str(tmp_path / "o"), "--sigma-px", "2"])
    a = fixations_to_heatmap([10], [20], [0.5], (30, 40), sigma=2.0)
    b = fixations_to_heatmap([60], [10], [1.0], (30, 40), source_shape=(60, 80), sigma=2.0)
    np.testing.assert_allclose(np.load(path.parent / "heatmaps/d1.npy"), (a + b) / (a + b).max(), rtol=1e-6)
    assert json.loads((path.parent / "prepare_report.json").read_text())["gaze"]["fixations_outside_image"] == 2


def test_reflacx_missing_gaze_column_is_named_exactly(tmp_path, mimic_manifest):
    root = _reflacx(tmp_path)
    fix = pd.read_csv(root / "main_data/P102R1/fixations.csv").drop(columns="average_y_position")
    fix.to_csv(root / "main_data/P102R1/fixations.csv", index=False)
    with pytest.raises(SystemExit, match=r"P102R1/fixations.csv lacks column\(s\) \['average_y_position'\] \(found \['timestamp_start"):
        run(["reflacx", "--root", str(root), "--manifest", str(mimic_manifest), "--out", str(tmp_path / "o")])
