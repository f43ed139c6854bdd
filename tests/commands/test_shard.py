"""`medalign shard` as a user runs it: each of medalign's lines once, none of litdata's INFO chatter."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.mark.slow
def test_shard_prints_each_line_once_and_no_cache_messages(tmp_path, synthetic_dir):
    env = dict(os.environ, PYTHONPATH=str(SRC), HF_HUB_OFFLINE="1")
    done = subprocess.run([sys.executable, "-m", "medalign", "shard", str(synthetic_dir / "manifest.csv"), "--out",
                           str(tmp_path / "shards")], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "max_cache_size is unset" not in output  # litdata's INFO line, three times per split before
    for split in ("train", "val", "test"):  # once each (twice before: a root handler beside medalign's)
        assert sum(line.startswith("sharding ") and f" {split} rows of " in line for line in output.splitlines()) == 1, split
    assert output.count("wrote ") == 1 and "sharding manifest.csv: 200/200" in output
