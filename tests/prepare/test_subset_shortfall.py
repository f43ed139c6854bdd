"""MIMIC 5x200 when a class has fewer eligible test images than asked: take all, warn, record the counts."""

from __future__ import annotations

import json
import logging

import pytest

from medalign.commands.prepare import run
from medalign.data.manifest import read_manifest
from tests.prepare import fixtures


def test_mimic_5x200_takes_all_and_records_the_shortfall(tmp_path, caplog):
    root = fixtures.mimic(tmp_path / "mimic-cxr-jpg")
    with caplog.at_level(logging.WARNING, logger="medalign.prepare.subsets"):
        path = run(["mimic-5x200", "--root", str(root), "--out", str(tmp_path / "o"), "--from-split", "all",
                    "--per-class", "2"])  # fmt: skip
    frame = read_manifest(path, allow_outside_paths=True).frame
    assert list(frame["id"]) == ["d3"] and frame["Pleural Effusion"].tolist() == [1]  # the one eligible image
    report = json.loads((path.parent / "prepare_report.json").read_text())
    subset = report["subset"]
    assert subset["eligible"] == {"Atelectasis": 0, "Cardiomegaly": 0, "Consolidation": 0, "Edema": 0, "Pleural Effusion": 1}
    assert subset["drawn"] == subset["eligible"] and subset["per_class"] == 2
    assert subset["short"] == subset["eligible"]
    assert any(n.startswith("SHORTFALL") for n in report["notes"])
    assert "taking all of them" in caplog.text
    with pytest.raises(SystemExit, match="fewer than 2 single-label images"):
        run(["mimic-5x200", "--root", str(root), "--out", str(tmp_path / "o2"), "--from-split", "all", "--per-class", "2",
             "--shortfall", "error"])  # fmt: skip


def test_chexpert_5x200_still_refuses_by_default(tmp_path):
    root = fixtures.chexpert(tmp_path)
    with pytest.raises(SystemExit, match="--shortfall take_all"):
        run(["chexpert-5x200", "--root", str(root), "--out", str(tmp_path / "o"), "--per-class", "50"])
