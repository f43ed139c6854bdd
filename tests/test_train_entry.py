"""`python train.py` (the SLURM / torchrun entry) behaves as `medalign`: early one-line errors, medalign's log lines."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import TINY

ROOT = Path(__file__).resolve().parents[1]


def _train(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=f"{ROOT / 'src'}{os.pathsep}{ROOT}", HF_HUB_OFFLINE="1", MEDALIGN_DEBUG="0")
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_a_config_typo_is_one_line(tmp_path):
    done = _train(["fit", "--config", "demo.yaml", "--trainer.max_epohcs", "1"], tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "unknown config key trainer.max_epohcs (command line); did you mean trainer.max_epochs?" in done.stderr


@pytest.mark.slow
def test_without_a_progress_bar_each_epoch_is_logged(tmp_path, synthetic_dir):
    done = _train(["fit", "--config", TINY, "--data.manifest", str(synthetic_dir / "manifest.csv"),
                   "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "1", "--trainer.limit_val_batches", "1",
                   "--trainer.logger", "false", "--checkpoint.dirpath", str(tmp_path / "ckpt"),
                   "--checkpoint.monitor", "val/loss", "--checkpoint.mode", "min"], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "epoch 1/1 step 1 | " in done.stderr and "fit done at step 1; best " in done.stderr
