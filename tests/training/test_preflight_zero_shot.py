"""A run that monitors validation zero-shot but has nothing to score fails at start-up, not after an epoch."""

from __future__ import annotations

import sys

import pandas as pd
import pytest

from tests.helpers import TINY

LABELS = ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion"]


@pytest.fixture(autouse=True)
def _keep_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", list(sys.argv))


def _without_single_label_val_rows(tmp_path, synthetic_dir):
    folder = tmp_path / "data"
    folder.mkdir()
    for entry in synthetic_dir.iterdir():  # same images and tokenizer, linked inside the folder
        if entry.name != "manifest.csv":
            (folder / entry.name).symlink_to(entry)
    frame = pd.read_csv(synthetic_dir / "manifest.csv")
    val = frame["split"] == "val"
    frame.loc[val, LABELS] = 0.0
    frame.loc[val, ["Atelectasis", "Edema"]] = 1.0  # every val row positive for two classes
    frame.to_csv(folder / "manifest.csv", index=False)
    return folder / "manifest.csv"


def test_zero_shot_monitor_without_single_label_val_rows_fails_before_training(tmp_path, synthetic_dir):
    from medalign.training.cli import cli_main

    manifest = _without_single_label_val_rows(tmp_path, synthetic_dir)
    args = ["fit", "--config", TINY, "--data.manifest", str(manifest), "--trainer.logger", "false",
            "--trainer.default_root_dir", str(tmp_path), "--checkpoint.dirpath", str(tmp_path / "ckpt"),
            "--checkpoint.monitor", "val/zero_shot_macro_f1", "--checkpoint.mode", "max"]
    with pytest.raises(ValueError, match="no validation row positive for exactly one"):
        cli_main(args)
    assert not (tmp_path / "ckpt").exists() or not any((tmp_path / "ckpt").iterdir())  # nothing trained or saved
