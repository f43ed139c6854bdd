"""`medalign testbed-info` against cases whose answers can be worked out by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from medalign.synthetic.testbed import info as testbed
from medalign.synthetic.testbed.info import cross_validated_auc, cross_validated_r2, label_columns, retrieval_ceiling


def test_retrieval_ceiling_counts_unique_reports():
    assert retrieval_ceiling(["a", "a", "b", "c"]) == 0.5  # the two "a" images cannot both be found at rank 1
    assert retrieval_ceiling(["a", "b", "c"]) == 1.0
    assert retrieval_ceiling(["a", "a", "a"]) == 0.0


def test_r2_is_one_for_an_exact_linear_map_and_about_zero_for_noise():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    y = x @ rng.normal(size=(3, 10)) + 5.0  # (200, 10)
    assert cross_validated_r2(x, y) > 0.999
    assert abs(cross_validated_r2(rng.normal(size=(200, 3)), y)) < 0.05
    # out-of-sample R² is measured against the training folds' mean: noise targets give ≤ 0
    assert cross_validated_r2(rng.normal(size=(200, 3)), rng.normal(size=(200, 4))) <= 0.01


def test_auc_separable_and_chance():
    rng = np.random.default_rng(1)
    y = (rng.random(300) < 0.4).astype(float)[:, None]
    assert cross_validated_auc(np.concatenate([y, rng.normal(size=(300, 2))], 1), y) == 1.0
    assert abs(cross_validated_auc(rng.normal(size=(300, 3)), y) - 0.5) < 0.1


def _toy_manifest(tmp_path, n: int = 80):
    """Heatmap = a block on the side the report names; images are pure noise; label = 'left'."""
    rng = np.random.default_rng(0)
    (tmp_path / "images").mkdir()
    (tmp_path / "heatmaps").mkdir()
    rows = []
    for i in range(n):
        left = i % 2 == 0
        heat = np.zeros((16, 16), dtype=np.float32)
        heat[4:12, 0:8] = 1.0 if left else 0.0
        heat[4:12, 8:16] = 0.0 if left else 1.0
        np.save(tmp_path / f"heatmaps/{i}.npy", heat)
        Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8)).save(tmp_path / f"images/{i}.png")
        text = f"Opacity in the {'left' if left else 'right'} lung." + (" Stable." if i % 4 < 2 else "")
        rows.append(dict(image=f"images/{i}.png", text=text, split="test" if i < 20 else "train",
                         heatmap=f"heatmaps/{i}.npy", Left=int(left)))
    pd.DataFrame(rows).to_csv(tmp_path / "manifest.csv", index=False)
    return tmp_path / "manifest.csv"


def test_testbed_info_on_a_hand_built_manifest(tmp_path):
    info = testbed.testbed_info(_toy_manifest(tmp_path))
    assert info.rows == 80 and info.test_rows == 20
    assert info.r2_report > 0.99  # the side word determines the heatmap
    assert info.r2_image < 0.1  # noise images carry nothing
    assert info.noise == pytest.approx(1 - info.r2_both)
    assert info.auc_report == 1.0 and info.auc_heatmap == 1.0
    assert info.retrieval_ceiling == 0.0  # 20 test reports, 4 distinct strings, each 5 times


def test_label_columns_skip_standard_and_text_columns():
    frame = pd.DataFrame(dict(image=["a"], text=["t"], split=["test"], heatmap=[""], id=["x"], A=[1], B=[0.0],
                              **{"No Finding": [0]}, lesions=["Nodule:right"]))
    assert label_columns(frame) == ["A", "B"]


def test_cli_prints_the_table(tmp_path, capsys):
    from medalign.cli import main

    main(["testbed-info", str(_toy_manifest(tmp_path)), "--json", str(tmp_path / "info.json")])
    out = capsys.readouterr().out
    assert "by the report" in out and "retrieval ceiling" in out
    assert (tmp_path / "info.json").is_file()
