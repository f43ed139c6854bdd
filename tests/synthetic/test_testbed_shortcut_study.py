"""scripts/testbed_shortcut_study.py: its report pairs seeds and prints scipy's paired t-test interval."""

from __future__ import annotations

import pytest
from scipy import stats

from tests.conftest import load_script


@pytest.fixture(scope="module")
def study():
    return load_script("testbed_shortcut_study")


def test_report_pairs_seeds_present_in_both_arms(study, capsys):
    results = {"clean": {0: {"test_f1": 0.5}, 1: {"test_f1": 0.6}, 2: {"test_f1": 0.55}},
               "shortcut": {0: {"test_f1": 0.4}, 1: {"test_f1": 0.45}}}
    study.report(results, [0, 1, 2])
    reference = stats.ttest_rel([0.5, 0.6], [0.4, 0.45]).confidence_interval(0.95)
    out = capsys.readouterr().out
    assert "seed 2" not in out and "2 seeds: too few seeds" in out
    assert f"{reference.low:+.3f} to {reference.high:+.3f}" in out


def test_val_curve_takes_one_value_per_epoch_from_the_validation_rows(study, tmp_path):
    (tmp_path / "metrics.csv").write_text(
        "epoch,step,train/loss,val/zero_shot_macro_f1\n"
        "0,9,3.4,\n0,141,,0.1\n1,149,3.3,\n1,283,,0.25\n2,289,3.2,\n2,425,,0.2\n")
    assert study.val_curve(str(tmp_path)) == [0.1, 0.25, 0.2]


def test_dataset_hash_sees_an_image_change(study, tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "images/0.png").write_bytes(b"first")
    (tmp_path / "manifest.csv").write_text("image,text\nimages/0.png,a report\n")
    before = study.dataset_sha256(str(tmp_path / "manifest.csv"))
    assert study.dataset_sha256(str(tmp_path / "manifest.csv")) == before
    (tmp_path / "images/0.png").write_bytes(b"second")
    assert study.dataset_sha256(str(tmp_path / "manifest.csv")) != before
