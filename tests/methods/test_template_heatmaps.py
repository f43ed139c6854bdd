"""Template gaze: keyed leave-one-out means from the report, never the row's own heatmap."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from medalign.methods.template_heatmaps import report_key, template_heatmaps, write_template_manifest


def test_report_key_reads_findings_and_locations_not_negations():
    key = report_key("There is small consolidation of the left lower lobe. No pleural effusion on the right.", ["Consolidation"])
    assert key == (("Consolidation",), ("left",), ("lower",))
    assert report_key("Bilateral effusions at the bases.", ["Pleural Effusion"])[1:] == (("bilateral",), ("base",))


def test_templates_are_leave_one_out_keyed_means():
    a, b, c, d = (np.full((2, 2), v) for v in (1.0, 3.0, 2.0, 4.0))
    a[0, 0] = b[0, 0] = 5.0
    keys = [(("X",), ("left",), ()), (("X",), ("left",), ()), (("X",), ("right",), ()), (("Y",), (), ())]
    maps, used = template_heatmaps([a, b, c, d], keys)
    assert used == ["key", "key", "findings", "all"]
    np.testing.assert_allclose(maps[0], b / b.max())  # a's template is b alone: never a itself
    np.testing.assert_allclose(maps[2], ((a + b) / 2) / ((a + b) / 2).max())
    np.testing.assert_allclose(maps[3], ((a + b + c) / 3) / ((a + b + c) / 3).max())
    with pytest.raises(ValueError, match="≥ 2"):
        template_heatmaps([a], keys[:1])


def test_the_template_manifest_keeps_rows_and_replaces_only_train_gaze(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "heatmaps").mkdir()
    rows = []
    for i, (split, text, cls) in enumerate([("train", "Left lower consolidation.", "Consolidation"),
                                            ("train", "Left lower consolidation.", "Consolidation"),
                                            ("train", "Cardiomegaly.", "Cardiomegaly"),
                                            ("test", "Cardiomegaly.", "Cardiomegaly")]):
        np.save(tmp_path / f"heatmaps/{i}.npy", rng.random((4, 4)).astype(np.float32))
        rows.append({"image": f"images/{i}.png", "text": text, "split": split, "heatmap": f"heatmaps/{i}.npy",
                     "Consolidation": int(cls == "Consolidation"), "Cardiomegaly": int(cls == "Cardiomegaly")})
    rows.append({"image": "images/9.png", "text": "Normal.", "split": "train", "heatmap": "", "Consolidation": 0, "Cardiomegaly": 0})
    pd.DataFrame(rows).to_csv(tmp_path / "manifest.csv", index=False)
    out = write_template_manifest(tmp_path / "manifest.csv", ["Consolidation", "Cardiomegaly"])
    new = pd.read_csv(out, keep_default_na=False)
    assert len(new) == 5 and list(new["image"]) == [r["image"] for r in rows]
    assert list(new["heatmap"]) == ["heatmaps_template/0.npy", "heatmaps_template/1.npy", "heatmaps_template/2.npy", "heatmaps/3.npy", ""]
    np.testing.assert_allclose(np.load(tmp_path / new["heatmap"][0]), np.load(tmp_path / "heatmaps/1.npy") / np.load(tmp_path / "heatmaps/1.npy").max())
    assert list(new["template_level"]) == ["key", "key", "all", "", ""]
