"""Without a progress bar (SLURM logs), `fit` prints one line per epoch and names the best checkpoint."""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path

import pytest

from medalign.training.cli import cli_main
from tests.helpers import TINY


@pytest.fixture(autouse=True)
def _keep_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", list(sys.argv))


def test_one_line_per_epoch_with_validation_metrics_and_the_best_checkpoint(tmp_path, synthetic_dir, caplog):
    with caplog.at_level(logging.INFO, logger="medalign"):
        cli_main([
            "fit", "--config", TINY, "--data.manifest", str(synthetic_dir / "manifest.csv"),
            "--trainer.default_root_dir", str(tmp_path), "--trainer.logger", "false",
            "--trainer.enable_progress_bar", "false", "--trainer.max_epochs", "2",
            "--trainer.limit_train_batches", "2", "--checkpoint.dirpath", str(tmp_path / "ckpt"),
            "--checkpoint.monitor", "val/loss", "--checkpoint.mode", "min",
        ])
    lines = [r.getMessage() for r in caplog.records if r.name == "medalign.training.epoch_summary" or r.name == "medalign"]
    epochs = [line for line in lines if line.startswith("epoch ")]
    assert [line.split(" |")[0] for line in epochs] == ["epoch 1/2 step 2", "epoch 2/2 step 4"]
    bests = [re.search(r"best (\S+\.ckpt) \(val/loss ", line) for line in epochs]
    assert all("val/loss" in line for line in epochs) and all(bests)
    assert Path(bests[-1].group(1)).is_file()  # top-1: earlier bests are replaced, the last one is on disk
    done = [line for line in lines if line.startswith("fit done at step 4; best ")]
    assert done and bests[-1].group(1) in done[0]
