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


def _breakdown(with_markers: float, without: float, pull: float = 0.5) -> dict:
    return {"accuracy": {"with markers": with_markers, "without": without}, "by_markers": {},
            "pull": {"Atelectasis": pull, "Nodule": 1 - pull}}


def test_marker_tables_pair_by_seed_with_scipys_interval(study):
    breakdowns = {"clip/seed0": _breakdown(0.40, 0.65, 0.6), "clip/seed1": _breakdown(0.45, 0.60, 0.8),
                  "clip/seed2": _breakdown(0.43, 0.70, 0.7), "clip/seed3": _breakdown(0.50, 0.66, 0.7),
                  "eclip/seed0": _breakdown(0.41, 0.61, 0.2), "eclip/seed2": _breakdown(0.47, 0.62, 0.4),
                  "eclip/seed3": _breakdown(0.42, 0.69, 0.3)}
    table = study.marker_tables(breakdowns, [("eclip", "clip")])
    # eCLIP − CLIP on the seeds both have (0, 2, 3), independent of the 4th CLIP seed
    with_ = stats.ttest_rel([0.41, 0.47, 0.42], [0.40, 0.43, 0.50])
    without = stats.ttest_rel([0.61, 0.62, 0.69], [0.65, 0.70, 0.66])
    row = next(line for line in table.splitlines() if line.startswith("| eclip − clip"))
    for test in (with_, without):
        ci = test.confidence_interval(0.95)
        assert f"[{ci.low:+.3f}, {ci.high:+.3f}]" in row.replace("−", "-")
        assert f"p = {test.pvalue:.2g}" in row
    # CLIP's loss to markers: without − with over its 4 seeds
    loss = stats.ttest_rel([0.65, 0.60, 0.70, 0.66], [0.40, 0.45, 0.43, 0.50]).confidence_interval(0.95)
    clip_row = next(line for line in table.splitlines() if line.startswith("| clip |"))
    assert f"[{loss.low:+.3f}, {loss.high:+.3f}]" in clip_row.replace("−", "-") and "higher" in clip_row
    assert "[0, 1, 2, 3]" in clip_row
    pull_row = [line for line in table.splitlines() if line.startswith("| eclip |")][-1]
    assert pull_row == "| eclip | 0.300 | 0.700 |"


def test_marker_grid_scores_each_finished_cell_once_and_again_when_its_checkpoint_changes(study, tmp_path, monkeypatch):
    calls = []

    def fake(checkpoint, shortcut, clean):
        calls.append(checkpoint)
        return _breakdown(0.4, 0.6)

    monkeypatch.setattr(study, "marker_breakdown", fake)
    for method, seed, done in (("clip", 0, True), ("clip", 1, True), ("eclip", 0, True), ("eclip", 1, False)):
        cell = tmp_path / method / "fraction1" / f"seed{seed}"
        (cell / "checkpoints").mkdir(parents=True)
        (cell / "checkpoints" / "last.ckpt").write_bytes(f"{method}{seed}".encode())
        if done:
            (cell / "done.json").write_text("{}")
    first = study.grid_breakdowns(str(tmp_path), "s.csv", "c.csv")
    assert sorted(first) == ["clip/seed0", "clip/seed1", "eclip/seed0"] and len(calls) == 3  # unfinished cell left out
    study.grid_breakdowns(str(tmp_path), "s.csv", "c.csv")
    assert len(calls) == 3  # cached
    (tmp_path / "clip/fraction1/seed1/checkpoints/last.ckpt").write_bytes(b"retrained")
    study.grid_breakdowns(str(tmp_path), "s.csv", "c.csv")
    assert len(calls) == 4 and calls[-1].endswith("clip/fraction1/seed1/checkpoints/last.ckpt")
    study.grid_breakdowns(str(tmp_path), "s.csv", "other_clean.csv", methods=["eclip"])
    assert len(calls) == 5  # another manifest pair is another result
