"""Pre-emption as clusters deliver it: SIGTERM to the whole process group (main, loader workers, DDP ranks).

`scancel` and SLURM's ``--signal`` send SIGTERM to every process of the job step, so the
DataLoader workers and every DDP rank get it at the same time as the main process
(docs/reliability.md). The run must still save the current step and exit 143.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch

from medalign.training.checkpointing import PREEMPTED_EXIT_CODE

ROOT = Path(__file__).resolve().parents[2]
TINY = str(ROOT / "tests" / "conf" / "tiny.yaml")
HANG = 300  # seconds: a run still alive by then has hung (a healthy one takes ~20 s on an idle machine)


class GroupSignalAt(L.Callback):
    """At the end of optimizer step `step`, SIGTERM the whole process group from another process (as `scancel`).

    From another process, not `os.killpg` here: PyTorch's loader workers exit quietly on a
    SIGTERM from their parent, but die on one from anyone else — the case clusters create.
    """

    def __init__(self, step: int = 3) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step and trainer.global_rank == 0:
            group, sender = os.getpgid(0), os.fork()
            if sender == 0:  # a child sends it: the workers' parent is not the sender
                os.killpg(group, signal.SIGTERM)
                os._exit(0)
            os.waitpid(sender, 0)


def _run(tmp_path: Path, synthetic_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable, str(ROOT / "train.py"), "fit", "--config", TINY,
        "--data.manifest", str(synthetic_dir / "manifest.csv"), "--trainer.logger", "false",
        "--trainer.max_epochs", "3", "--trainer.limit_val_batches", "0", "--trainer.limit_train_batches", "5",
        "--checkpoint.dirpath", str(tmp_path / "ckpt"), "--checkpoint.monitor", "null",
        "--checkpoint.last_every_n_train_steps", "0",
        "--trainer.callbacks+=tests.training.test_preemption.GroupSignalAt", "--trainer.callbacks.step", "3", *extra,
    ]
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # its own process group, as a job step has
    try:
        out, err = proc.communicate(timeout=HANG)
    except subprocess.TimeoutExpired:  # pragma: no cover - the hang this test guards against
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"the run hung for {HANG} s after a group SIGTERM:\n{err[-3000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def _step(path: Path) -> int:
    return int(torch.load(path, map_location="cpu", weights_only=True)["global_step"])


@pytest.mark.slow
def test_group_sigterm_with_loader_workers_saves_the_current_step_and_exits_143(tmp_path, synthetic_dir):
    # without workers a group SIGTERM is the main process's own: tests/training/test_reliability.py
    run = _run(tmp_path, synthetic_dir, "--data.num_workers", "2")
    assert run.returncode == PREEMPTED_EXIT_CODE, run.stderr[-3000:]
    assert "killed by signal" not in run.stderr
    assert _step(tmp_path / "ckpt" / "last.ckpt") == 3


@pytest.mark.slow
def test_group_sigterm_under_ddp_saves_the_current_step_and_exits_143(tmp_path, synthetic_dir):
    run = _run(tmp_path, synthetic_dir, "--trainer.devices", "2", "--trainer.strategy", "ddp", "--data.num_workers", "2")
    assert run.returncode == PREEMPTED_EXIT_CODE, run.stderr[-3000:]
    assert _step(tmp_path / "ckpt" / "last.ckpt") == 3
