"""A DDP rank that raises brings the whole job down, with its error visible, instead of hanging."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TINY = str(ROOT / "tests" / "conf" / "tiny.yaml")
HANG = 240  # seconds: a job still running by then is hanging (a healthy failure takes ~20 s)


@pytest.mark.slow
def test_a_raising_rank_ends_the_two_process_job_nonzero_with_its_error(tmp_path, synthetic_dir):
    cmd = [
        sys.executable, str(ROOT / "train.py"), "fit", "--config", TINY,
        "--data.manifest", str(synthetic_dir / "manifest.csv"),
        "--trainer.devices", "2", "--trainer.strategy", "ddp", "--trainer.max_epochs", "3",
        "--trainer.logger", "false", "--trainer.limit_val_batches", "0",
        "--checkpoint.dirpath", str(tmp_path / "ckpt"), "--checkpoint.monitor", "null",
        "--trainer.callbacks+", "tests.training.faults.RaiseOnRank",
        "--trainer.callbacks.rank", "1", "--trainer.callbacks.step", "2",
    ]
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}", "HF_HUB_OFFLINE": "1"}
    started = time.monotonic()
    try:
        run = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=HANG)
    except subprocess.TimeoutExpired as err:  # pragma: no cover - the failure this test guards against
        pytest.fail(f"the DDP job hung for {HANG} s after rank 1 raised:\n{(err.stderr or b'')[-2000:]!r}")
    assert run.returncode != 0, run.stderr[-2000:]
    assert "injected failure on rank 1 at step 2" in run.stderr
    assert time.monotonic() - started < HANG
