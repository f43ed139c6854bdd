"""`data.synthetic` generates the embedded set only at its own manifest path, never at a typo."""

from __future__ import annotations

import logging

import pytest

from medalign.training.datamodule import MedAlignDataModule

SPEC = {"n": 40, "image_size": 16, "seed": 0, "vocab_size": 300}


def test_mistyped_manifest_is_an_error_not_a_new_dataset(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = {"manifest": "data/synthetic/manifest.csv", **SPEC}
    with pytest.raises(FileNotFoundError, match="data/synthtic/manifest.csv"):
        MedAlignDataModule(manifest="data/synthtic/manifest.csv", synthetic=spec)
    assert not (tmp_path / "data").exists()  # nothing generated anywhere


def test_generates_at_its_own_path_and_says_so(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    spec = {"manifest": "data/synthetic/manifest.csv", **SPEC}
    with caplog.at_level(logging.INFO, logger="medalign.synthetic.sources"):
        MedAlignDataModule(manifest="data/synthetic/manifest.csv", synthetic=spec)
    assert (tmp_path / "data/synthetic/manifest.csv").is_file()
    assert any("generating the embedded synthetic dataset" in r.getMessage() for r in caplog.records)
