"""`fit` as a user runs it in an 80-column terminal: one line per bar, no Lightning adverts or internal deprecations."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import TINY

SRC = Path(__file__).resolve().parents[2] / "src"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _segments(output: str) -> list[str]:
    """What the terminal shows, piece by piece: escape codes removed, split at carriage returns and newlines."""
    return [s for s in re.split(r"[\r\n]", ANSI.sub("", output)) if s.strip()]


@pytest.mark.slow
def test_fit_in_80_columns_is_one_line_per_bar_without_tips(tmp_path, synthetic_dir):
    env = dict(os.environ, PYTHONPATH=str(SRC), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               COLUMNS="80", LINES="40", TERM="xterm", TTY_COMPATIBLE="1", TTY_INTERACTIVE="1")
    done = subprocess.run(
        [sys.executable, "-m", "medalign", "fit", "--config", TINY, "--data.manifest", str(synthetic_dir / "manifest.csv"),
         "--trainer.default_root_dir", str(tmp_path), "--trainer.enable_progress_bar", "true",
         "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "2",
         "--trainer.log_every_n_steps", "1", "--trainer.logger", "false", "--checkpoint.dirpath", str(tmp_path / "ckpt"),
         "--checkpoint.monitor", "val/loss", "--checkpoint.mode", "min"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    bars = [s for s in _segments(done.stdout) if s.startswith("Epoch ")]
    assert bars and any("loss: " in s for s in bars)  # the bar was drawn, with its metrics
    assert all(len(s) <= 80 for s in bars), max(bars, key=len)
    assert "v_num" not in done.stdout
    wrapped = [s for s in _segments(done.stdout) if re.match(r"^\s{20,}\S", s)]  # a metric value alone, indented
    assert not wrapped, wrapped[:3]
    assert "💡 Tip" not in output and "litlogger" not in output and "litmodels" not in output
    assert "LeafSpec" not in output


def test_only_lightnings_own_rich_bar_is_replaced(tmp_path):
    import lightning as L
    from lightning.pytorch.callbacks import RichProgressBar, TQDMProgressBar

    from medalign.training.cli import _compact_progress_bar
    from medalign.training.progress_bar import CompactProgressBar

    default = L.Trainer(default_root_dir=tmp_path, logger=False, enable_checkpointing=False)
    assert type(default.progress_bar_callback) is RichProgressBar  # Lightning's pick when rich is installed
    _compact_progress_bar(default)
    assert type(default.progress_bar_callback) is CompactProgressBar
    chosen = L.Trainer(default_root_dir=tmp_path, logger=False, enable_checkpointing=False, callbacks=[TQDMProgressBar()])
    _compact_progress_bar(chosen)
    assert type(chosen.progress_bar_callback) is TQDMProgressBar
    bar = CompactProgressBar()
    assert bar.theme.metrics_format == ".3g"
