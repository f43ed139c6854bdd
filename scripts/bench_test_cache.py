"""`train.py test` on a demo-size checkpoint: first run (encodes) vs second run (embedding cache), each a fresh process.

    python scripts/bench_test_cache.py [--config demo.yaml] [--ckpt PATH]

Without --ckpt a demo-architecture checkpoint is made with one training step (the weights do
not change the timing). The default suite runs: zero-shot, retrieval, linear probe.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, str(ROOT / "train.py"), *args], check=True, cwd=ROOT,
                   stdout=subprocess.DEVNULL, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="demo.yaml")
    parser.add_argument("--ckpt", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ckpt = args.ckpt
        if ckpt is None:
            run(["fit", "--config", args.config, "--trainer.max_steps", "1", "--trainer.limit_val_batches", "0",
                 "--trainer.logger", "false", "--trainer.default_root_dir", str(tmp), "--checkpoint.dirpath", str(tmp / "ckpt"),
                 "--checkpoint.monitor", "null"])
            ckpt = str(tmp / "ckpt" / "last.ckpt")
        test = ["test", "--config", args.config, "--ckpt_path", ckpt, "--trainer.logger", "false",
                "--evaluation.cache_dir", str(tmp / "cache"), "--evaluation.output_dir", str(tmp / "eval"),
                "--evaluation.progress", "false"]
        first = run(test)
        second = run(test)
        bare = run(["test", "--help"])  # process start-up + imports, for reference
    print(f"config {args.config}, checkpoint {ckpt}, load {os.getloadavg()[0]:.2f}")
    print(f"test, first run (encodes)      : {first:6.2f} s")
    print(f"test, second run (cached)      : {second:6.2f} s")
    print(f"ratio first/second             : {first / second:6.2f}x   (start-up alone, `test --help`: {bare:.2f} s)")


if __name__ == "__main__":
    main()
